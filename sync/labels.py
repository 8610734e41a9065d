"""Training labels from what customs found: stored verdicts joined with their customs outcomes.

Why at the receiver: it holds every station's signed verdict records and the ``downlink``
records in which each station confirmed a customs outcome (``downlink.customs_outcome``, naming
the verdict it settles), so the table is built from evidence, not from a separate spreadsheet.

The label rule (documented in the README, "Learning loop"):

- ``seized``, ``denied_entry``, ``penalty``, ``destroyed`` → 1 (customs found something);
- ``released``, ``assessment_complete`` → 0 (looked at, nothing found);
- ``abandoned``, ``returned``, or no outcome → no row (they say nothing about the declaration);
- a parcel with outcomes of both kinds is 1 (a penalty after a release is still a finding).

A corrected record (``supersedes``) is one parcel with its versions: the row is the final
version's data, timed by the first scan; an outcome naming any version counts for the parcel.
The same tracking number scanned again at a station is the same parcel (its newest scan counts).

An outcome counts only for a verdict of the station that recorded it: each station signs its own
records, so one station (misconfigured, cloned or compromised) cannot label another's parcels.
Given customs' public keys, an outcome counts only if it carries customs' own signed message
saying that outcome of that parcel to that station (:func:`customs_said`), so not even a station
can label its own parcels without customs' word (README, "Learning loop").
"""

from __future__ import annotations

import csv
from collections.abc import Iterable, Mapping
from typing import IO, Any

from prescreen.core.signing import KeyRing
from prescreen.sync.topics import addressed_to

# The kinds of record labels are built from (the store selects only these).
KINDS = ("verdict", "downlink")
POSITIVE = frozenset({"seized", "denied_entry", "penalty", "destroyed"})
NEGATIVE = frozenset({"released", "assessment_complete"})
# The ``model eval`` columns (prescreen.models.signals.order_from_row), then where, when and why.
COLUMNS = (
    "description",
    "hts_code",
    "declared_value_usd",
    "declared_weight_kg",
    "measured_weight_kg",
    "origin_country",
    "quantity",
    "currency",
    "shipment_category",
    "label",
    "station",
    "time",
    "outcome",
    "customs_reference",
    "record_id",
    "tracking_number",
    "items",
)
# ``records labels --screened``: every parcel screened, labelled or not, and whether the rules
# cleared it (1) -- what ``model train --calibrate-on`` measures a review budget on.
SCREENED_COLUMNS = (*COLUMNS[:9], "station", "time", "record_id", "tracking_number", "items", "cleared")


def label_for(outcomes: Iterable[str]) -> int | None:
    """1, 0, or None (no row) for a parcel's customs outcomes, by the rule above."""
    found = set(outcomes)
    if found & POSITIVE:
        return 1
    if found & NEGATIVE:
        return 0
    return None


def _usd_value(order: Mapping[str, Any]) -> float | None:
    """The order's value in USD: its lines' USD values (v2), or its own value if in USD (v1)."""
    items = [i for i in order.get("items") or [] if isinstance(i, Mapping)]
    total = 0.0
    for item in items:
        quantity = float(item.get("quantity") or 1.0)
        unit = item.get("unit_value_usd")
        if unit is None and str(order.get("currency") or "").upper() == "USD":
            unit = item.get("unit_value")
        if unit is None:
            return None
        total += float(unit) * quantity
    return round(total, 2) if items else None


def flat_row(verdict: Mapping[str, Any]) -> dict[str, Any]:
    """A verdict record as a flat ``model eval`` row (without label and outcome).

    The flat shape has one line: a parcel of several lines is its most valuable line's
    description, code and origin, with the parcel's total quantity and USD value.
    """
    order = verdict.get("order") or {}
    items = [i for i in order.get("items") or [] if isinstance(i, Mapping)]
    main = max(
        items,
        key=lambda i: (
            float(i.get("unit_value_usd") or i.get("unit_value") or 0) * float(i.get("quantity") or 1)
        ),
        default={},
    )
    parcel = verdict.get("parcel") or {}
    return {
        "description": main.get("description") or "",
        "hts_code": main.get("hts_code") or "",
        "declared_value_usd": _usd_value(order),
        "declared_weight_kg": order.get("declared_weight_kg"),
        "measured_weight_kg": parcel.get("measured_weight_kg"),
        "origin_country": main.get("origin_country") or "",
        "quantity": sum(float(i.get("quantity") or 1.0) for i in items) if items else 1.0,
        "currency": "USD",
        "shipment_category": order.get("shipment_category") or "",
        "station": f"{verdict.get('site_id')}/{verdict.get('device_id')}",
        "record_id": verdict.get("record_id"),
        "tracking_number": parcel.get("tracking_number") or "",
        "items": len(items),
    }


def _station(record: Mapping[str, Any]) -> tuple[str, str]:
    """(site, device) of a record: whose key signed it."""
    return str(record.get("site_id")), str(record.get("device_id"))


def _first_version(rid: str, verdicts: Mapping[str, Mapping[str, Any]]) -> str:
    """The oldest version ``rid``'s ``supersedes`` chain reaches among ``verdicts``.

    The chain is what stations signed, so it may loop (a faulty or forged ``supersedes``, A→B→C→B):
    the walk stops at the first record it has seen before, whether or not that is ``rid``.
    """
    root, seen = rid, {rid}
    while True:
        older = str((verdicts[root].get("supersedes") or {}).get("record_id") or "")
        if older not in verdicts or older in seen:
            return root
        seen.add(older)
        root = older


