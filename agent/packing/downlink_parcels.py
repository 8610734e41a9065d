"""What the station does with customs messages about parcels: holds, RFI/RFS/DNL, releases,
watchlists and customs outcomes.

Each handler reads the message and the outbox and returns an :class:`~prescreen.sync.downlink.Effect`:
the holds to set or lift (committed with the ``downlink`` record of the effect) and what to change
in the running station afterwards. A hold on a parcel already scanned is reported with the
parcel's state (its verdict, whether it is on the hold shelf, its outcomes), so customs knows
whether it still sits at the station, and the operator is told to fetch it back.
"""

from __future__ import annotations

from typing import Any

from prescreen.packing.outbox import Outbox
from prescreen.packing.side_tables import SideChanges
from prescreen.packing.station import Station
from prescreen.sync.downlink import (
    CUSTOMS_OUTCOMES,
    FREEING_OUTCOMES,
    PARCEL_HOLDS,
    RFI_FIELDS,
    Downlink,
    DownlinkError,
    Effect,
    text_field,
)


def parcel_state(outbox: Outbox, tracking: str) -> dict[str, Any]:
    """Whether the parcel was scanned here, its verdict, and what happened to it since."""
    verdict = outbox.latest_verdict(tracking)
    if verdict is None:
        return {"scanned": False, "on_hold_shelf": False, "outcomes": []}
    outcomes = outbox.outcomes_of(tracking)
    return {
        "scanned": True,
        "verdict_record_id": verdict["record_id"],
        "verdict": verdict["screening"]["verdict"],
        "scanned_at": verdict["created_at"],
        "on_hold_shelf": "held_on_shelf" in outcomes,
        "outcomes": outcomes,
    }


def requested_fields(message: dict[str, Any]) -> list[str]:
    """The data an RFI asks for (``fields``), each one of :data:`RFI_FIELDS`; none: the reason says."""
    fields = message.get("fields")
    if fields is None:
        return []
    if (
        not isinstance(fields, list)
        or not 0 < len(fields) <= len(RFI_FIELDS)
        or not all(isinstance(f, str) and f in RFI_FIELDS for f in fields)
    ):
        raise DownlinkError(f"fields must be a list of some of {', '.join(RFI_FIELDS)}")
    return sorted(set(fields))


