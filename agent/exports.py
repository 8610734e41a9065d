"""Exports in formats other parties already take: the record schema, and two flat mappings.

- ``ndjson``: one canonical record per line (the schema itself);
- ``csv``: the record schema flattened, one row per record (:data:`RECORD_COLUMNS`);
- ``entry`` / ``entry-csv``: one row per line item mapped onto the data elements of a US
  low-value (Type 86 / "enhanced") entry (:data:`ENTRY_ELEMENTS`);
- ``ics2``: one row per parcel mapped onto the "7+1" pre-loading (PLACI) data set (:data:`PLACI_ELEMENTS`).

Each mapping is a table of (element, source path, why) so ``docs/data-mapping.md`` can be checked
against it by the tests. Postal parity: the house bill is the UPU S10 item id for a postal parcel
and the carrier tracking number for an express one; every other element comes from the same place.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any, TextIO

from prescreen.records import Record, dumps

Getter = Callable[[Record, dict[str, Any]], Any]


@dataclass(frozen=True)
class Element:
    """One output field: its name, where it comes from (as documented) and how it is read."""

    name: str
    source: str
    get: Getter


def _path(record: dict[str, Any] | None, dotted: str) -> Any:
    value: Any = record
    for part in dotted.split("."):
        if not isinstance(value, dict):
            return None
        value = value.get(part)
    return value


def _from(dotted: str) -> Getter:
    return lambda record, item: _path(record, dotted)


def _field(name: str, path: str) -> Element:
    """An element read straight from one dotted path of the record, documented as that path."""
    return Element(name, path, _from(path))


def _item(key: str) -> Getter:
    return lambda record, item: item.get(key)


def one_line(address: dict[str, Any] | None) -> str | None:
    """A postal address as one line: street, city, region, postal code, country."""
    if not address:
        return None
    parts = [address.get(k) for k in ("line1", "line2", "city", "region", "postal_code", "country")]
    return ", ".join(str(p) for p in parts if p) or None


def _address(party: str) -> Getter:
    return lambda record, item: one_line(_path(record, f"order.{party}.address"))


def house_bill(record: Record) -> str | None:
    """The parcel's own bill: the S10 item id for postal parcels, else the tracking number."""
    parcel = record.get("parcel") or {}
    return parcel.get("postal_item_id") or parcel.get("tracking_number")


def _final_recipient(field: str) -> Getter:
    # NPRM: the final deliver-to party, "if different" from the consignee; else the consignee.
    def get(record: Record, item: dict[str, Any]) -> Any:
        party = _path(record, "order.final_recipient") or _path(record, "order.consignee")
        return one_line((party or {}).get("address")) if field == "address" else (party or {}).get(field)

    return get


def _line_value(record: Record, item: dict[str, Any]) -> float | None:
    value, quantity = item.get("unit_value"), item.get("quantity")
    return None if value is None or quantity is None else round(float(value) * float(quantity), 2)


def _reason_codes(record: Record, item: dict[str, Any]) -> str:
    return " ".join(r["code"] for r in _path(record, "screening.reasons") or [])


def _descriptions(record: Record, item: dict[str, Any]) -> str | None:
    items = _path(record, "order.items") or []
    return "; ".join(str(i.get("description")) for i in items if i.get("description")) or None


def _hs6(record: Record, item: dict[str, Any]) -> str | None:
    codes = [str(i["hts_code"])[:6] for i in _path(record, "order.items") or [] if i.get("hts_code")]
    return " ".join(dict.fromkeys(codes)) or None


def _weight(record: Record, item: dict[str, Any]) -> Any:
    return _path(record, "parcel.measured_weight_kg") or _path(record, "order.declared_weight_kg")


ENTRY_ELEMENTS: tuple[Element, ...] = (
    _field("preclearance_record_id", "record_id"),
    _field("supersedes_record_id", "supersedes.record_id"),
    _field("filer_code", "filer.code"),
    _field("filer_type", "filer.type"),
    Element(
        "house_bill_number", "parcel.postal_item_id, else parcel.tracking_number", lambda r, i: house_bill(r)
    ),
    _field("carrier", "parcel.carrier"),
    _field("channel", "parcel.channel"),
    _field("consolidation_id", "parcel.master_carton_id"),
    _field("order_id", "order.order_id"),
    _field("order_date", "order.order_date"),
    _field("consignee_name", "order.consignee.name"),
    Element("consignee_address", "order.consignee.address (one line)", _address("consignee")),
    _field("consignee_tax_id", "order.consignee.id"),
    Element(
        "final_recipient_name",
        "order.final_recipient.name, else order.consignee.name",
        _final_recipient("name"),
    ),
    Element(
        "final_recipient_address",
        "order.final_recipient.address, else order.consignee.address",
        _final_recipient("address"),
    ),
    _field("seller_name", "order.seller.name"),
    Element("seller_address", "order.seller.address (one line)", _address("seller")),
    _field("seller_country", "order.seller.address.country"),
    _field("shipper_name", "order.shipper.name"),
    Element("shipper_address", "order.shipper.address (one line)", _address("shipper")),
    _field("marketplace", "order.marketplace"),
    _field("shipment_category", "order.shipment_category"),
    Element("line_number", "position in order.items (1-based)", lambda r, i: i.get("_line")),
    Element("description", "order.items[].description", _item("description")),
    Element("hts_10", "order.items[].hts_code", _item("hts_code")),
    Element("country_of_origin", "order.items[].origin_country", _item("origin_country")),
    Element("quantity", "order.items[].quantity", _item("quantity")),
    Element("unit_value", "order.items[].unit_value", _item("unit_value")),
    Element("line_value", "order.items[].unit_value × quantity", _line_value),
    Element("marketplace_price", "order.items[].marketplace_price", _item("marketplace_price")),
    _field("currency", "order.currency"),
    _field("total_declared_value", "order.total_declared_value"),
    Element("gross_weight_kg", "parcel.measured_weight_kg (scale)", _from("parcel.measured_weight_kg")),
    _field("declared_weight_kg", "order.declared_weight_kg"),
    _field("prescreen_verdict", "screening.verdict"),
    Element("prescreen_reasons", "screening.reasons[].code (space separated)", _reason_codes),
)

