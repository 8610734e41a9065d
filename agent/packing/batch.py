"""Screening parcels given as JSON, without devices: batch re-screening and what-if questions.

``prescreen screen`` feeds each stdin line through exactly the screener the station uses, so
compliance can ask "what would this parcel get?" and re-run a day's parcels after a rule change.
A line is one parcel, in any of three shapes:

* ``{"tracking_number": ..., "measured_weight_kg": ..., "order": {...}}``;
* a WMS order itself (has ``items``), optionally with ``measured_weight_kg``;
* a flat row with the columns of ``prescreen model eval`` (``description``, ``hts_code``,
  ``declared_value_usd``, ``declared_weight_kg``, ``measured_weight_kg``, ``origin_country``,
  ``quantity``), read as a one-item order.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator, Mapping
from decimal import Decimal, InvalidOperation
from typing import Any

from prescreen.core.errors import RecordError
from prescreen.drivers.barcodes import Barcode, decode
from prescreen.models.signals import order_from_row
from prescreen.risk.rules import ParcelFacts
from prescreen.risk.screening import Screener

_NO_LABEL = Barcode(raw="", symbology="none", carrier="unknown", tracking_number=None, check_ok=False, gs1={})


def _weight(value: object) -> Decimal | None:
    if value is None or isinstance(value, bool):
        return None
    try:
        weight = Decimal(str(value))
    except InvalidOperation:
        raise RecordError(f"measured_weight_kg must be a number, got {value!r}") from None
    return weight if weight.is_finite() else None


def facts_from_json(parcel: Mapping[str, Any]) -> ParcelFacts:
    """The :class:`ParcelFacts` for one parcel in any of the module's three shapes.

    Raises:
        RecordError: the parcel is not an object or has an unusable measured weight.
    """
    if not isinstance(parcel, Mapping):
        raise RecordError(f"a parcel must be a JSON object, got {type(parcel).__name__}")
    order: Any = parcel.get("order")
    if order is None:
        order = dict(parcel) if "items" in parcel else order_from_row(parcel)
    if not isinstance(order, dict):
        raise RecordError("'order' must be a JSON object")
    label = parcel.get("barcode") or parcel.get("tracking_number") or order.get("tracking_number")
    return ParcelFacts(
        barcode=decode(str(label)) if label else _NO_LABEL,
        weight_kg=_weight(parcel.get("measured_weight_kg")),
        order=order,
        watchlisted=parcel.get("watchlisted") or None,
    )


def screen_lines(lines: Iterable[str], screener: Screener) -> Iterator[dict[str, Any]]:
    """One result object per non-blank input line, in order; bad lines give an ``error`` object."""
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            facts = facts_from_json(json.loads(line))
        except json.JSONDecodeError as exc:
            yield {"line": number, "error": f"not JSON: {exc.msg} at column {exc.colno}"}
            continue
        except RecordError as exc:
            yield {"line": number, "error": str(exc)}
            continue
        screening = screener.screen(facts)
        yield {
            "line": number,
            "tracking_number": facts.barcode.tracking_number,
            **screening.as_json(),
        }
