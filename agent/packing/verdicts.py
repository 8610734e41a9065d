"""The verdict record of one screened parcel, and the screening of one the agent failed to screen.

Kept apart from :mod:`prescreen.packing.station` because replays and corrections build verdict
records outside a running station (``prescreen screen``, the compliance loop).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, TypedDict

from prescreen.core.records import Record, StationIdentity, envelope, kg
from prescreen.packing.orders import Order, to_record
from prescreen.risk import codes
from prescreen.risk.entry import NO_SETTINGS, PARCEL_FIELDS, EntrySettings, complete_order, parcel_fields
from prescreen.risk.rules import ParcelFacts
from prescreen.risk.screening import Screening

if TYPE_CHECKING:
    from typing import Unpack  # 3.11: annotations only, so 3.10 runs it


def internal_error(exc: BaseException) -> Screening:
    """The screening of a parcel the agent failed to screen: REVIEW, saying so (never CLEAR)."""
    finding = codes.INTERNAL_ERROR.found(
        f"The agent could not screen this parcel ({type(exc).__name__}): check it by hand."
    )
    return Screening("REVIEW", None, None, (finding,))


class VerdictOptions(TypedDict, total=False):
    """What a verdict record may carry beyond its parcel's screening (:func:`verdict_members`)."""

    carton_id: str | None
    supersedes: dict[str, str] | None
    entry: EntrySettings
    carton_order: Order | None
    parcel_entry: dict[str, Any] | None


def verdict_record(
    seq: int,
    station: StationIdentity,
    facts: ParcelFacts,
    screening: Screening,
    **options: Unpack[VerdictOptions],
) -> Record:
    """The verdict record for one screened parcel (also used by replays, outside a station)."""
    record = envelope("verdict", seq, station)
    record.update(verdict_members(facts, screening, **options))
    return record


def verdict_members(
    facts: ParcelFacts,
    screening: Screening,
    *,
    carton_id: str | None = None,
    supersedes: dict[str, str] | None = None,
    entry: EntrySettings = NO_SETTINGS,
    carton_order: Order | None = None,
    parcel_entry: dict[str, Any] | None = None,
) -> Record:
    """A verdict record's members after the envelope (parcel, order, screening): they need no
    sequence number, so a replay's worker processes build them and the committing writer adds the
    envelope (:mod:`prescreen.packing.replay`).

    ``carton_order`` is the master carton's order (for the carton and the parcels inside it);
    ``parcel_entry`` keeps a corrected record's entry-grade parcel fields as they were.
    """
    record: Record = {}
    barcode = facts.barcode
    parcel: dict[str, Any] = {
        "tracking_number": barcode.tracking_number,
        "carrier": barcode.carrier,
        "barcode": {
            "raw": barcode.raw,
            "symbology": barcode.symbology,
            "check_ok": barcode.check_ok,
            "reason": barcode.reason,
            "gs1": barcode.gs1,
        },
        "sscc": barcode.sscc,
        "postal_item_id": barcode.tracking_number if barcode.carrier == "upu" else None,
        "master_carton_id": carton_id,
        "measured_weight_kg": kg(facts.weight_kg),
    }
    if parcel_entry is None:
        parcel_entry = parcel_fields(barcode, facts.order, carton_order, entry)
    parcel.update({k: parcel_entry.get(k) for k in PARCEL_FIELDS})
    if facts.carton is not None:
        parcel["carton"] = {
            "manifest_count": len(facts.carton.manifest),
            "scanned_count": len(facts.carton.scanned),
            "unmanifested": facts.carton.unmanifested,
            "parcels_weight_kg": kg(facts.carton.parcels_weight_kg),
        }
    record["parcel"] = parcel
    record["order"] = None if facts.order is None else complete_order(to_record(facts.order), entry)
    record["screening"] = screening.as_json()
    if supersedes is not None:
        record["supersedes"] = supersedes
    return record
