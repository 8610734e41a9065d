"""Exports in the formats filers take for the rules in force, and the record schema itself.

- ``ndjson``: one canonical record per line (the schema itself);
- ``csv``: the record schema flattened, one row per record (:data:`RECORD_COLUMNS`);
- ``us-informal``: US Type 11 informal entry, one row per line item (non-postal, up to $2,500);
- ``us-formal-lines``: US Type 01 entry line data, one row per line item (non-postal);
- ``us-mail``: US Type 13 informal mail entry, keyed by the UPU S10 item id, one row per line;
- ``ics2-ens``: EU ICS2 house-level entry summary, one row per goods item (EU-bound parcels);
- ``pact``: Canada PACT pre-load data, the 7+1 set with the house-to-master link, one row per parcel.

Each mapped format is a table of :class:`Element` (name, documented source, whether it is
mandatory) so ``docs/data-mapping.md`` can be checked against it by the tests. A parcel missing a
mandatory element is refused as a whole with the list of what is missing, never written as an
incomplete row; ``allow_incomplete`` writes it with the ``incomplete`` column naming the gaps.
Which parcels a format takes is decided by the channel (postal or not) and the destination; a
master carton is declared through its house bills, and a record superseded by a newer one in the
same export is left out. Facts and sources: ``../shared/docs/domain.md`` section 0.
"""

from __future__ import annotations

import csv
import json
import re
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any, TextIO

from prescreen.core.records import Record, dumps
from prescreen.risk.entry import agency_needs, destination, digits, hs6, press_on_line
from prescreen.risk.findings import item_of

Getter = Callable[[Record, dict[str, Any]], Any]
INFORMAL_LIMIT_USD = 2500.0  # 19 CFR 143.21(a): informal entry for shipments up to $2,500
# The 27 EU member states: ICS2 covers goods entering the EU.
# fmt: off
EU = frozenset({
    "AT", "BE", "BG", "CY", "CZ", "DE", "DK", "EE", "ES", "FI", "FR", "GR", "HR", "HU",
    "IE", "IT", "LT", "LU", "LV", "MT", "NL", "PL", "PT", "RO", "SE", "SI", "SK",
})
# fmt: on


@dataclass(frozen=True)
class Need:
    """Whether an element is mandatory (``text`` as documented) and, for a record and a line, if
    it is needed and whether a value is acceptable (``None``: any non-empty value)."""

    text: str
    needed: Callable[[Record, dict[str, Any]], bool] = lambda r, i: True
    valid: Callable[[Any], bool] | None = None


OPTIONAL = Need("no", lambda r, i: False)
MANDATORY = Need("yes")


def _channel(record: Record) -> str | None:
    channel = _path(record, "parcel.channel")
    return channel if isinstance(channel, str) else None


IF_CONSOLIDATED = Need("if consolidated", lambda r, i: _channel(r) == "cargo")


def _press(record: Record, item: dict[str, Any]) -> bool:
    reasons = [(str(r.get("code")), item_of(r)) for r in _path(record, "screening.reasons") or []]
    return press_on_line(reasons, item.get("_line") or 1, item, len(_path(record, "order.items") or []))


IF_CPSC = Need("if CPSC-regulated", lambda r, i: "CPSC" in agency_needs(i))
IF_PRESS = Need(
    "if a tablet or capsule press", lambda r, i: "DEA" in agency_needs(i, press_found=_press(r, i))
)
HTS10 = Need(
    "yes: 10 digits, chapters 01-97", valid=lambda v: bool(re.fullmatch(r"(?!00|77|98|99)\d{10}", v))
)
HS6 = Need("yes: 6 digits", valid=lambda v: bool(re.fullmatch(r"\d{6}", v)))
NON_POSTAL = Need("yes: express or cargo", valid=lambda v: v in ("express", "cargo"))
S10 = Need("yes: UPU S10 item id", valid=lambda v: bool(re.fullmatch(r"[A-Z]{2}\d{9}[A-Z]{2}", v)))


@dataclass(frozen=True)
class Element:
    """One output field: its name, where it comes from (as documented), how it is read and
    whether a filer needs it."""

    name: str
    source: str
    get: Getter
    need: Need = OPTIONAL


def _path(record: dict[str, Any] | None, dotted: str) -> Any:
    value: Any = record
    for part in dotted.split("."):
        if not isinstance(value, dict):
            return None
        value = value.get(part)
    return value