class ParcelMessages:
    """The handlers of parcel messages for one station (registered with its downlink)."""

    def __init__(self, station: Station) -> None:
        self.station = station
        self.outbox = station.outbox

    def register(self, downlink: Downlink) -> None:
        """Handle holds, RFI/RFS/DNL, releases, watchlists and outcomes on ``downlink``."""
        for kind in PARCEL_HOLDS:
            downlink.register(kind, self.hold)
        downlink.register("release", self.release)
        downlink.register("watchlist", self.watchlist)
        downlink.register("outcome", self.outcome)

    def load(self) -> None:
        """The station's hold list is the outbox's holds, read again whenever a message changed it."""
        self.station.set_holds(
            {
                hold.tracking_number: f"{hold.type.upper()}: {hold.reason}"
                if hold.reason
                else hold.type.upper()
                for hold in self.outbox.holds()
            }
        )

    def hold(self, message: dict[str, Any], _: Any) -> Effect:
        """A hold, RFI, RFS or DNL on a tracking number (before or after the parcel was scanned)."""
        kind = str(message["type"])
        tracking = str(text_field(message, "tracking_number", limit=64))
        reason = text_field(message, "reason", required=False) or PARCEL_HOLDS[kind]
        details: dict[str, Any] = {}
        if kind == "rfi":
            details["requested_fields"] = requested_fields(message)
        state = parcel_state(self.outbox, tracking)
        fetch_back = state["scanned"] and not state["on_hold_shelf"]

        def after() -> None:
            self.load()
            if fetch_back:  # its shelf confirmation is awaited like any HOLD's
                self.station.await_shelf(str(state["verdict_record_id"]), tracking)

        where = "already scanned: retrieve it" if state["scanned"] else "held when scanned"
        asked = (
            f" (asks for {', '.join(details['requested_fields'])})" if details.get("requested_fields") else ""
        )
        return Effect(
            f"{kind.upper()} on {tracking}: {reason}{asked} ({where})",
            tracking,
            state,
            details,
            SideChanges(holds={tracking: (kind, reason)}),
            after,
            "late_hold" if state["scanned"] else "downlink",
        )

    def release(self, message: dict[str, Any], _: Any) -> Effect:
        """Customs lets a tracking number go: its hold ends."""
        tracking = str(text_field(message, "tracking_number", limit=64))
        state = parcel_state(self.outbox, tracking)
        return Effect(
            f"released {tracking}", tracking, state, changes=SideChanges(lifted=[tracking]), after=self.load
        )

    def watchlist(self, message: dict[str, Any], _: Any) -> Effect:
        """Tracking numbers to hold when scanned (``add``) or no longer (``remove``)."""
        add, remove = message.get("add") or [], message.get("remove") or []
        if not isinstance(add, list) or not isinstance(remove, list):
            raise DownlinkError("watchlist add/remove must be lists of tracking numbers")
        if not all(isinstance(t, str) and 0 < len(t) <= 64 for t in [*add, *remove]):
            raise DownlinkError("watchlist add/remove must be lists of tracking numbers")
        reason = str(message.get("reason") or "watchlist")[:500]
        changes = SideChanges(holds=dict.fromkeys(add, ("hold", reason)), lifted=list(remove))
        return Effect(f"watchlist: {len(add)} added, {len(remove)} removed", changes=changes, after=self.load)

    def outcome(self, message: dict[str, Any], _: Any) -> Effect:
        """What customs decided about a parcel scanned here, named by its record or tracking number.

        The outcome names the verdict record it settles (the newest for the tracking number),
        so the receiver can join the two into a training label. A release lifts the station's
        hold on the tracking number; the operator is told when the parcel sits on the hold shelf.
        """
        value = message.get("outcome")
        if value not in CUSTOMS_OUTCOMES:
            raise DownlinkError(
                f"outcome must be one of {', '.join(CUSTOMS_OUTCOMES)}, got {str(value)[:40]!r}"
            )
        reason_code = text_field(message, "reason_code", limit=64)
        reference = text_field(message, "customs_reference", limit=64)
        refers_to, tracking, state = self._settled(message)
        frees = value in FREEING_OUTCOMES
        where = ""
        if state is None:
            where = " (its verdict is no longer in this station's outbox: recorded for the labels)"
        elif state.get("on_hold_shelf"):
            where = "; on the hold shelf: " + ("take it off" if frees else "keep it for customs")
        return Effect(
            f"customs outcome {CUSTOMS_OUTCOMES[value]} ({reason_code}, {reference}) for "
            f"{tracking or refers_to}{where}",
            tracking,
            state,
            {
                "customs_outcome": {
                    "outcome": value,
                    "reason_code": reason_code,
                    "customs_reference": reference,
                    "refers_to": refers_to,
                    "message": message,  # customs' signed word, checked by `records labels --customs-key`
                }
            },
            SideChanges(lifted=[tracking] if frees and tracking else []),
            self.load,
            "shelf_outcome" if state and state.get("on_hold_shelf") else "downlink",
        )

    def _settled(self, message: dict[str, Any]) -> tuple[str, str | None, dict[str, Any] | None]:
        """(the verdict record id an outcome settles, its tracking number, the parcel's state;
        None: unknown, the verdict was pruned from the outbox)."""
        record_id = text_field(message, "record_id", required=False, limit=64)
        tracking = text_field(message, "tracking_number", required=False, limit=64)
        if record_id is not None:
            verdict = self.outbox.get(record_id)
            if verdict is None and self._pruned():
                return record_id, tracking, None
            if verdict is None or verdict.get("kind") != "verdict":
                raise DownlinkError(f"no verdict record {record_id} at this station")
            named = verdict["parcel"].get("tracking_number")
            if tracking is not None and tracking != named:
                raise DownlinkError(f"record {record_id} is tracking number {named}, not {tracking}")
            state = {"scanned": True, "verdict_record_id": record_id, "on_hold_shelf": False}
            return record_id, named, parcel_state(self.outbox, named) if named else state
        if tracking is None:
            raise DownlinkError("outcome names a record_id or a tracking_number")
        latest = self.outbox.latest_verdict(tracking)
        if latest is None:
            raise DownlinkError(
                f"no parcel {tracking} was scanned at this station"
                + (" (or its verdict was pruned: name it by record_id)" if self._pruned() else "")
            )
        return str(latest["record_id"]), tracking, parcel_state(self.outbox, tracking)

    def _pruned(self) -> bool:
        """Whether this outbox no longer holds every record it signed (housekeeping prunes acked
        records oldest first, after ``retention_days`` or over a limit).

        Why it matters: customs decides seizures, penalties and destructions weeks or months after
        the scan, often after the verdict was pruned here, and those are the positive labels the
        learning loop needs. An outcome naming a record id this station may have pruned is recorded
        (``refers_to`` that id, parcel state unknown) for the receiver, which holds every verdict,
        to join. While nothing was pruned, an unknown id is customs' mistake and is rejected.
        """
        first, floor = self.outbox.rows(
            "SELECT (SELECT MIN(seq) FROM records), (SELECT value FROM meta WHERE key = 'seq_floor')"
        )[0]
        if first is None:  # empty: pruned if it ever signed one (the floor keeps the last seq)
            return floor is not None and int(floor) > 0
        return int(first) > 1
