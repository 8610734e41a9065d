"""Features for the risk model: the one function both training and inference call.

A parcel becomes a flat row (the columns of ``prescreen model eval`` CSVs), and the row becomes a
fixed-length vector: scaled numbers, flags, and hashed description tokens. The spec (names, order,
scaling, hashing) is versioned; a model is refused if it was trained on another spec.
"""

from __future__ import annotations

import math
import re
import zlib
from collections.abc import Mapping
from typing import Any

SPEC_VERSION = "features-v1"
HASH_BUCKETS = 48
NUMERIC = (
    "log_value_usd",
    "log_declared_kg",
    "log_measured_kg",
    "weight_ratio",
    "declared_weight_missing",
    "log_value_per_kg",
    "log_quantity",
    "hts_10_digits",
    "hts_missing",
    "chapter_chemicals",
    "chapter_machinery",
    "chapter_apparel",
    "origin_missing",
    "log_description_chars",
    "description_words",
    "description_single_word",
)
NAMES = NUMERIC + tuple(f"token_{i:02d}" for i in range(HASH_BUCKETS))
_TOKEN = re.compile(r"[a-z0-9]+")


def _float(value: Any) -> float | None:
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None


def row_from_order(order: Mapping[str, Any] | None, measured_kg: float | None) -> dict[str, Any]:
    """The flat row for one parcel (all items folded together)."""
    items = [i for i in (order or {}).get("items") or [] if isinstance(i, Mapping)]
    value = sum((_float(i.get("unit_value")) or 0) * (_float(i.get("quantity")) or 1) for i in items)
    return {
        "description": " ".join(str(i.get("description") or "") for i in items),
        "hts_code": str(items[0].get("hts_code") or "") if items else "",
        "declared_value_usd": value,
        "declared_weight_kg": _float((order or {}).get("declared_weight_kg")),
        "measured_weight_kg": measured_kg,
        "origin_country": str(items[0].get("origin_country") or "") if items else "",
        "quantity": sum(_float(i.get("quantity")) or 1 for i in items) or 1,
    }


def vectorize(row: Mapping[str, Any]) -> list[float]:
    """The feature vector of one row, in :data:`NAMES` order (values roughly in [0, 1])."""
    value = max(_float(row.get("declared_value_usd")) or 0.0, 0.0)
    declared = _float(row.get("declared_weight_kg"))
    measured = _float(row.get("measured_weight_kg"))
    quantity = max(_float(row.get("quantity")) or 1.0, 1.0)
    hts = re.sub(r"\D", "", str(row.get("hts_code") or ""))
    chapter = hts[:2]
    text = str(row.get("description") or "").lower()
    tokens = _TOKEN.findall(text)
    weight = measured if measured is not None else declared
    ratio = (measured / declared) if measured is not None and declared else 1.0
    vector = [
        math.log1p(value) / 7,
        math.log1p(declared or 0.0) / 3,
        math.log1p(measured or 0.0) / 3,
        min(max(ratio, 0.0), 5.0) / 5,
        1.0 if declared is None else 0.0,
        math.log1p(value / weight) / 8 if weight else 0.0,
        math.log1p(quantity) / 5,
        1.0 if len(hts) == 10 else 0.0,
        1.0 if not hts else 0.0,
        1.0 if chapter in ("28", "29", "38") else 0.0,
        1.0 if chapter in ("82", "84", "85") else 0.0,
        1.0 if chapter in ("61", "62", "63", "64") else 0.0,
        1.0 if not row.get("origin_country") else 0.0,
        math.log1p(len(text)) / 5,
        min(len(tokens), 10) / 10,
        1.0 if len(tokens) == 1 else 0.0,
    ]
    buckets = [0.0] * HASH_BUCKETS
    for token in tokens:
        buckets[zlib.crc32(token.encode()) % HASH_BUCKETS] = 1.0
    return vector + buckets


def spec() -> dict[str, Any]:
    """The feature spec file content shipped beside a model."""
    return {"version": SPEC_VERSION, "names": list(NAMES), "hash": "crc32", "buckets": HASH_BUCKETS}
