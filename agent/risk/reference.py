"""Reference lists for the parties and money of an order: ISO countries and currencies.

They live in ``data/reference.json`` with their sources, so compliance staff can review and extend
them without touching code. The screening lists (generic descriptions, precursors, presses, the
HS nomenclature, value floors) live beside the model in ``prescreen.models.lexicon``, because the
rules and the model's features read them alike.
"""

from __future__ import annotations

import dataclasses
import functools
import json
from typing import Any

from prescreen.core.package_data import package_file


@dataclasses.dataclass(frozen=True)
class Reference:
    """Parsed reference data."""

    countries: frozenset[str]
    currencies: frozenset[str]


@functools.cache
def load() -> Reference:
    """The reference data shipped with the package."""
    raw: dict[str, Any] = json.loads(
        package_file("prescreen.risk", "data/reference.json").read_text(encoding="utf-8")
    )
    return Reference(countries=frozenset(raw["countries"]), currencies=frozenset(raw["currencies"]))
