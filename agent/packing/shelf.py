"""The hold shelf: HOLD verdicts wait there for the operator's scan of a shelf label (or a touch on
the page), which commits a ``held_on_shelf`` outcome record.

Its own state with one owner, the station thread; customs holds after the parcel left the bench
and released parcels come in through :class:`prescreen.packing.station.Station`'s methods.
"""

from __future__ import annotations

import collections
import logging

from prescreen.core.errors import OutboxError
from prescreen.core.records import StationIdentity
from prescreen.packing.events import StationEvent
from prescreen.packing.outbox import Outbox
from prescreen.packing.outcomes import outcome_record

log = logging.getLogger("prescreen.station")


class HoldShelf:
    """HOLDs not yet confirmed on the shelf, oldest first (record id -> tracking number), bounded."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self._waiting: collections.OrderedDict[str, str | None] = collections.OrderedDict()

    def waiting(self) -> list[str]:
        """Record ids of the HOLDs waiting, oldest first."""
        return list(self._waiting)

    def wait_for(self, record_id: str, tracking: str | None) -> None:
        """Await this HOLD's shelf scan; beyond ``limit`` the oldest is forgotten (its record stays)."""
        self._waiting[record_id] = tracking
        while len(self._waiting) > self.limit:
            self._waiting.popitem(last=False)

    def settle(self, record_id: str) -> None:
        """An outcome was recorded for this verdict: the shelf no longer waits for it."""
        self._waiting.pop(record_id, None)

    def confirm(
        self, outbox: Outbox, station: StationIdentity, record_id: str | None, shelf: str | None, *, raw: str
    ) -> StationEvent:
        """Commit that ``record_id`` (None: the oldest waiting) is on ``shelf``."""
        if record_id is None and self._waiting:
            record_id = next(iter(self._waiting))
        if record_id is None or record_id not in self._waiting:
            return StationEvent("ignored", raw, message="No HOLD is waiting for the shelf.")
        tracking = self._waiting[record_id]
        try:
            record = outbox.append(
                lambda seq: outcome_record(
                    seq,
                    station,
                    refers_to=record_id,
                    tracking_number=tracking,
                    outcome="held_on_shelf",
                    shelf=shelf,
                )
            )
        except OutboxError as exc:
            log.error("hold confirmation not recorded", extra={"record": record_id, "reason": str(exc)})
            return StationEvent("not_recorded", raw, message=f"NOT RECORDED: {exc}")
        del self._waiting[record_id]
        log.info("hold on shelf", extra={"record": record_id, "tracking": tracking, "shelf": shelf})
        return StationEvent("hold_confirmed", raw, record)