def customs_said(
    outcome: Mapping[str, Any], station: tuple[str, str], verdict: Mapping[str, Any], customs: KeyRing
) -> bool:
    """Whether ``outcome`` (recorded by ``station``, settling ``verdict``) carries customs' own
    message, signed by one of the ``customs`` keys, addressed to that station, with the same
    outcome and reference, and naming that verdict (by record id, or by its tracking number)."""
    message = outcome.get("message")
    if not isinstance(message, dict) or customs.check(message) is not None:
        return False
    if message.get("type") != "outcome" or not addressed_to(message.get("target"), *station):
        return False
    if message.get("outcome") != outcome.get("outcome"):
        return False
    if str(message.get("customs_reference") or "").strip() != outcome.get("customs_reference"):
        return False
    if message.get("record_id") is not None:
        return str(message["record_id"]).strip() == str(verdict.get("record_id"))
    tracking = (verdict.get("parcel") or {}).get("tracking_number")
    return tracking is not None and str(message.get("tracking_number") or "").strip() == tracking


def parcels(records: Iterable[Mapping[str, Any]], customs: KeyRing | None = None) -> list[dict[str, Any]]:
    """Verdict records grouped by parcel, each with its customs outcomes.

    Each parcel: ``versions`` (its verdict records, oldest first), ``final`` (the version no
    correction replaced, else the newest) and ``outcomes`` (the ``customs_outcome`` of every
    applied outcome message naming one of its versions, recorded by that version's station, and
    with ``customs`` keys given, carrying customs' signed word for it).
    """
    verdicts: dict[str, Mapping[str, Any]] = {}
    outcomes: list[tuple[tuple[str, str], Mapping[str, Any]]] = []
    for record in records:
        if record.get("kind") == "verdict" and record.get("order"):
            verdicts[str(record["record_id"])] = record
        elif record.get("kind") == "downlink":
            downlink = record.get("downlink") or {}
            if downlink.get("status") == "applied" and isinstance(downlink.get("customs_outcome"), Mapping):
                outcomes.append((_station(record), downlink["customs_outcome"]))
    superseded = {str((v.get("supersedes") or {}).get("record_id")) for v in verdicts.values()}
    grouped: dict[str, dict[str, Any]] = {}
    for rid, verdict in verdicts.items():
        # A parcel is its tracking number at a site, or else its first version (follow supersedes).
        tracking = (verdict.get("parcel") or {}).get("tracking_number")
        key = f"{verdict.get('site_id')}|{tracking}" if tracking else _first_version(rid, verdicts)
        grouped.setdefault(key, {"versions": [], "outcomes": []})["versions"].append(verdict)
    by_record = {str(v["record_id"]): parcel for parcel in grouped.values() for v in parcel["versions"]}
    for station, outcome in outcomes:
        settled = verdicts.get(str(outcome.get("refers_to")))
        if settled is None or _station(settled) != station:
            continue
        if customs is None or customs_said(outcome, station, settled, customs):
            by_record[str(settled["record_id"])]["outcomes"].append(outcome)
    for parcel in grouped.values():
        versions = sorted(parcel["versions"], key=lambda v: str(v.get("created_at")))
        parcel["versions"] = versions
        parcel["final"] = next(
            (v for v in reversed(versions) if str(v["record_id"]) not in superseded), versions[-1]
        )
    return list(grouped.values())


def labels_by_record(records: Iterable[Mapping[str, Any]]) -> dict[str, int]:
    """The label of every verdict record (all versions) of every parcel customs decided on."""
    labels: dict[str, int] = {}
    for parcel in parcels(records):
        label = label_for(o["outcome"] for o in parcel["outcomes"])
        if label is not None:
            labels.update({str(v["record_id"]): label for v in parcel["versions"]})
    return labels


def label_rows(records: Iterable[Mapping[str, Any]], customs: KeyRing | None = None) -> list[dict[str, Any]]:
    """One labelled row per parcel with a deciding customs outcome (with ``customs`` keys: one
    customs signed, see :func:`customs_said`), oldest scan first."""
    rows = []
    for parcel in parcels(records, customs):
        label = label_for(o["outcome"] for o in parcel["outcomes"])
        if label is None:
            continue
        deciding = [o for o in parcel["outcomes"] if (o["outcome"] in POSITIVE) == bool(label)]
        rows.append(
            {
                **flat_row(parcel["final"]),
                "label": label,
                "time": parcel["versions"][0].get("created_at"),
                "outcome": deciding[-1]["outcome"],
                "customs_reference": deciding[-1].get("customs_reference") or "",
            }
        )
    return sorted(rows, key=lambda r: (str(r["time"]), str(r["record_id"])))


def screened_rows(records: Iterable[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """One row per parcel screened (its final version), labelled or not, oldest scan first, with
    ``cleared`` 1 where the rules cleared it (the only parcels a model may raise)."""
    rows = [
        {
            **flat_row(parcel["final"]),
            "time": parcel["versions"][0].get("created_at"),
            "cleared": int((parcel["final"].get("screening") or {}).get("verdict") == "CLEAR"),
        }
        for parcel in parcels(records)
    ]
    return sorted(rows, key=lambda r: (str(r["time"]), str(r["record_id"])))


def write_csv(rows: Iterable[Mapping[str, Any]], out: IO[str], columns: tuple[str, ...] = COLUMNS) -> int:
    """Write the rows in ``columns`` order (default :data:`COLUMNS`); returns how many."""
    writer = csv.DictWriter(out, fieldnames=columns, extrasaction="ignore", lineterminator="\n")
    writer.writeheader()
    count = 0
    for row in rows:
        writer.writerow({k: "" if row.get(k) is None else row.get(k) for k in columns})
        count += 1
    return count
