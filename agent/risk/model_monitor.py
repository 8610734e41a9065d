"""The live guardrail on the model: quarantine it when it raises far more parcels than its card says.

Real parcels will differ from any training data. The model card states the share of parcels the
model alone raised on its training mix at the configured budget; if, over the station's last
``model_monitor_window`` scored parcels, the model alone raised more than twice that share (and at
least a handful), the model is set aside: the station screens rules-only, every record says so
(``quarantined_model``), health turns ``degraded`` (page, ``/healthz``, ``status``, metrics,
telemetry). The quarantine is kept in the outbox, so a restart does not lift it; a new model (another
version) or ``prescreen model reinstate`` does.
"""

from __future__ import annotations

import collections
import dataclasses
import json
import logging
from datetime import datetime, timezone
from typing import Any

from prescreen.risk.screening import Screening

log = logging.getLogger("prescreen.model_monitor")
SETTING = "model_quarantine"  # the outbox settings row that keeps a quarantine across restarts
TRIP_FACTOR = 2.0
MIN_RAISES = 5  # never quarantine on a couple of raises, however small the window
MIN_RATE = 0.005  # a card rate of 0 would trip on the first raise


@dataclasses.dataclass(frozen=True)
class Quarantine:
    """Why and when a model version was set aside."""

    version: str
    raised: int
    scored: int
    expected_rate: float
    at: str

    def detail(self) -> str:
        """One line for health, the page and the log."""
        return (
            f"model {self.version} quarantined (rules only): it raised {self.raised} of the last "
            f"{self.scored} parcels, over {TRIP_FACTOR:g}x its card's {self.expected_rate:.1%}"
        )


class ModelMonitor:
    """Counts the model's own raises over the last ``window`` parcels it scored."""

    def __init__(self, version: str, window: int, expected_rate: float) -> None:
        self.version = version
        self.window = window
        self.limit = max(expected_rate, MIN_RATE) * TRIP_FACTOR
        self.expected_rate = expected_rate
        self._raised: collections.deque[bool] = collections.deque(maxlen=window)

    def observe(self, screening: Screening) -> Quarantine | None:
        """Count one screened parcel; a :class:`Quarantine` when this parcel trips the monitor."""
        if screening.model_version is None:
            return None
        self._raised.append(screening.model_raised)
        raised, scored = sum(self._raised), len(self._raised)
        if scored < self.window // 2 or raised < MIN_RAISES or raised / scored <= self.limit:
            return None
        quarantine = Quarantine(
            self.version,
            raised,
            scored,
            self.expected_rate,
            datetime.now(timezone.utc).isoformat(timespec="seconds"),
        )
        log.error("model quarantined", extra={"detail": quarantine.detail()})
        self._raised.clear()
        return quarantine


def encode(quarantine: Quarantine) -> str:
    """The settings row's value."""
    return json.dumps(dataclasses.asdict(quarantine))


def decode(value: str) -> Quarantine | None:
    """A stored quarantine, or None when the row is unreadable (logged)."""
    try:
        raw: dict[str, Any] = json.loads(value)
        return Quarantine(**raw)
    except (ValueError, TypeError) as exc:
        log.warning("unreadable model quarantine row ignored", extra={"reason": str(exc)})
        return None
