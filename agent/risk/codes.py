"""The registry of finding codes, loaded from ``data/findings.toml`` (the one place for them).

Each code is a module constant, so a rule raises ``codes.WEIGHT_MISMATCH.found(...)``: a code
missing from the table fails at import, a misspelt one is a type error. The page's words
(:func:`prescreen.risk.strings.reasons`), the seller's advice (:func:`prescreen.risk.strings.seller_advice`)
and the scorecard (:data:`CUSTOMS_ONLY`, :data:`NOT_SELLERS`) all read this table.
"""

from __future__ import annotations

import sys
from typing import Any, cast

from prescreen.core.package_data import package_file
from prescreen.risk.findings import Code, Severity

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10
    import tomli as tomllib

_SEVERITIES = ("info", "review", "hold")
_FLAGS = ("severity", "sellers_doing", "customs_only")


def _entry(code: str, table: dict[str, Any]) -> Code:
    """One [CODE] table: severity, flags, ``xx`` operator texts and ``seller_xx`` advice."""
    severity = table.get("severity")
    if severity not in _SEVERITIES:
        raise ValueError(f"findings.toml [{code}]: severity must be one of {_SEVERITIES}, got {severity!r}")
    texts = {k: str(v) for k, v in table.items() if k not in _FLAGS}
    seller = {k.removeprefix("seller_"): v for k, v in texts.items() if k.startswith("seller_")}
    return Code(
        code,
        cast(Severity, severity),
        {k: v for k, v in texts.items() if not k.startswith("seller_")},
        seller or None,
        sellers_doing=bool(table.get("sellers_doing", True)),
        customs_only=bool(table.get("customs_only", False)),
    )


def _load() -> dict[str, Code]:
    text = package_file("prescreen.risk", "data/findings.toml").read_text(encoding="utf-8")
    return {code: _entry(code, table) for code, table in tomllib.loads(text).items()}


REGISTRY: dict[str, Code] = _load()


def _registered(code: str) -> Code:
    return REGISTRY[code]  # a KeyError here: the code is missing from data/findings.toml


BARCODE_CHECK_FAILED = _registered("BARCODE_CHECK_FAILED")
BARCODE_UNKNOWN = _registered("BARCODE_UNKNOWN")
NO_WEIGHT = _registered("NO_WEIGHT")
ORDER_NOT_FOUND = _registered("ORDER_NOT_FOUND")
ORDER_UNAVAILABLE = _registered("ORDER_UNAVAILABLE")
ORDER_MALFORMED = _registered("ORDER_MALFORMED")
ORDER_MISMATCH = _registered("ORDER_MISMATCH")
WATCHLIST_HOLD = _registered("WATCHLIST_HOLD")
CARTON_UNMANIFESTED_PARCEL = _registered("CARTON_UNMANIFESTED_PARCEL")
CARTON_COUNT_EXCEEDS_MANIFEST = _registered("CARTON_COUNT_EXCEEDS_MANIFEST")
CARTON_WEIGHT_MISMATCH = _registered("CARTON_WEIGHT_MISMATCH")
DQ_SELLER_MISSING = _registered("DQ_SELLER_MISSING")
DQ_CONSIGNEE_MISSING = _registered("DQ_CONSIGNEE_MISSING")
DQ_COUNTRY_UNKNOWN = _registered("DQ_COUNTRY_UNKNOWN")
DQ_CURRENCY_UNKNOWN = _registered("DQ_CURRENCY_UNKNOWN")
DQ_NO_ITEMS = _registered("DQ_NO_ITEMS")
DQ_DESCRIPTION_MISSING = _registered("DQ_DESCRIPTION_MISSING")
DQ_DESCRIPTION_VAGUE = _registered("DQ_DESCRIPTION_VAGUE")
DQ_TARIFF_MISSING = _registered("DQ_TARIFF_MISSING")
DQ_TARIFF_MALFORMED = _registered("DQ_TARIFF_MALFORMED")
DQ_TARIFF_CHAPTER_INVALID = _registered("DQ_TARIFF_CHAPTER_INVALID")
DQ_TARIFF_UNKNOWN = _registered("DQ_TARIFF_UNKNOWN")
DQ_TARIFF_NOT_IN_HTS = _registered("DQ_TARIFF_NOT_IN_HTS")
DQ_TARIFF_NOT_ENTRY_GRADE = _registered("DQ_TARIFF_NOT_ENTRY_GRADE")
DQ_VALUE_MISSING = _registered("DQ_VALUE_MISSING")
DQ_ORIGIN_UNKNOWN = _registered("DQ_ORIGIN_UNKNOWN")
WEIGHT_MISMATCH = _registered("WEIGHT_MISMATCH")
VALUE_FORMAL_ENTRY = _registered("VALUE_FORMAL_ENTRY")
GIFT_OVER_LIMIT = _registered("GIFT_OVER_LIMIT")
VALUE_PER_KG_LOW = _registered("VALUE_PER_KG_LOW")
TARIFF_DESCRIPTION_MISMATCH = _registered("TARIFF_DESCRIPTION_MISMATCH")
SPLIT_SHIPMENT = _registered("SPLIT_SHIPMENT")
PRECURSOR_CHEMICAL = _registered("PRECURSOR_CHEMICAL")
PRECURSOR_TARIFF_LINE = _registered("PRECURSOR_TARIFF_LINE")
CHEMICAL_TARIFF_LINE = _registered("CHEMICAL_TARIFF_LINE")
PILL_PRESS_EQUIPMENT = _registered("PILL_PRESS_EQUIPMENT")
PRESS_TARIFF_LINE = _registered("PRESS_TARIFF_LINE")
MODEL_HIGH_RISK = _registered("MODEL_HIGH_RISK")
MODEL_ELEVATED_RISK = _registered("MODEL_ELEVATED_RISK")
INTERNAL_ERROR = _registered("INTERNAL_ERROR")
FILER_IMPORTER_MISSING = _registered("FILER_IMPORTER_MISSING")
FILER_MANUFACTURER_MISSING = _registered("FILER_MANUFACTURER_MISSING")
FILER_POSTAL_NO_S10 = _registered("FILER_POSTAL_NO_S10")
FILER_DEA_452_MISSING = _registered("FILER_DEA_452_MISSING")
FILER_CPSC_CERTIFICATE_MISSING = _registered("FILER_CPSC_CERTIFICATE_MISSING")

# Risk findings for customs only: never on a seller's scorecard or in advice to the trade.
CUSTOMS_ONLY = frozenset(c.code for c in REGISTRY.values() if c.customs_only)
# Findings that are not the seller's doing: a scorecard counts them but gives no advice for them.
NOT_SELLERS = frozenset(c.code for c in REGISTRY.values() if not c.sellers_doing)
