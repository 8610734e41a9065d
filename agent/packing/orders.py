"""Order data for a tracking number: from a file export the WMS drops (NDJSON or CSV).

Why a file source: many sites have no WMS API, only a nightly or hourly export. The file is
re-read when its modification time changes, so a new export is picked up without a restart, and a
half-written export that fails to parse leaves the previous orders in place (logged once).
Master cartons are orders whose ``master_carton`` object lists the parcels manifested inside,
keyed by the carton's SSCC.
"""

from __future__ import annotations

import csv
import json
import logging
import math
import os
import re
import threading
import time
from pathlib import Path
from typing import Any, Protocol

from prescreen.core.errors import OrderError

log = logging.getLogger("prescreen.orders")
Order = dict[str, Any]

ORDER_NOT_FOUND = "ORDER_NOT_FOUND"
ORDER_UNAVAILABLE = "ORDER_UNAVAILABLE"
ORDER_MALFORMED = "ORDER_MALFORMED"
ORDER_MISMATCH = "ORDER_MISMATCH"


class OrderSource(Protocol):
    """Anything that finds the order for a tracking number (or a master carton's SSCC)."""

    def lookup(self, key: str) -> Order:
        """The order for ``key``.

        Raises:
            OrderError: with reason ORDER_NOT_FOUND, ORDER_UNAVAILABLE, ORDER_MALFORMED or
                ORDER_MISMATCH.
        """

    def late_orders(self) -> list[tuple[str, Order]]:
        """Orders that arrived after their lookup ran out of budget (taken once each)."""

    def close(self) -> None:
        """Release connections and threads."""


_CSV_ITEM_FIELDS = (
    "description",
    "hts_code",
    "quantity",
    "unit_value",
    "origin_country",
    "net_weight_kg",
    "sku",
    "cpsc_certificate",
    "dea_452_transaction_id",
)
_CSV_LISTS = ("chapter99", "pga_flags")  # several values in one cell, separated by spaces
_CSV_NUMBERS = {"quantity", "unit_value", "net_weight_kg", "declared_weight_kg", "total_declared_value"}
# Column prefixes of nested parties ("importer_of_record_id"); the manufacturer is the line's.
_CSV_PARTIES = ("importer_of_record", "final_recipient", "seller", "consignee", "shipper", "manufacturer")
_CSV_PARTY_KEYS = ("name", "id", "id_type", "eori", "mid")


def _number(text: str | float) -> float | None:
    """A finite number, or None: "Infinity", "NaN" (which json and float() both accept) and
    numbers too large for a float would make the record unreadable to the receiver."""
    try:
        value = float(text) if not isinstance(text, str) or text.strip() else None
    except (ValueError, OverflowError):
        return None
    return value if value is not None and math.isfinite(value) else None


def _csv_order(row: dict[str, str]) -> Order:
    """One CSV row = one single-line order; ``party_field`` columns become nested parties."""
    order: Order = {"items": [{}]}
    item = order["items"][0]
    for key, value in row.items():
        if key is None:
            continue
        parsed: Any = _number(value) if key in _CSV_NUMBERS else (value or None)
        party = next((p for p in _CSV_PARTIES if key.startswith(f"{p}_")), None)
        if key in _CSV_ITEM_FIELDS:
            item[key] = parsed
        elif key in _CSV_LISTS:
            item[key] = (value or "").split()
        elif party is not None:
            entry = (item if party == "manufacturer" else order).setdefault(party, {"address": {}})
            field = key.removeprefix(f"{party}_")
            if field in _CSV_PARTY_KEYS:
                entry[field] = parsed
            else:
                entry["address"][field] = parsed
        else:
            order[key] = parsed
    return order


def order_key(order: Order) -> str | None:
    """What a scan looks the order up by: the master carton's SSCC, else the tracking number."""
    carton = order.get("master_carton")
    key = carton.get("sscc") if isinstance(carton, dict) else order.get("tracking_number")
    return key if isinstance(key, str) and key else None


def read_orders(path: Path) -> dict[str, Order]:
    """Parse an export file into {tracking number or carton SSCC: order}.

    Raises:
        OrderError: the file is unreadable or malformed (reason ORDER_UNAVAILABLE).
    """
    return {key: json.loads(text) for key, text in read_order_texts(path).items()}


