"""How an export element reads a parcel record: the element (name, documented source, reader, and
whether a filer needs it) and the readers and needs the filer tables are made of.

Kept apart from the tables (:mod:`prescreen.trade.filer_tables`) and the writing
(:mod:`prescreen.trade.exports`) so each says one thing: what an element is, which elements each
format has, and how a file is written and a parcel refused.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from prescreen.core.records import Record
from prescreen.risk.entry import agency_needs, digits, press_on_line
from prescreen.risk.findings import item_of

Getter = Callable[[Record, dict[str, Any]], Any]


@dataclass(frozen=True)
class Need:
    """Whether an element is mandatory (``text`` as documented) and, for a record and a line, if
    it is needed and whether a value is acceptable (``None``: any non-empty value)."""

    text: str
    needed: Callable[[Record, dict[str, Any]], bool] = lambda r, i: True
    valid: Callable[[Any], bool] | None = None


OPTIONAL = Need("no", lambda r, i: False)
MANDATORY = Need("yes")


def channel(record: Record) -> str | None:
    channel = value_at(record, "parcel.channel")
    return channel if isinstance(channel, str) else None


IF_CONSOLIDATED = Need("if consolidated", lambda r, i: channel(r) == "cargo")


def _press(record: Record, item: dict[str, Any]) -> bool:
    reasons = [(str(r.get("code")), item_of(r)) for r in value_at(record, "screening.reasons") or []]
    return press_on_line(reasons, item.get("_line") or 1, item, len(value_at(record, "order.items") or []))


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


def value_at(record: dict[str, Any] | None, dotted: str) -> Any:
    value: Any = record
    for part in dotted.split("."):
        if not isinstance(value, dict):
            return None
        value = value.get(part)
    return value


def read_at(dotted: str) -> Getter:
    return lambda record, item: value_at(record, dotted)


def field_at(name: str, path: str, need: Need = OPTIONAL) -> Element:
    """An element read straight from one dotted path of the record, documented as that path."""
    return Element(name, path, read_at(path), need)


def either(name: str, first: str, second: str, need: Need = OPTIONAL) -> Element:
    """An element read from ``first``, else (when empty) from ``second``."""
    return Element(
        name,
        f"{first}, else {second}",
        lambda record, item: value_at(record, first) or value_at(record, second),
        need,
    )


def item_field(name: str, key: str, need: Need = OPTIONAL) -> Element:
    return Element(name, f"order.items[].{key}", lambda record, item: value_at(item, key), need)


def constant(name: str, value: str) -> Element:
    return Element(name, f'"{value}"', lambda record, item: value, MANDATORY)


def one_line(address: dict[str, Any] | None) -> str | None:
    """A postal address as one line: street, city, region, postal code, country."""
    if not address:
        return None
    parts = [address.get(k) for k in ("line1", "line2", "city", "region", "postal_code", "country")]
    return ", ".join(str(p) for p in parts if p) or None


def address_line(name: str, party: str, need: Need = MANDATORY) -> Element:
    return Element(
        name,
        f"order.{party}.address (one line)",
        lambda record, item: one_line(value_at(record, f"order.{party}.address")),
        need,
    )


def structured(prefix: str, party: str) -> tuple[Element, ...]:
    """Name and structured address of a party (ICS2 wants street, city, postcode, country apart)."""
    parts = (("street", "line1"), ("city", "city"), ("postal_code", "postal_code"), ("country", "country"))
    return (
        field_at(f"{prefix}_name", f"order.{party}.name", MANDATORY),
        *(field_at(f"{prefix}_{name}", f"order.{party}.address.{key}", MANDATORY) for name, key in parts),
    )


def house_bill(record: Record) -> str | None:
    """The parcel's own bill: the S10 item id for postal parcels, else the tracking number."""
    parcel = record.get("parcel") or {}
    return parcel.get("postal_item_id") or parcel.get("tracking_number")


def final_recipient(record: Record, item: dict[str, Any]) -> Any:
    # NPRM: the final deliver-to party, "if different" from the consignee; else the consignee.
    party = value_at(record, "order.final_recipient") or value_at(record, "order.consignee")
    return (party or {}).get("name")


def line_value_usd(record: Record, item: dict[str, Any]) -> float | None:
    value, quantity = item.get("unit_value_usd"), item.get("quantity")
    return None if value is None or quantity is None else round(float(value) * float(quantity), 2)


def total_value_usd(record: Record) -> float | None:
    """The parcel's value in USD (None when a line has no USD value)."""
    values = [line_value_usd(record, item) for item in value_at(record, "order.items") or []]
    return None if not values or None in values else round(sum(v for v in values if v is not None), 2)


def reason_codes(record: Record, item: dict[str, Any]) -> str:
    return " ".join(r["code"] for r in value_at(record, "screening.reasons") or [])


def descriptions(record: Record, item: dict[str, Any]) -> str | None:
    items = value_at(record, "order.items") or []
    return "; ".join(str(i.get("description")) for i in items if i.get("description")) or None


def hts10(record: Record, item: dict[str, Any]) -> str | None:
    return digits(item.get("hts_code")) or None


def chapter99(record: Record, item: dict[str, Any]) -> str | None:
    return " ".join(item.get("chapter99") or []) or None


def json_text(value: Any) -> str | None:
    return None if value is None else json.dumps(value, separators=(",", ":"), ensure_ascii=False)