def _from(dotted: str) -> Getter:
    return lambda record, item: _path(record, dotted)


def _field(name: str, path: str, need: Need = OPTIONAL) -> Element:
    """An element read straight from one dotted path of the record, documented as that path."""
    return Element(name, path, _from(path), need)


def _either(name: str, first: str, second: str, need: Need = OPTIONAL) -> Element:
    """An element read from ``first``, else (when empty) from ``second``."""
    return Element(
        name,
        f"{first}, else {second}",
        lambda record, item: _path(record, first) or _path(record, second),
        need,
    )


def _item_field(name: str, key: str, need: Need = OPTIONAL) -> Element:
    return Element(name, f"order.items[].{key}", lambda record, item: _path(item, key), need)


def _constant(name: str, value: str) -> Element:
    return Element(name, f'"{value}"', lambda record, item: value, MANDATORY)


def one_line(address: dict[str, Any] | None) -> str | None:
    """A postal address as one line: street, city, region, postal code, country."""
    if not address:
        return None
    parts = [address.get(k) for k in ("line1", "line2", "city", "region", "postal_code", "country")]
    return ", ".join(str(p) for p in parts if p) or None


def _address(name: str, party: str, need: Need = MANDATORY) -> Element:
    return Element(
        name,
        f"order.{party}.address (one line)",
        lambda record, item: one_line(_path(record, f"order.{party}.address")),
        need,
    )


def _structured(prefix: str, party: str) -> tuple[Element, ...]:
    """Name and structured address of a party (ICS2 wants street, city, postcode, country apart)."""
    parts = (("street", "line1"), ("city", "city"), ("postal_code", "postal_code"), ("country", "country"))
    return (
        _field(f"{prefix}_name", f"order.{party}.name", MANDATORY),
        *(_field(f"{prefix}_{name}", f"order.{party}.address.{key}", MANDATORY) for name, key in parts),
    )


def house_bill(record: Record) -> str | None:
    """The parcel's own bill: the S10 item id for postal parcels, else the tracking number."""
    parcel = record.get("parcel") or {}
    return parcel.get("postal_item_id") or parcel.get("tracking_number")


def _final_recipient(record: Record, item: dict[str, Any]) -> Any:
    # NPRM: the final deliver-to party, "if different" from the consignee; else the consignee.
    party = _path(record, "order.final_recipient") or _path(record, "order.consignee")
    return (party or {}).get("name")


def _line_value_usd(record: Record, item: dict[str, Any]) -> float | None:
    value, quantity = item.get("unit_value_usd"), item.get("quantity")
    return None if value is None or quantity is None else round(float(value) * float(quantity), 2)


def total_value_usd(record: Record) -> float | None:
    """The parcel's value in USD (None when a line has no USD value)."""
    values = [_line_value_usd(record, item) for item in _path(record, "order.items") or []]
    return None if not values or None in values else round(sum(v for v in values if v is not None), 2)


def _reason_codes(record: Record, item: dict[str, Any]) -> str:
    return " ".join(r["code"] for r in _path(record, "screening.reasons") or [])


def _descriptions(record: Record, item: dict[str, Any]) -> str | None:
    items = _path(record, "order.items") or []
    return "; ".join(str(i.get("description")) for i in items if i.get("description")) or None


def _hts10(record: Record, item: dict[str, Any]) -> str | None:
    return digits(item.get("hts_code")) or None


def _chapter99(record: Record, item: dict[str, Any]) -> str | None:
    return " ".join(item.get("chapter99") or []) or None


# --- the elements, shared by the tables that carry them ----------------------------------------

