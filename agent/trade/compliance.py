"""Compliance actions on committed records: corrections and outcomes.

Records are evidence and never rewritten. A correction is a new verdict record: the stored order
with the compliance team's changes, re-screened by the same rules and model, with ``supersedes``
naming the record it replaces (reason ``correction``, and which fields changed). An outcome is a
new record naming the verdict it settles. Both run on the station thread, the outbox's only writer
(:meth:`prescreen.packing.station.Station.submit`), so they never race a scan.
"""

from __future__ import annotations

import copy
import json
import logging
import re
from collections.abc import Callable
from decimal import Decimal, InvalidOperation
from typing import Any

from prescreen.core.errors import OutboxError, PrescreenError
from prescreen.core.records import SCHEMA_ID, Record
from prescreen.drivers.barcodes import decode
from prescreen.packing.events import NotTaken, StationEvent, wait_for_task
from prescreen.packing.orders import to_record
from prescreen.packing.outcomes import OUTCOMES, outcome_record
from prescreen.packing.station import Station
from prescreen.packing.verdicts import verdict_record
from prescreen.risk.rules import ParcelFacts
from prescreen.trade.correctable import (
    CORRECTABLE,
    ITEM_FIELDS,
    MANUFACTURER_FIELDS,
    ORDER_FIELDS,
    PARTY_FIELDS,
)
from prescreen.trade.referrals import NoReferral, ReferralError, answer_rfi, record_screening
from prescreen.web.server import PostRoute, Response, json_response

log = logging.getLogger("prescreen.compliance")

_NUMBERS = {"unit_value", "quantity", "total_declared_value", "declared_weight_kg"}
_UUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")
DECIDERS = ("station", "compliance", "customs")
# The 202 answer: the station is committing it now, so sending it again would make a second record.
PENDING = "the station is still committing it: do not send it again (it will be recorded and synced)"


class ComplianceError(PrescreenError):
    """A correction or outcome that cannot be recorded (unknown record, bad field or value)."""


class UnknownRecord(ComplianceError):
    """No verdict record by that id or tracking number in the outbox."""


def corrected_order(order: dict[str, Any], changes: dict[str, str], line: int = 1) -> dict[str, Any]:
    """A copy of a record's ``order`` with ``changes`` applied (item fields to line ``line``).

    Raises:
        ComplianceError: an unknown field, a non-number where a number belongs, or no such line.
    """
    result = copy.deepcopy(order)
    items = result.get("items") or []
    for field, text in changes.items():
        if field not in CORRECTABLE:
            raise ComplianceError(f"{field!r} cannot be corrected; one of: {', '.join(CORRECTABLE)}")
        value: Any = text
        if field in _NUMBERS:
            try:
                value = float(Decimal(text))
            except InvalidOperation:
                raise ComplianceError(f"{field} must be a number, got {text!r}") from None
        if field in ITEM_FIELDS or field in MANUFACTURER_FIELDS:
            if not 1 <= line <= len(items):
                raise ComplianceError(f"the order has {len(items)} item lines; there is no line {line}")
            item = items[line - 1]
            if field in ITEM_FIELDS:
                item[field] = value
                continue
            item["manufacturer"] = _with_part(
                item.get("manufacturer"), field.removeprefix("manufacturer_"), value
            )
        elif field in ORDER_FIELDS:
            result[field] = value
        else:
            party = next(p for p in PARTY_FIELDS if field.startswith(f"{p}_"))
            result[party] = _with_part(result.get(party), field.removeprefix(f"{party}_"), value)
    return to_record(result)


def _with_part(entry: dict[str, Any] | None, part: str, value: Any) -> dict[str, Any]:
    """A party (or manufacturer) with one part changed: its name, id, id type or an address part."""
    changed = dict(entry or {"name": None, "address": None, "id": None})
    if part in ("name", "id", "id_type"):
        changed[part] = value
    else:
        changed["address"] = {**(changed.get("address") or {}), part: value}
    return changed  # the same projection as a fresh order: the result always validates


def kept_parcel_entry(old: Record) -> dict[str, Any] | None:
    """The entry-grade parcel fields a correction keeps: the network and the bills are not the
    order data corrected. A v1 record has none (and its channel followed the label, not the
    network): its correction decides them again (None)."""
    return old["parcel"] if old.get("schema") == SCHEMA_ID else None


def find_verdict(station: Station, ref: str) -> Record:
    """The verdict record named by a record id, or the newest one for a tracking number.

    Raises:
        ComplianceError: nothing matches, or the id names a record that is not a verdict.
    """
    record = station.outbox.get(ref) if _UUID.match(ref) else station.outbox.latest_verdict(ref)
    if record is None:
        raise UnknownRecord(f"no verdict record {ref!r} in the outbox (wrong id, or pruned)")
    if record.get("kind") != "verdict":
        raise ComplianceError(f"record {ref} is a {record.get('kind')} record, not a verdict")
    return record


