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
from prescreen.models.signals import ItemSignals, ParcelSignals, measure_row

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
    """The feature vector of one parcel, in :data:`NAMES` order (values in [-1, 1]).

    One pass over the order lines (this runs for every parcel): each line's figures are read once
    and kept as the builtins ``min``/``max`` keep them (the first of equals), so the vector is the
    one of taking ``min``/``max`` over every line's figure in turn, which training also calls.
    """
    items = signals.items or ()
    value = signals.value_usd
    per_kg = signals.value_per_kg
    floor = signals.floor_usd_per_kg
    ratio = signals.weight_ratio
    lines = _Lines(items)
    return [
        math.log1p(max(value or 0.0, 0.0)) / 8,
        1.0 if value is None else 0.0,
        _clip(math.log(max(per_kg, 1e-6) / floor), -4, 4) / 4 if per_kg is not None else 0.0,
        _clip(math.log(max(ratio, 1e-3)), -2, 2) / 2 if ratio is not None else 0.0,
        1.0 if ratio is None else 0.0,
        math.log1p(max(signals.quantity, 1.0)) / 5,
        min(len(items), 5) / 5,
        1.0 if not items or "missing" in lines.states else 0.0,
        1.0 if "malformed" in lines.states or "chapter_invalid" in lines.states else 0.0,
        1.0 if "unknown" in lines.states else 0.0,
        1.0 if lines.short else 0.0,
        lines.declared,
        lines.mismatch,
        lines.known,
        lines.own_fit,
        lines.generic,
        lines.precursor,
        lines.press,
        1.0 if lines.precursor_line else 0.0,
        1.0 if lines.press_line else 0.0,
        1.0 if lines.chemical else 0.0,
        1.0 if lines.unexplained else 0.0,
        lines.words / 10 if items else 0.0,
        1.0 if value is not None and value > 2500 else 0.0,
        1.0 if value is not None and value > 100 and signals.shipment_category.lower() == "gift" else 0.0,
    ]


class _Lines:
    """The order lines' figures the vector takes: the lowest or the highest of each, or whether any
    line has it (defaults: what ``min``/``max`` of no line give in :func:`vectorize`)."""

    def __init__(self, items: tuple[ItemSignals, ...]) -> None:
        self.states: set[str] = set()
        self.short = self.precursor_line = self.press_line = self.chemical = self.unexplained = False
        self.declared = self.mismatch = self.known = self.own_fit = self.precursor = self.press = 0.0
        self.generic = 1.0
        self.words = 0
        for n, item in enumerate(items):
            fit, own_fit, generic = item.fit, item.own_fit, item.generic
            declared, mismatch, known = fit.declared, fit.mismatch, fit.known
            precursor, press, words = item.precursor, item.press, len(item.description.split())
            if n == 0:
                self.declared, self.mismatch, self.known, self.own_fit = declared, mismatch, known, own_fit
                self.generic, self.precursor, self.press, self.words = generic, precursor, press, words
            else:  # as min() and max() compare: a later line replaces only a strictly lower/higher one
                self.declared = declared if declared < self.declared else self.declared
                self.mismatch = mismatch if mismatch > self.mismatch else self.mismatch
                self.known = known if known < self.known else self.known
                self.own_fit = own_fit if own_fit < self.own_fit else self.own_fit
                self.generic = generic if generic > self.generic else self.generic
                self.precursor = precursor if precursor > self.precursor else self.precursor
                self.press = press if press > self.press else self.press
                self.words = words if words < self.words else self.words
            self.states.add(item.code_state)
            self.short = self.short or (item.code_state == "valid" and len(item.hts) < 10)
            self.precursor_line = self.precursor_line or bool(item.precursor_line)
            self.press_line = self.press_line or bool(item.press_line)
            self.chemical = self.chemical or item.chemical_chapter
            self.unexplained = self.unexplained or item.chemical_unexplained


def vectorize_row(row: Mapping[str, Any]) -> list[float]:
    """The feature vector of a flat ``model eval`` row."""
    return vectorize(measure_row(lexicon.load(), row))


def spec() -> dict[str, Any]:
    """The feature spec file content shipped beside a model."""
    return {"version": SPEC_VERSION, "names": list(NAMES)}