RECORD_ID = _field("preclearance_record_id", "record_id", MANDATORY)
SUPERSEDES = _field("supersedes_record_id", "supersedes.record_id")
FILER = _field("filer_code", "filer.code", MANDATORY)
IOR = (
    _field("importer_of_record_name", "order.importer_of_record.name", MANDATORY),
    _field("importer_of_record_number", "order.importer_of_record.id", MANDATORY),
    _field("importer_of_record_id_type", "order.importer_of_record.id_type", MANDATORY),
)
CONSIGNEE = (
    _field("consignee_name", "order.consignee.name", MANDATORY),
    _address("consignee_address", "consignee"),
)
FINAL_RECIPIENT = Element(
    "final_recipient_name", "order.final_recipient.name, else order.consignee.name", _final_recipient
)
SELLER = (_field("seller_name", "order.seller.name", MANDATORY), _address("seller_address", "seller"))
TRANSPORT = (
    _field("channel", "parcel.channel", NON_POSTAL),
    _field("house_bill", "parcel.tracking_number", MANDATORY),
    _field("master_bill", "parcel.master_bill", IF_CONSOLIDATED),
    _field("carrier", "parcel.carrier", MANDATORY),
    _field("transport_mode", "parcel.transport_mode", MANDATORY),
    _field("port_of_entry", "parcel.port_of_entry", MANDATORY),
    _field("arrival_date", "parcel.arrival_date"),
    _either("country_of_export", "order.shipper.address.country", "order.seller.address.country", MANDATORY),
)
LINE = Element("line_number", "position in order.items (1-based)", lambda r, i: i.get("_line"), MANDATORY)
DESCRIPTION = _item_field("description", "description", MANDATORY)
TARIFF = (
    Element("hts_10", "order.items[].hts_code (digits)", _hts10, HTS10),
    Element("chapter99_numbers", "order.items[].chapter99 (space separated)", _chapter99),
)
ORIGIN = _item_field("country_of_origin", "origin_country", MANDATORY)
VALUES = (
    _item_field("quantity", "quantity", MANDATORY),
    _item_field("unit_value", "unit_value", MANDATORY),
    _field("currency", "order.currency", MANDATORY),
    _field("usd_rate", "order.usd_rate.rate", MANDATORY),
    _field("usd_rate_date", "order.usd_rate.date", MANDATORY),
    Element("line_value_usd", "order.items[].unit_value_usd × quantity", _line_value_usd, MANDATORY),
)
OTHER_AGENCIES = (
    _item_field("cpsc_certificate", "cpsc_certificate", IF_CPSC),
    _item_field("dea_452_transaction_id", "dea_452_transaction_id", IF_PRESS),
)
GROSS_WEIGHT = Element(
    "gross_weight_kg", "parcel.measured_weight_kg (scale)", _from("parcel.measured_weight_kg"), MANDATORY
)
PRESCREEN = (
    _field("prescreen_verdict", "screening.verdict"),
    Element("prescreen_reasons", "screening.reasons[].code (space separated)", _reason_codes),
)

US_INFORMAL: tuple[Element, ...] = (
    _constant("entry_type", "11"),
    RECORD_ID,
    SUPERSEDES,
    FILER,
    *IOR,
    *CONSIGNEE,
    FINAL_RECIPIENT,
    *SELLER,
    *TRANSPORT,
    _field("gift", "order.gift"),
    LINE,
    DESCRIPTION,
    *TARIFF,
    ORIGIN,
    _item_field("manufacturer_mid", "manufacturer.mid", MANDATORY),
    *VALUES,
    Element(
        "total_value_usd",
        "sum of line_value_usd",
        lambda r, i: total_value_usd(r),
        Need("yes: up to 2500", valid=lambda v: v <= INFORMAL_LIMIT_USD),
    ),
    *OTHER_AGENCIES,
    GROSS_WEIGHT,
    *PRESCREEN,
)

US_FORMAL_LINES: tuple[Element, ...] = (
    _constant("entry_type", "01"),
    RECORD_ID,
    SUPERSEDES,
    FILER,
    *IOR,
    *CONSIGNEE,
    *SELLER,
    *TRANSPORT,
    LINE,
    DESCRIPTION,
    *TARIFF,
    ORIGIN,
    _item_field("manufacturer_name", "manufacturer.name", MANDATORY),
    Element(
        "manufacturer_address",
        "order.items[].manufacturer.address (one line)",
        lambda r, i: one_line(_path(i, "manufacturer.address")),
        MANDATORY,
    ),
    _item_field("manufacturer_mid", "manufacturer.mid", MANDATORY),
    *VALUES,
    _item_field("net_weight_kg", "net_weight_kg"),
    *OTHER_AGENCIES,
    GROSS_WEIGHT,
    *PRESCREEN,
)

US_MAIL: tuple[Element, ...] = (
    _constant("entry_type", "13"),
    _field("postal_item_id", "parcel.postal_item_id", S10),
    RECORD_ID,
    SUPERSEDES,
    FILER,
    _field("carrier_account", "parcel.carrier_account"),
    *IOR,
    _field("sender_name", "order.shipper.name", MANDATORY),
    _address("sender_address", "shipper"),
    _field("addressee_name", "order.consignee.name", MANDATORY),
    _address("addressee_address", "consignee"),
    _field("shipment_category", "order.shipment_category", MANDATORY),
    LINE,
    DESCRIPTION,
    *TARIFF,
    ORIGIN,
    *VALUES,
    *OTHER_AGENCIES,
    GROSS_WEIGHT,
    *PRESCREEN,
)

