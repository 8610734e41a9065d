"""Running under systemd: READY once the agent serves, STATUS for ``systemctl status``, and a
watchdog petted on the pipeline's liveness alone.

Why liveness alone: a hung station loop or a dead uplink thread is invisible from outside the
process, and a restart fixes it; withholding WATCHDOG=1 then lets systemd restart the agent
(``Restart=always``), and because every verdict is committed before it is shown, a restart loses
nothing. A broker outage, a full outbox or a full disk are different: a restart fixes none of them
and would interrupt screening every ``WatchdogSec``, so they are health conditions (degraded, shown
in STATUS, ``/healthz`` and ``prescreen status``) and the watchdog keeps being petted through them.
"""

from __future__ import annotations

import ctypes
import logging
import os
import threading
from typing import Any, Protocol

from prescreen.packing.sdnotify import notify, watchdog_interval_s

log = logging.getLogger("prescreen.service")
MAX_STATUS_INTERVAL_S = 2.0
M_MMAP_THRESHOLD, M_ARENA_MAX = -3, -8  # glibc's mallopt parameters (malloc.h)
MMAP_THRESHOLD_BYTES = 128 * 1024  # glibc's default starting value, kept fixed


def limit_malloc() -> bool:
    """One malloc arena and a fixed 128 KiB mmap threshold, set in the process before its threads
    start (so systemd, the bench and a shell run the agent alike); False where the C library has
    no such settings (not glibc): nothing changed.

    Why: with glibc's defaults the bench's agent kept 2-4 MB more resident at its screening peak
    and while draining a backlog. A thread that allocates outside the GIL (SQLite, zlib, sockets)
    gets an arena of its own, and the mmap threshold climbs to the largest block freed, so batch
    sized buffers (hundreds of KB) then come from the heap and stay resident after they are freed.
    The agent allocates mostly under the GIL: one arena cost no CPU measurable here (drain of
    100,000 records, 22-28 µs of the agent's CPU a record either way).
    """
    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):
        return False
    return bool(mallopt(M_ARENA_MAX, 1)) and bool(mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD_BYTES))


class Supervised(Protocol):
    """What the service loop needs from the agent."""

    def liveness(self) -> list[str]:
        """Why the pipeline is not alive; empty while it is."""

    def status(self) -> dict[str, Any]:
        """The ``prescreen status`` object."""


def status_line(status: dict[str, Any]) -> str:
    """One line for ``systemctl status``: the health level and what is wrong, then devices,
    broker, backlog and model."""
    devices = ", ".join(f"{name} {'up' if d['up'] else 'DOWN'}" for name, d in status["devices"].items())
    node = f"{status['broker']['host']}:{status['broker']['port']}"
    broker = f"broker {node} connected" if status["broker"]["connected"] else f"broker DOWN (trying {node})"
    health = status["health"]
    if status["problems"]:
        health = f"{health} ({'; '.join(status['problems'])})"
    return (
        f"{health} | {devices}, {broker}, backlog {status['backlog']['pending']}, "
        f"model {status['model']['version'] or 'none (rules-only)'}"
    )


def supervise(agent: Supervised, stop: threading.Event) -> None:
    """Tell systemd READY (the agent serves), then pet the watchdog while the pipeline is alive and
    refresh STATUS until ``stop`` is set."""
    notify(READY="1", STATUS=status_line(agent.status()), MAINPID=str(os.getpid()))
    log.info("ready")
    interval = min(watchdog_interval_s() or MAX_STATUS_INTERVAL_S, MAX_STATUS_INTERVAL_S)
    was_dead: list[str] = []
    while not stop.wait(interval):
        dead = agent.liveness()
        if dead:
            if dead != was_dead:  # once per change, not every interval
                log.error("pipeline not alive, watchdog not petted", extra={"problems": "; ".join(dead)})
        else:
            notify(WATCHDOG="1")
        was_dead = dead
        notify(STATUS=status_line(agent.status()))
    notify(STOPPING="1")