PLACI_ELEMENTS: tuple[Element, ...] = (
    Element(
        "house_bill_number", "parcel.postal_item_id, else parcel.tracking_number", lambda r, i: house_bill(r)
    ),
    _field("shipper_name", "order.shipper.name"),
    Element("shipper_address", "order.shipper.address (one line)", _address("shipper")),
    _field("consignee_name", "order.consignee.name"),
    Element("consignee_address", "order.consignee.address (one line)", _address("consignee")),
    Element("cargo_description", "order.items[].description (joined with '; ')", _descriptions),
    Element("total_piece_count", "1 per parcel record", lambda r, i: 1),
    Element("total_weight_kg", "parcel.measured_weight_kg, else order.declared_weight_kg", _weight),
    Element("hs_code_6", "order.items[].hts_code first 6 digits (ICS2 house level)", _hs6),
    _field("correlation_id", "record_id"),
)

RECORD_COLUMNS: tuple[Element, ...] = (
    *(
        _field(name, name)
        for name in ("record_id", "kind", "site_id", "device_id", "seq", "created_at", "agent_version")
    ),
    _field("filer_code", "filer.code"),
    _field("tracking_number", "parcel.tracking_number"),
    _field("carrier", "parcel.carrier"),
    _field("channel", "parcel.channel"),
    _field("postal_item_id", "parcel.postal_item_id"),
    _field("master_carton_id", "parcel.master_carton_id"),
    _field("measured_weight_kg", "parcel.measured_weight_kg"),
    _field("order_id", "order.order_id"),
    _field("seller_name", "order.seller.name"),
    Element("items", "order.items (JSON)", lambda r, i: _json(_path(r, "order.items"))),
    _field("verdict", "screening.verdict"),
    _field("score", "screening.score"),
    Element("reasons", "screening.reasons[].code", _reason_codes),
    _field("supersedes_record_id", "supersedes.record_id"),
    _field("supersedes_reason", "supersedes.reason"),
    _field("outcome", "outcome.outcome"),
    _field("outcome_refers_to", "outcome.refers_to"),
    _field("key_id", "signature.key_id"),
)


def _json(value: Any) -> str | None:
    return None if value is None else json.dumps(value, separators=(",", ":"), ensure_ascii=False)


def entry_rows(record: Record) -> Iterator[dict[str, Any]]:
    """One US low-value entry row per line item of a verdict record (none for other kinds)."""
    if record.get("kind") != "verdict":
        return
    items = _path(record, "order.items") or [{}]  # an unmanifested parcel still gets one row
    for number, item in enumerate(items, start=1):
        line = {**item, "_line": number}
        yield {e.name: e.get(record, line) for e in ENTRY_ELEMENTS}


def placi_row(record: Record) -> dict[str, Any] | None:
    """The 7+1 pre-loading row of a verdict record (None for other kinds)."""
    if record.get("kind") != "verdict":
        return None
    return {e.name: e.get(record, {}) for e in PLACI_ELEMENTS}


def record_row(record: Record) -> dict[str, Any]:
    """The record schema flattened to :data:`RECORD_COLUMNS`."""
    return {e.name: e.get(record, {}) for e in RECORD_COLUMNS}


FORMATS = ("ndjson", "csv", "entry", "entry-csv", "ics2")


def rows(records: Iterable[Record], fmt: str) -> Iterator[dict[str, Any]]:
    """The flat rows of a mapped format (csv, entry, entry-csv or ics2)."""
    for record in records:
        if fmt == "csv":
            yield record_row(record)
        elif fmt in ("entry", "entry-csv"):
            yield from entry_rows(record)
        elif fmt == "ics2":
            row = placi_row(record)
            if row is not None:
                yield row
        else:
            raise ValueError(f"unknown export format {fmt!r}; one of {', '.join(FORMATS)}")


def write_records(records: Iterable[Record], fmt: str, out: TextIO) -> int:
    """Write ``records`` to ``out`` in ``fmt``; returns the number of lines or rows written."""
    if fmt == "ndjson":
        count = 0
        for record in records:
            out.write(dumps(record) + "\n")
            count += 1
        return count
    columns = {
        "csv": RECORD_COLUMNS,
        "entry": ENTRY_ELEMENTS,
        "entry-csv": ENTRY_ELEMENTS,
        "ics2": PLACI_ELEMENTS,
    }
    if fmt == "entry":  # NDJSON of the mapped rows
        count = 0
        for row in rows(records, fmt):
            out.write(json.dumps(row, ensure_ascii=False) + "\n")
            count += 1
        return count
    writer = csv.DictWriter(out, fieldnames=[e.name for e in columns[fmt]], lineterminator="\n")
    writer.writeheader()
    count = 0
    for row in rows(records, fmt):
        writer.writerow(row)
        count += 1
    return count