def correct(
    station: Station, ref: str, changes: dict[str, str], *, line: int = 1, by: str = "compliance"
) -> StationEvent:
    """Re-screen a parcel with corrected order data and commit the new version (station thread)."""
    old = find_verdict(station, ref)
    if not changes:
        raise ComplianceError("no changes given")
    if old.get("order") is None:
        raise ComplianceError(f"record {old['record_id']} has no order data to correct")
    order = corrected_order(old["order"], changes, line)
    parcel = old["parcel"]
    weight = parcel.get("measured_weight_kg")
    facts = ParcelFacts(
        barcode=decode(parcel["barcode"]["raw"]),
        weight_kg=None if weight is None else Decimal(str(weight)),
        order=order,
        inside_carton=parcel.get("master_carton_id"),
        watchlisted=station.holds.get(parcel.get("tracking_number") or ""),
    )
    screening = station.screener.screen(facts)
    supersedes = {
        "record_id": old["record_id"],
        "reason": "correction",
        "fields": sorted(changes),
        "by": by,
    }
    record = station.outbox.append(
        lambda seq: verdict_record(
            seq,
            station.config.station,
            facts,
            screening,
            carton_id=parcel.get("master_carton_id"),
            supersedes=supersedes,
            entry=station.screener.entry,
            parcel_entry=kept_parcel_entry(old),
        )
    )
    log.info(
        "record corrected",
        extra={
            "record": record["record_id"],
            "supersedes": old["record_id"],
            "fields": ",".join(sorted(changes)),
            "verdict_before": old["screening"]["verdict"],
            "verdict_after": screening.verdict,
        },
    )
    return StationEvent("correction", parcel["barcode"]["raw"], record)


def record_outcome(
    station: Station,
    ref: str,
    outcome: str,
    *,
    decided_by: str = "compliance",
    customs_reference: str | None = None,
    note: str | None = None,
) -> StationEvent:
    """Commit what became of a held or referred parcel (station thread)."""
    if outcome not in OUTCOMES:
        raise ComplianceError(f"outcome must be one of {', '.join(OUTCOMES)}, got {outcome!r}")
    if decided_by not in DECIDERS:
        raise ComplianceError(f"decided_by must be one of {', '.join(DECIDERS)}, got {decided_by!r}")
    if outcome == "handed_to_carrier" and not customs_reference:
        raise ComplianceError("handed_to_carrier needs the customs reference it was released under")
    verdict = find_verdict(station, ref)
    tracking = verdict["parcel"].get("tracking_number")
    record = station.outbox.append(
        lambda seq: outcome_record(
            seq,
            station.config.station,
            refers_to=verdict["record_id"],
            tracking_number=tracking,
            outcome=outcome,
            decided_by=decided_by,
            customs_reference=customs_reference,
            note=note,
        )
    )
    station.shelf_settled(verdict["record_id"])
    log.info(
        "outcome recorded", extra={"record": verdict["record_id"], "tracking": tracking, "outcome": outcome}
    )
    return StationEvent("outcome", tracking or ref, record)


class ComplianceApi:
    """``POST /api/correct``, ``/api/outcome``, ``/api/rfi`` and ``/api/screening`` on the agent's
    localhost server (the same token and Host rules as every POST).

    The CLI (``prescreen correct``, ``outcome``, ``rfi answer``, ``rfs screened``) and the station
    page call these, so a correction is screened by the running agent's own rules, model and
    watchlist, and every answer is committed in order with the scans.
    """

    def __init__(self, station: Station, timeout_s: float = 10.0) -> None:
        self.station = station
        self.timeout_s = timeout_s

    def post_routes(self) -> dict[str, PostRoute]:
        """The routes to add to the agent's :class:`~prescreen.web.server.LocalServer`."""
        return {
            "/api/correct": self._correct,
            "/api/outcome": self._outcome,
            "/api/rfi": lambda data: self._run(data, self._rfi),
            "/api/screening": lambda data: self._run(data, self._screening),
        }

    def _run(self, data: bytes, action: Callable[[dict[str, Any]], StationEvent]) -> Response:
        try:
            body = json.loads(data or b"{}")
            if not isinstance(body, dict):
                raise ValueError("body must be a JSON object")
        except ValueError as exc:
            return json_response({"error": str(exc)}, 400)
        try:  # 503 only when nothing was committed, so a retry never makes a second record
            event = wait_for_task(self.station.submit(lambda: action(body)), self.timeout_s)
        except (ComplianceError, ReferralError) as exc:
            unknown = isinstance(exc, (UnknownRecord, NoReferral))
            return json_response({"error": str(exc)}, 404 if unknown else 400)
        except (OutboxError, NotTaken) as exc:
            return json_response({"error": f"not recorded: {exc}; nothing was committed"}, 503)
        if event is None:
            return json_response({"status": "pending", "detail": PENDING}, 202)
        return json_response({"record": event.record}, 201)

    def _correct(self, data: bytes) -> Response:
        def action(body: dict[str, Any]) -> StationEvent:
            changes = body.get("changes")
            if not isinstance(changes, dict) or not all(
                isinstance(v, (str, int, float)) for v in changes.values()
            ):
                raise ComplianceError('changes must be an object like {"hts_code": "8708301050"}')
            return correct(
                self.station,
                str(body.get("record", "")),
                {str(k): str(v) for k, v in changes.items()},
                line=int(body.get("line", 1)),
                by=str(body.get("by") or "compliance")[:64],
            )

        return self._run(data, action)

    def _outcome(self, data: bytes) -> Response:
        def action(body: dict[str, Any]) -> StationEvent:
            return record_outcome(
                self.station,
                str(body.get("record", "")),
                str(body.get("outcome", "")),
                decided_by=str(body.get("decided_by") or "compliance"),
                customs_reference=body.get("customs_reference"),
                note=body.get("note"),
            )

        return self._run(data, action)

    def _rfi(self, body: dict[str, Any]) -> StationEvent:
        return answer_rfi(
            self.station,
            str(body.get("tracking_number", "")),
            body.get("fields"),
            by=str(body.get("answered_by") or "station"),
            note=body.get("note"),
        )

    def _screening(self, body: dict[str, Any]) -> StationEvent:
        return record_screening(
            self.station,
            str(body.get("tracking_number", "")),
            method=str(body.get("method", "")),
            operator=str(body.get("operator", "")),
            result=str(body.get("result", "")),
            screened_at=body.get("screened_at"),
            note=body.get("note"),
        )
