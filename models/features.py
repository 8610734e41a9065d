"""Features for the risk model: the one function both training and inference call.

Spec ``features-v2`` holds only inputs that mean the same whatever a shop's vocabulary (see
:mod:`prescreen.models.signals`): value in USD and per kg against the chapter's floor, the scale
against the declaration, the tariff code's validity, how well the description fits the code's own
nomenclature texts, how generic it is, how close it comes to a listed precursor or press, and
whether the tariff line is one where those are declared. No word of the description is an input:
the previous spec hashed description tokens and learned its own generator's vocabulary.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from prescreen.models import lexicon
from prescreen.models.signals import ParcelSignals, measure_row

SPEC_VERSION = "features-v2"
NAMES = (
    "log_value_usd",
    "value_unknown",
    "value_vs_floor",
    "weight_log_ratio",
    "weight_unknown",
    "log_quantity",
    "items",
    "code_missing",
    "code_malformed",
    "code_unknown",
    "code_short",
    "fit_declared",
    "fit_mismatch",
    "fit_known",
    "own_fit",
    "generic",
    "precursor",
    "press",
    "precursor_line",
    "press_line",
    "chemical_chapter",
    "chemical_unexplained",
    "description_words",
    "formal_value",
    "gift_over_limit",
)


def _clip(value: float, low: float, high: float) -> float:
    return min(max(value, low), high)


def vectorize(signals: ParcelSignals) -> list[float]:
    """The feature vector of one parcel, in :data:`NAMES` order (values in [-1, 1])."""
    items = signals.items or ()
    value = signals.value_usd
    per_kg = signals.value_per_kg
    floor = signals.floor_usd_per_kg
    ratio = signals.weight_ratio
    states = [i.code_state for i in items] or ["missing"]

    def worst(values: list[float], default: float = 0.0) -> float:
        return max(values, default=default)

    return [
        math.log1p(max(value or 0.0, 0.0)) / 8,
        1.0 if value is None else 0.0,
        _clip(math.log(max(per_kg, 1e-6) / floor), -4, 4) / 4 if per_kg is not None else 0.0,
        _clip(math.log(max(ratio, 1e-3)), -2, 2) / 2 if ratio is not None else 0.0,
        1.0 if ratio is None else 0.0,
        math.log1p(max(signals.quantity, 1.0)) / 5,
        min(len(items), 5) / 5,
        1.0 if "missing" in states else 0.0,
        1.0 if "malformed" in states or "chapter_invalid" in states else 0.0,
        1.0 if "unknown" in states else 0.0,
        1.0 if any(s == "valid" and len(i.hts) < 10 for s, i in zip(states, items, strict=False)) else 0.0,
        min((i.fit.declared for i in items), default=0.0),
        worst([i.fit.mismatch for i in items]),
        min((i.fit.known for i in items), default=0.0),
        min((i.own_fit for i in items), default=0.0),
        worst([i.generic for i in items], 1.0),
        worst([i.precursor for i in items]),
        worst([i.press for i in items]),
        1.0 if any(i.precursor_line for i in items) else 0.0,
        1.0 if any(i.press_line for i in items) else 0.0,
        1.0 if any(i.chemical_chapter for i in items) else 0.0,
        1.0 if any(i.chemical_unexplained for i in items) else 0.0,
        min((len(i.description.split()) for i in items), default=0) / 10 if items else 0.0,
        1.0 if value is not None and value > 2500 else 0.0,
        1.0 if value is not None and value > 100 and signals.shipment_category.lower() == "gift" else 0.0,
    ]


def vectorize_row(row: Mapping[str, Any]) -> list[float]:
    """The feature vector of a flat ``model eval`` row."""
    return vectorize(measure_row(lexicon.load(), row))


def spec() -> dict[str, Any]:
    """The feature spec file content shipped beside a model."""
    return {"version": SPEC_VERSION, "names": list(NAMES)}
