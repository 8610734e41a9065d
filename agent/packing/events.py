"""What the station tells its listeners (the page, the scanner's beeper, metrics, the simulator)."""

from __future__ import annotations

import dataclasses

from prescreen.core.records import Record


@dataclasses.dataclass(frozen=True)
class StationEvent:
    """What the station tells its listeners after each scan."""

    kind: str  # "verdict", "verdict_update", "carton_open", "hold_confirmed", "not_recorded", "ignored"
    scan: str
    record: Record | None = None
    latency_ms: float | None = None
    message: str = ""