def read_order_texts(path: Path) -> dict[str, bytes]:
    """{tracking number or carton SSCC: the order's JSON, UTF-8}: what the agent keeps between
    lookups. Parsed dicts cost about six times the file's size (3.2 MB resident for a 530 KB export
    of 400 orders), the text its size; one order parses in about 10 µs when it is scanned.

    Raises:
        OrderError: the file is unreadable or malformed (reason ORDER_UNAVAILABLE).
    """
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise OrderError(f"{path}: cannot read orders: {exc}", reason=ORDER_UNAVAILABLE) from exc
    texts: dict[str, bytes] = {}
    if path.suffix.lower() == ".csv":
        for row in csv.DictReader(text.splitlines()):
            order = _csv_order(row)
            if (key := order_key(order)) is not None:
                texts[key] = json.dumps(order).encode("utf-8")
        return texts
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            order = json.loads(line)
        except json.JSONDecodeError as exc:
            raise OrderError(f"{path}:{number}: not JSON: {exc.msg}", reason=ORDER_UNAVAILABLE) from exc
        if (key := order_key(order)) is not None:
            texts[key] = line.encode("utf-8")
    return texts


class FileOrderSource:
    """Orders from an NDJSON or CSV export, reloaded when the file changes."""

    def __init__(self, path: str | os.PathLike[str], *, check_every_s: float = 1.0) -> None:
        self.path = Path(path)
        self._check_every_s = check_every_s
        self._orders: dict[str, bytes] = {}
        self._mtime: float | None = None
        self._checked = 0.0
        self._lock = threading.Lock()
        self._reload(force=True)

    def _reload(self, *, force: bool = False) -> None:
        now = time.monotonic()
        if not force and now - self._checked < self._check_every_s:
            return
        self._checked = now
        try:
            mtime = self.path.stat().st_mtime
        except OSError as exc:
            if force:
                raise OrderError(f"{self.path}: {exc.strerror}", reason=ORDER_UNAVAILABLE) from exc
            return
        if mtime == self._mtime:
            return
        try:
            orders = read_order_texts(self.path)
        except OrderError as exc:
            if force:
                raise
            log.warning("order export not reloaded", extra={"reason": str(exc)})
            return
        self._orders, self._mtime = orders, mtime
        log.info("orders loaded", extra={"path": str(self.path), "orders": len(orders)})

    def lookup(self, key: str) -> Order:
        """The order for ``key`` from the latest good export (a new dict each time)."""
        with self._lock:
            self._reload()
            text = self._orders.get(key)
        if text is None:
            raise OrderError(f"no order for {key} in {self.path}", reason=ORDER_NOT_FOUND)
        order: Order = json.loads(text)
        return order

    def late_orders(self) -> list[tuple[str, Order]]:
        """A file answers at once or not at all: never any late orders."""
        return []

    def close(self) -> None:
        """Nothing to release."""


_ORDER_STRINGS = ("order_id", "order_date", "currency", "marketplace")
_ORDER_NUMBERS = ("total_declared_value", "declared_weight_kg")
_ITEM_STRINGS = (
    "description",
    "hts_code",
    "origin_country",
    "sku",
    "gtin",
    "cpsc_certificate",
    "dea_452_transaction_id",
)
_ITEM_NUMBERS = ("quantity", "unit_value", "net_weight_kg", "marketplace_price")
_ITEM_LIMITS = {"cpsc_certificate": 128, "dea_452_transaction_id": 64}  # the record schema's maxLength
_ADDRESS = ("line1", "line2", "city", "region", "postal_code", "country")
_CATEGORIES = {"sale", "gift", "sample", "return", "documents", "other"}
_ID_TYPES = {"ein", "ssn", "cbp_assigned", "eori", "tax_id", "other"}
_PGA_FLAGS = ("CPSC", "DEA", "FDA", "USDA", "EPA", "FCC", "NHTSA", "ATF", "FWS")
# Compiled once: every verdict record projects its order (re's own cache costs a lookup per call).
_SPACE = re.compile(r"\s")
_NOT_DIGIT = re.compile(r"\D")
_CHAPTER99 = re.compile(r"99\d{6}(\d{2})?")
_EORI = re.compile(r"[A-Z]{2}[A-Z0-9]{1,15}")
_MID = re.compile(r"[A-Z0-9]{2,15}")
_IOSS = re.compile(r"IM\d{10}")


