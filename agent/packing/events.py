"""What the station tells its listeners (the page, the scanner's beeper, metrics, the simulator),
and how a caller on another thread waits for a task it gave the station."""

from __future__ import annotations

import dataclasses
from concurrent.futures import Future

from prescreen.core.records import Record


@dataclasses.dataclass(frozen=True)
class StationEvent:
    """What the station tells its listeners after each scan."""

    kind: str  # "verdict", "verdict_update", "carton_open", "hold_confirmed", "not_recorded", "ignored"
    scan: str
    record: Record | None = None
    latency_ms: float | None = None
    message: str = ""


class NotTaken(TimeoutError):
    """The station did not start a task in time; it was withdrawn, so nothing of it was committed."""


def wait_for_task(future: Future[StationEvent], timeout_s: float) -> StationEvent | None:
    """The event of a task given to the station thread (:meth:`Station.submit`), or None while
    it is still being committed.

    Why not simply ``future.result(timeout_s)``: a task still queued at the timeout ran later
    and committed its record after the caller had said "not recorded", so an operator sending it
    again made a second record. Here a task not started by ``timeout_s`` is cancelled (the station
    skips a cancelled task) and :class:`NotTaken` is raised: nothing was recorded, it is safe to
    send again. A task already running (one commit) is waited for another ``timeout_s``; if it
    still runs then, None: it will end, but the caller cannot say how. The task's own exception
    propagates.
    """
    try:
        return future.result(timeout_s)
    except TimeoutError:
        if future.cancel():
            raise NotTaken(f"the station did not take it within {timeout_s:g} s") from None
    try:
        return future.result(timeout_s)
    except TimeoutError:
        return None
