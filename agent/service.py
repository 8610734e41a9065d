"""Running under systemd: READY once the pipeline is up, STATUS for ``systemctl status``, and a
watchdog petted only while the pipeline is healthy.

Why pet conditionally: a hung station loop or a dead uplink thread is invisible from outside the
process; withholding WATCHDOG=1 lets systemd restart the agent (``Restart=always``), and because
every verdict is committed before it is shown, a restart loses nothing.
"""

from __future__ import annotations

import logging
import os
import threading
from typing import Any, Protocol

from prescreen.sdnotify import notify, watchdog_interval_s

log = logging.getLogger("prescreen.service")
MAX_STATUS_INTERVAL_S = 2.0


class Supervised(Protocol):
    """What the service loop needs from the agent."""

    def problems(self) -> list[str]:
        """Why the pipeline is unhealthy; empty when healthy."""

    def status(self) -> dict[str, Any]:
        """The ``prescreen status`` object."""


def status_line(status: dict[str, Any]) -> str:
    """One line for ``systemctl status``: devices, broker, backlog, model."""
    devices = ", ".join(f"{name} {'up' if d['up'] else 'DOWN'}" for name, d in status["devices"].items())
    broker = "broker connected" if status["broker"]["connected"] else "broker DOWN"
    return (
        f"{devices}, {broker}, backlog {status['backlog']['pending']}, "
        f"model {status['model']['version'] or 'none (rules-only)'}"
    )


def supervise(agent: Supervised, stop: threading.Event) -> None:
    """Tell systemd READY, then pet the watchdog and refresh STATUS until ``stop`` is set."""
    notify(READY="1", STATUS=status_line(agent.status()), MAINPID=str(os.getpid()))
    log.info("ready")
    interval = min(watchdog_interval_s() or MAX_STATUS_INTERVAL_S, MAX_STATUS_INTERVAL_S)
    while not stop.wait(interval):
        problems = agent.problems()
        if problems:
            log.error("pipeline unhealthy, watchdog not petted", extra={"problems": "; ".join(problems)})
        else:
            notify(WATCHDOG="1")
        notify(STATUS=status_line(agent.status()))
    notify(STOPPING="1")
