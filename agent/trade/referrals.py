"""Answers to customs referrals: the data an RFI asked for, and the screening an RFS asked for.

A request for information (``rfi`` downlink message) names the data customs needs (``fields``:
invoice, hts_code, description, ...); the station or compliance answers with an ``rfi_response``
record carrying exactly those fields. A request for screening (``rfs``) asks for the parcel to be
screened by a high-risk method; the station records a ``screening`` record (method, operator, time,
result) when it was. Both are signed records synced like any other, committed on the station
thread (:meth:`prescreen.packing.station.Station.submit`), and tied to the referral's message id and the
parcel's newest verdict record, so the receiver links them to the parcel. Neither lifts the hold:
customs decides, with a ``release`` or an ``outcome``, once it has read them.
"""

from __future__ import annotations

import logging
from typing import Any

from prescreen.core.errors import PrescreenError
from prescreen.core.records import Record, envelope, epoch_s, rfc3339, utc_now
from prescreen.ops.config import StationConfig
from prescreen.packing.events import StationEvent
from prescreen.packing.outbox import Outbox
from prescreen.packing.station import Station
from prescreen.sync.downlink import RFI_FIELDS

log = logging.getLogger("prescreen.trade.referrals")

# High-risk screening methods (ICAO Annex 17 / ICS2 codes): XRY, EDS, ETD, EDD, PHS, VCK, CMD, AOM.
SCREENING_METHODS = (
    "x_ray",
    "eds",
    "etd",
    "edd",
    "physical_search",
    "visual_check",
    "metal_detection",
    "other_means",
)
SCREENING_RESULTS = ("cleared", "not_cleared")
ANSWERED_BY = ("station", "compliance")
MAX_VALUE = 2000


class ReferralError(PrescreenError):
    """An answer that cannot be recorded (no such referral, a field not asked for, a bad value)."""


class NoReferral(ReferralError):
    """No open referral of that type on the tracking number at this station."""


def open_referral(outbox: Outbox, tracking: str, kind: str) -> dict[str, Any] | None:
    """The ``downlink`` part of the newest ``kind`` (rfi, rfs) message on ``tracking``, while
    customs still holds the parcel (a release or a freeing outcome closes it)."""
    if not any(h.tracking_number == tracking for h in outbox.holds()):
        return None
    record = outbox.latest_message(tracking, kind)
    return None if record is None else dict(record["downlink"])


def checked_fields(fields: Any, asked: list[str]) -> dict[str, str]:
    """The answer's fields: only RFI fields, non-empty strings, every asked field among them.

    Raises:
        ReferralError: why not.
    """
    if not isinstance(fields, dict) or not fields:
        raise ReferralError('fields must be an object like {"invoice": "INV-2291"}')
    unknown = sorted(set(map(str, fields)) - set(RFI_FIELDS))
    if unknown:
        raise ReferralError(f"not RFI fields: {', '.join(unknown)} (fields: {', '.join(RFI_FIELDS)})")
    for name, value in fields.items():
        if not isinstance(value, str) or not value.strip() or len(value) > MAX_VALUE:
            raise ReferralError(f"{name} must be a non-empty string of at most {MAX_VALUE} characters")
    missing = [f for f in asked if f not in fields]
    if missing:
        raise ReferralError(f"the RFI asks for {', '.join(asked)}; missing: {', '.join(missing)}")
    return {str(k): str(v).strip() for k, v in sorted(fields.items())}


def _newest_verdict_id(outbox: Outbox, tracking: str) -> str | None:
    verdict = outbox.latest_verdict(tracking)
    return None if verdict is None else str(verdict["record_id"])


def _note(note: Any) -> str | None:
    return None if note is None else str(note)[:500]


def answer_rfi(
    station: Station, tracking: str, fields: Any, *, by: str = "station", note: Any = None
) -> StationEvent:
    """Commit the ``rfi_response`` to the open RFI on ``tracking`` (station thread)."""
    if by not in ANSWERED_BY:
        raise ReferralError(f"answered by must be one of {', '.join(ANSWERED_BY)}, got {by!r}")
    rfi = open_referral(station.outbox, tracking, "rfi")
    if rfi is None:
        raise NoReferral(f"no open RFI on {tracking!r} at this station")
    asked = list(rfi.get("requested_fields") or [])
    given = checked_fields(fields, asked)
    answer: dict[str, Any] = {
        "message_id": rfi["message_id"],
        "tracking_number": tracking,
        "refers_to": _newest_verdict_id(station.outbox, tracking),
        "requested_fields": asked,
        "fields": given,
        "answered_by": by,
        "note": _note(note),
    }
    record = station.outbox.append(lambda seq: _record("rfi_response", seq, station.config.station, answer))
    log.info("rfi answered", extra={"tracking": tracking, "fields": ",".join(given)})
    return StationEvent("rfi_response", tracking, record)


def record_screening(
    station: Station,
    tracking: str,
    *,
    method: str,
    operator: str,
    result: str,
    screened_at: str | None = None,
    note: Any = None,
) -> StationEvent:
    """Commit a ``screening`` record for a parcel screened at the station (station thread)."""
    if method not in SCREENING_METHODS:
        raise ReferralError(f"method must be one of {', '.join(SCREENING_METHODS)}, got {method!r}")
    if result not in SCREENING_RESULTS:
        raise ReferralError(f"result must be one of {', '.join(SCREENING_RESULTS)}, got {result!r}")
    if not isinstance(operator, str) or not operator.strip() or len(operator) > 64:
        raise ReferralError("operator must be a name or badge of at most 64 characters")
    try:
        at = rfc3339(epoch_s(screened_at)) if screened_at else utc_now()
    except ValueError:
        raise ReferralError(f"screened_at must be an RFC 3339 time, got {screened_at!r}") from None
    verdict_id = _newest_verdict_id(station.outbox, tracking)
    rfs = open_referral(station.outbox, tracking, "rfs")
    if verdict_id is None and rfs is None:
        raise NoReferral(f"no parcel {tracking!r} was scanned or referred for screening at this station")
    screened = {
        "tracking_number": tracking,
        "refers_to": verdict_id,
        "message_id": rfs["message_id"] if rfs else None,
        "method": method,
        "operator": operator.strip(),
        "screened_at": at,
        "result": result,
        "note": _note(note),
    }
    record = station.outbox.append(lambda seq: _record("screening", seq, station.config.station, screened))
    log.info("parcel screened", extra={"tracking": tracking, "method": method, "result": result})
    return StationEvent("screening", tracking, record)


def _record(kind: str, seq: int, station: StationConfig, body: dict[str, Any]) -> Record:
    record = envelope(kind, seq, station)
    record["rfi_response" if kind == "rfi_response" else "screened"] = body
    return record
