"""The agent's health: a set of named conditions, each ``ok``, ``degraded`` or ``down``.

Why one model: ``/healthz``, ``prescreen status``, the station page, the metrics and systemd's
STATUS line all read this one set, so they can never disagree about what is wrong.

- ``degraded``: screening goes on, something needs a person (broker unreachable, a device
  unplugged, the outbox over its limits, the model quarantined, the clock wrong).
- ``down``: the station cannot screen parcels at all.

Health is *not* the watchdog: systemd's watchdog is petted on the pipeline's liveness alone (see
``service.py``), because restarting the agent fixes none of the conditions above.

A component reports a condition in one of two ways, whichever matches who owns the state:

- ``health.watch(name, probe, grace_s=...)``: ``probe()`` returns ``(level, detail)`` and is asked
  on every evaluation; a non-ok answer only counts once it has lasted ``grace_s`` (a broker blip or
  a scale being replugged is not an alarm);
- ``health.report(name, level, detail)``: the owner pushes a change when it happens (e.g. a model
  quarantined by a monitor); ``level="ok"`` clears it.

Every change of level is logged once (WARNING when worse, INFO when better), and a condition that
stays non-ok is logged again every ``log_every_s`` with its detail (the broker's says the backlog).
"""

from __future__ import annotations

import dataclasses
import logging
import threading
import time
from collections.abc import Callable
from datetime import datetime
from typing import Literal

log = logging.getLogger("prescreen.health")

Level = Literal["ok", "degraded", "down"]
LEVELS: tuple[Level, ...] = ("ok", "degraded", "down")  # in order of severity
Probe = Callable[[], "tuple[Level, str]"]
CLOCK_FLOOR = datetime(2025, 1, 1).timestamp()  # earlier than any release of this agent
CLOCK_SLACK_S = 60.0
# A problem within its grace time is logged at info once it lasted this long: a broker still
# connecting at start is not worth a line, a broker gone for 15 s is.
NOTE_AFTER_S = 2.0


@dataclasses.dataclass(frozen=True)
class Condition:
    """One named condition as last evaluated; ``since`` is when it entered its level (epoch s)."""

    name: str
    level: Level
    detail: str
    since: float

    def as_json(self) -> dict[str, object]:
        """The shape ``/healthz`` and ``/status`` show."""
        return {
            "name": self.name,
            "level": self.level,
            "detail": self.detail,
            "since": datetime.fromtimestamp(self.since).astimezone().isoformat(timespec="seconds"),
        }


def worst(levels: list[Level]) -> Level:
    """The most severe of ``levels`` (``ok`` for none)."""
    return max(levels, key=LEVELS.index, default="ok")


@dataclasses.dataclass
class _Watched:
    probe: Probe
    grace_s: float
    bad_since: float | None = None  # monotonic time the probe first answered non-ok
    noted: bool = False  # the problem was logged (at info) while within its grace time


@dataclasses.dataclass
class _State:
    level: Level = "ok"
    detail: str = ""
    since: float = dataclasses.field(default_factory=time.time)
    logged_at: float = 0.0  # monotonic time of the last log line about this condition


class Health:
    """The agent's conditions; thread-safe (probes run under one lock, so keep them cheap)."""

    def __init__(self, *, log_every_s: float = 60.0, clock: Callable[[], float] = time.monotonic) -> None:
        self.log_every_s = log_every_s
        self._clock = clock
        self._lock = threading.Lock()
        self._watched: dict[str, _Watched] = {}
        self._pushed: dict[str, tuple[Level, str]] = {}
        self._state: dict[str, _State] = {}

    def watch(self, name: str, probe: Probe, *, grace_s: float = 0.0) -> None:
        """Ask ``probe`` for condition ``name`` on every evaluation (non-ok counts after ``grace_s``)."""
        with self._lock:
            self._watched[name] = _Watched(probe, grace_s)
            self._state.setdefault(name, _State())

    def report(self, name: str, level: Level, detail: str = "") -> None:
        """Set condition ``name`` (owned by the caller) to ``level``; ``ok`` clears it."""
        if level not in LEVELS:
            raise ValueError(f"health level must be one of {LEVELS}, got {level!r}")
        with self._lock:
            self._pushed[name] = (level, detail)
            self._state.setdefault(name, _State())
            self._settle(name, level, detail)

    def conditions(self) -> list[Condition]:
        """Evaluate every condition now (logging changes) and return them, worst first."""
        with self._lock:
            now = self._clock()
            for name, watched in self._watched.items():
                level, detail = self._ask(name, watched)
                if level != "ok":
                    watched.bad_since = now if watched.bad_since is None else watched.bad_since
                    lasted = now - watched.bad_since
                    if lasted < watched.grace_s:
                        if not watched.noted and lasted >= NOTE_AFTER_S:  # said at info, alarm after grace
                            log.info(f"health: {name} {level} (within grace)", extra={"detail": detail})
                            watched.noted = True
                        level, detail = "ok", f"{detail} (for {lasted:.0f} s, within grace)"
                else:
                    if watched.noted and self._state[name].level == "ok":
                        log.info(f"health: {name} ok again (within grace)", extra={"detail": detail})
                    watched.bad_since, watched.noted = None, False
                self._settle(name, level, detail)
            for name, (level, detail) in self._pushed.items():
                self._settle(name, level, detail)
            found = [Condition(n, s.level, s.detail, s.since) for n, s in self._state.items()]
        return sorted(found, key=lambda c: (-LEVELS.index(c.level), c.name))

    def level(self) -> Level:
        """The worst level of all conditions, evaluated now."""
        return worst([c.level for c in self.conditions()])

    def _ask(self, name: str, watched: _Watched) -> tuple[Level, str]:
        try:
            return watched.probe()
        except Exception as exc:  # a broken probe is itself worth seeing, never a crash
            log.exception("health probe failed", extra={"condition": name})
            return "degraded", f"health probe failed: {exc}"

    def _settle(self, name: str, level: Level, detail: str) -> None:
        """Record the condition's level and detail; log a change once and a lasting problem again
        every ``log_every_s``."""
        state = self._state[name]
        now = self._clock()
        if level != state.level:
            worse = LEVELS.index(level) > LEVELS.index(state.level)
            log.log(
                logging.WARNING if worse else logging.INFO,
                f"health: {name} {level}",
                extra={"condition": name, "level": level, "was": state.level, "detail": detail},
            )
            state.level, state.since, state.logged_at = level, time.time(), now
        elif level != "ok" and now - state.logged_at >= self.log_every_s:
            log.warning(
                f"health: {name} still {level}",
                extra={
                    "condition": name,
                    "level": level,
                    "for_s": round(time.time() - state.since),
                    "detail": detail,
                },
            )
            state.logged_at = now
        state.detail = detail


def clock_condition(now: float, newest_record_epoch: float | None) -> tuple[Level, str]:
    """Whether the system clock can be trusted for record timestamps.

    Before :data:`CLOCK_FLOOR` the clock was never set; behind the newest committed record it went
    backwards. Either way records would carry wrong times: ``degraded`` (NTP fixes it, not a restart).
    """
    if now < CLOCK_FLOOR:
        return "degraded", "system clock is before 2025: enable NTP (timedatectl set-ntp true)"
    if newest_record_epoch is not None and newest_record_epoch > now + CLOCK_SLACK_S:
        behind = newest_record_epoch - now
        return "degraded", f"system clock is {behind:.0f} s behind the newest record: enable NTP"
    return "ok", datetime.fromtimestamp(now).astimezone().isoformat(timespec="seconds")