ICS2_ENS: tuple[Element, ...] = (
    Element(
        "house_bill",
        "parcel.postal_item_id, else parcel.tracking_number",
        lambda r, i: house_bill(r),
        MANDATORY,
    ),
    _field("master_air_waybill", "parcel.master_bill", IF_CONSOLIDATED),
    _field("transport_mode", "parcel.transport_mode"),
    *_structured("seller", "seller"),
    _field("seller_eori", "order.seller.eori"),
    _field("ioss_number", "order.ioss_number"),
    *_structured("buyer", "consignee"),
    _field("buyer_eori", "order.consignee.eori"),
    _either("total_gross_mass_kg", "parcel.measured_weight_kg", "order.declared_weight_kg", MANDATORY),
    LINE,
    DESCRIPTION,
    Element("hs_code_6", "order.items[].hts_code first 6 digits", lambda r, i: hs6(i.get("hts_code")), HS6),
    _item_field("country_of_origin", "origin_country"),
    _item_field("item_value", "unit_value"),
    _field("currency", "order.currency"),
    _field("correlation_id", "record_id", MANDATORY),
)

PACT: tuple[Element, ...] = (
    Element(
        "house_bill",
        "parcel.postal_item_id, else parcel.tracking_number",
        lambda r, i: house_bill(r),
        MANDATORY,
    ),
    _field("master_bill", "parcel.master_bill", IF_CONSOLIDATED),
    _field("shipper_name", "order.shipper.name", MANDATORY),
    _address("shipper_address", "shipper"),
    _field("consignee_name", "order.consignee.name", MANDATORY),
    _address("consignee_address", "consignee"),
    Element("cargo_description", "order.items[].description (joined with '; ')", _descriptions, MANDATORY),
    Element("piece_count", "1 per parcel record", lambda r, i: 1, MANDATORY),
    _either("weight", "parcel.measured_weight_kg", "order.declared_weight_kg", MANDATORY),
    _constant("weight_unit", "KG"),
    _field("correlation_id", "record_id", MANDATORY),
)

