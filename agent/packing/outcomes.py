"""Outcome records: what became of a held or referred parcel, tied to its verdict record.

Why a record of its own (not an update of the verdict): records are evidence and are never
rewritten; an outcome is a new, signed, synced fact that names the record it settles, so customs
sees the verdict, and later what was done about it, as two entries in order.
"""

from __future__ import annotations

from prescreen.core.records import Record, StationIdentity, envelope

OUTCOMES = (
    "held_on_shelf",
    "released_after_correction",
    "corrected_and_resent",
    "returned_to_seller",
    "abandoned",
    "destroyed",
    "handed_to_carrier",
)


def outcome_record(
    seq: int,
    station: StationIdentity,
    *,
    refers_to: str,
    tracking_number: str | None,
    outcome: str,
    decided_by: str = "station",
    shelf: str | None = None,
    customs_reference: str | None = None,
    note: str | None = None,
) -> Record:
    """The outcome record for the verdict record ``refers_to``.

    Raises:
        ValueError: ``outcome`` is not one of :data:`OUTCOMES`.
    """
    if outcome not in OUTCOMES:
        raise ValueError(f"outcome must be one of {', '.join(OUTCOMES)}, got {outcome!r}")
    record = envelope("outcome", seq, station)
    record["outcome"] = {
        "refers_to": refers_to,
        "tracking_number": tracking_number,
        "outcome": outcome,
        "decided_by": decided_by,
        "shelf": shelf,
        "customs_reference": customs_reference,
        "note": note,
    }
    return record
