"""Reference lists the rules use (countries, currencies, vague descriptions, precursors, ...).

They live in ``data/reference.json`` with their sources, so compliance staff can review and extend
them without touching code, and a downlink update can replace them later.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import re
from importlib import resources
from typing import Any


@dataclasses.dataclass(frozen=True)
class Reference:
    """Parsed reference data with the lookups precomputed once."""

    countries: frozenset[str]
    currencies: frozenset[str]
    vague: frozenset[str]
    precursor_terms: tuple[tuple[str, str, str], ...]  # (lowercase term, squashed, substance)
    precursor_cas: dict[str, str]
    pill_press_terms: tuple[tuple[str, str], ...]  # (lowercase term, squashed)
    chapter_keywords: dict[str, tuple[str, ...]]
    value_floor: dict[str, float]


def squash(text: str) -> str:
    """Lowercase with every non-alphanumeric removed: '4 - Piperidone' -> '4piperidone'."""
    return re.sub(r"[^0-9a-z]", "", text.lower())


@functools.cache
def load() -> Reference:
    """The reference data shipped with the package."""
    raw: dict[str, Any] = json.loads(
        resources.files("prescreen").joinpath("data/reference.json").read_text(encoding="utf-8")
    )
    terms: list[tuple[str, str, str]] = []
    cas: dict[str, str] = {}
    for substance in raw["precursors"]:
        terms += [(t.lower(), squash(t), substance["name"]) for t in substance["terms"]]
        cas.update(dict.fromkeys(substance["cas"], substance["name"]))
    return Reference(
        countries=frozenset(raw["countries"]),
        currencies=frozenset(raw["currencies"]),
        vague=frozenset(raw["vague_descriptions"]),
        precursor_terms=tuple(terms),
        precursor_cas=cas,
        pill_press_terms=tuple((t.lower(), squash(t)) for t in raw["pill_press"]),
        chapter_keywords={k: tuple(v) for k, v in raw["chapter_keywords"].items()},
        value_floor={k: float(v) for k, v in raw["value_floor_usd_per_kg"].items()},
    )