RECORD_COLUMNS: tuple[Element, ...] = (
    *(
        _field(name, name)
        for name in (
            "record_id",
            "kind",
            "site_id",
            "device_id",
            "seq",
            "created_at",
            "agent_version",
        )
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
    _field("schema", "schema"),  # columns added with record schema v2 go last
)


def _json(value: Any) -> str | None:
    return None if value is None else json.dumps(value, separators=(",", ":"), ensure_ascii=False)


# --- which parcels each format takes ------------------------------------------------------------


def _destination(record: Record) -> str | None:
    return destination(record.get("order"))


def _not_us(record: Record) -> str | None:
    """Why a record is not for a US export (bound elsewhere), or None (US, or not known yet)."""
    where = _destination(record)
    return None if where in ("US", None) else f"bound for {where}, not the US"


def _us_non_postal(record: Record) -> str | None:
    return _not_us(record) or ("postal item: us-mail" if _channel(record) == "postal" else None)


def _us_informal(record: Record) -> str | None:
    reason = _us_non_postal(record)
    total = total_value_usd(record)
    if reason is None and total is not None and total > INFORMAL_LIMIT_USD:
        return f"{total:.2f} USD is over the informal limit: us-formal-lines"
    return reason


def _us_mail(record: Record) -> str | None:
    return _not_us(record) or (None if _channel(record) == "postal" else "not a postal item")


def _to(countries: frozenset[str], name: str) -> Callable[[Record], str | None]:
    return lambda record: None if _destination(record) in countries else f"not bound for {name}"


@dataclass(frozen=True)
class Format:
    """A mapped export: its element table, one row per line item or per parcel, and which verdict
    records it takes (``scope`` gives the reason a record is not for it, or None)."""

    name: str
    elements: tuple[Element, ...]
    per_line: bool
    scope: Callable[[Record], str | None]


MAPPED: dict[str, Format] = {
    f.name: f
    for f in (
        Format("us-informal", US_INFORMAL, True, _us_informal),
        Format("us-formal-lines", US_FORMAL_LINES, True, _us_non_postal),
        Format("us-mail", US_MAIL, True, _us_mail),
        Format("ics2-ens", ICS2_ENS, True, _to(EU, "the EU")),
        Format("pact", PACT, False, _to(frozenset({"CA"}), "Canada")),
    )
}
FORMATS = ("ndjson", "csv", *MAPPED)


@dataclass(frozen=True)
class Refusal:
    """A parcel left out of an export because mandatory elements are missing or invalid."""

    record_id: str
    house_bill: str | None
    missing: tuple[str, ...]

    def __str__(self) -> str:
        return f"{self.house_bill or '(no label)'} (record {self.record_id}): {'; '.join(self.missing)}"


@dataclass
class Result:
    """What an export wrote, refused and left out as not for this format."""

    written: int = 0
    refused: list[Refusal] = field(default_factory=list)
    not_applicable: int = 0


def _problem(element: Element, value: Any, record: Record, item: dict[str, Any]) -> str | None:
    need = element.need
    if not need.needed(record, item):
        return None
    if value is None or value == "":
        return f"{element.name} missing"
    if need.valid is not None and not need.valid(value):
        return f"{element.name} {value!r} is not {need.text.removeprefix('yes: ')}"
    return None


def mapped_rows(record: Record, fmt: Format) -> tuple[list[dict[str, Any]], list[str]]:
    """The rows of one parcel and every problem a filer would be rejected for (empty: complete)."""
    items = (_path(record, "order.items") or [{}]) if fmt.per_line else [{}]
    rows, problems = [], []
    for number, item in enumerate(items, start=1):
        line = {**item, "_line": number}
        row = {e.name: e.get(record, line) for e in fmt.elements}
        for element in fmt.elements:
            problem = _problem(element, row[element.name], record, line)
            if problem is not None:
                problems.append(f"line {number}: {problem}" if fmt.per_line and len(items) > 1 else problem)
        rows.append(row)
    return rows, list(dict.fromkeys(problems))


def _in_scope(records: list[Record], fmt: Format) -> Iterator[Record | None]:
    """The verdict records ``fmt`` takes; None for each record it leaves out."""
    superseded = {_path(r, "supersedes.record_id") for r in records if r.get("supersedes")}
    for record in records:
        house_level = record.get("kind") == "verdict" and not _path(record, "parcel.carton")
        if house_level and record.get("record_id") not in superseded and fmt.scope(record) is None:
            yield record
        else:
            yield None


def write_mapped(
    records: Iterable[Record], fmt_name: str, out: TextIO, *, allow_incomplete: bool = False
) -> Result:
    """Write the rows of a mapped format as CSV; refuse incomplete parcels (or, with
    ``allow_incomplete``, write them with the gaps in the ``incomplete`` column)."""
    fmt = MAPPED[fmt_name]
    writer = csv.DictWriter(
        out, fieldnames=[*(e.name for e in fmt.elements), "incomplete"], lineterminator="\n"
    )
    writer.writeheader()
    result = Result()
    for record in _in_scope(list(records), fmt):
        if record is None:
            result.not_applicable += 1
            continue
        rows, problems = mapped_rows(record, fmt)
        if problems and not allow_incomplete:
            result.refused.append(Refusal(record["record_id"], house_bill(record), tuple(problems)))
            continue
        for row in rows:
            writer.writerow({**row, "incomplete": "; ".join(problems)})
            result.written += 1
    return result


def record_row(record: Record) -> dict[str, Any]:
    """The record schema flattened to :data:`RECORD_COLUMNS`."""
    return {e.name: e.get(record, {}) for e in RECORD_COLUMNS}


def write_records(
    records: Iterable[Record], fmt: str, out: TextIO, *, allow_incomplete: bool = False
) -> Result:
    """Write ``records`` to ``out`` in ``fmt`` (one of :data:`FORMATS`).

    Raises:
        ValueError: an unknown format.
    """
    if fmt in MAPPED:
        return write_mapped(records, fmt, out, allow_incomplete=allow_incomplete)
    result = Result()
    if fmt == "ndjson":
        for record in records:
            out.write(dumps(record) + "\n")
            result.written += 1
        return result
    if fmt != "csv":
        raise ValueError(f"unknown export format {fmt!r}; one of {', '.join(FORMATS)}")
    writer = csv.DictWriter(out, fieldnames=[e.name for e in RECORD_COLUMNS], lineterminator="\n")
    writer.writeheader()
    for record in records:
        writer.writerow(record_row(record))
        result.written += 1
    return result