def _text(value: object) -> str | None:
    if value is None or isinstance(value, (dict, list)):
        return None
    return str(value)


def _texts(source: dict[str, Any], keys: tuple[str, ...]) -> dict[str, str | None]:
    """``_text`` of each key's value; a ``str`` or None as it is, without a call (every verdict
    record projects ~50 of them, nearly all text or missing)."""
    get = source.get
    return {k: v if type(v := get(k)) is str or v is None else _text(v) for k in keys}


def _num(value: object) -> float | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, (int, float, str)):
        return _number(value)
    return None


def _matching(value: object, pattern: re.Pattern[str]) -> str | None:
    """``value`` as text when it matches ``pattern`` (upper-cased, spaces removed), else None: a
    malformed id becomes null, which the findings and the exports then report as missing."""
    text = _SPACE.sub("", str(value)).upper() if isinstance(value, (str, int)) else ""
    return text if pattern.fullmatch(text) else None


def _address(value: object) -> dict[str, Any] | None:
    return _texts(value, _ADDRESS) if isinstance(value, dict) else None


def _party(value: object) -> dict[str, Any] | None:
    if not isinstance(value, dict):
        return None
    party = {
        "name": _text(value.get("name")),
        "id": _text(value.get("id")),
        "address": _address(value.get("address")),
    }
    if value.get("id_type") is not None:
        party["id_type"] = value["id_type"] if value["id_type"] in _ID_TYPES else "other"
    if value.get("eori") is not None:
        party["eori"] = _matching(value["eori"], _EORI)
    return party


def _manufacturer(value: object) -> dict[str, Any] | None:
    """The line's manufacturer; a MID the seller sent is kept as declared (the station computes
    one from the name and address otherwise, see :func:`prescreen.risk.entry.complete_order`)."""
    if not isinstance(value, dict):
        return None
    declared = _matching(value.get("mid"), _MID)
    keep = declared is not None and value.get("mid_source") in (None, "declared")
    return {
        "name": _text(value.get("name")),
        "address": _address(value.get("address")),
        "mid": declared if keep else None,
        "mid_source": "declared" if keep else None,
    }


def _item(item: dict[str, Any]) -> dict[str, Any]:
    result: dict[str, Any] = {
        **_texts(item, _ITEM_STRINGS),
        **{k: _num(item.get(k)) for k in _ITEM_NUMBERS},
    }
    for key, longest in _ITEM_LIMITS.items():  # a longer reference is no reference the schema takes
        if result[key] is not None and len(result[key]) > longest:
            result[key] = None
    chapter99 = item.get("chapter99")
    numbers = [_NOT_DIGIT.sub("", str(n)) for n in chapter99] if isinstance(chapter99, list) else []
    result["chapter99"] = [n for n in numbers if _CHAPTER99.fullmatch(n)][:20]
    flags = item.get("pga_flags")
    result["pga_flags"] = [f for f in _PGA_FLAGS if isinstance(flags, list) and f in flags]
    result["manufacturer"] = _manufacturer(item.get("manufacturer"))
    return result


def to_record(order: Order) -> Order:
    """Project a WMS/export order onto the record schema's ``order`` object.

    Total: whatever the WMS sent (wrong types, extra keys), the result validates, and what could
    not be used becomes null, which the data-quality rules then report. Idempotent: a record's own
    ``order`` projects onto itself (corrections re-project it).
    """
    raw_items = order.get("items")
    items: list[Any] = raw_items if isinstance(raw_items, list) else []
    category = order.get("shipment_category")
    result: Order = _texts(order, _ORDER_STRINGS)
    result.update({k: _num(order.get(k)) for k in _ORDER_NUMBERS})
    result["shipment_category"] = (
        category if category in _CATEGORIES else (None if category is None else "other")
    )
    for role in ("seller", "shipper", "consignee", "final_recipient", "importer_of_record"):
        result[role] = _party(order.get(role))
    gift = order.get("gift")
    result["gift"] = gift if isinstance(gift, bool) else (category == "gift" if category else None)
    result["ioss_number"] = _matching(order.get("ioss_number"), _IOSS)
    result["items"] = [_item(i) for i in items if isinstance(i, dict)]
    return result
