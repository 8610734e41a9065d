"""The screening reference lists (``data/screening.json``), parsed once, with their lookups.

Everything here is public reference data with a source in the file's ``_sources``: official
generic-description lists (PACT, ICS2), DEA-listed precursors with CAS numbers, tablet-press
terms, the HS subheadings that name precursors or presses, value floors and currency rates. The
rules and the model's features both read these lists, so a parcel is judged by one vocabulary.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import re
from collections.abc import Set as AbstractSet
from typing import Any

from prescreen.core.package_data import package_file
from prescreen.models import nomenclature
from prescreen.models.text import TrigramIndex, squash, stem, stems

_CAS = re.compile(r"\b\d{2,7}-\d{2}-\d\b")
SHORT_TERM = 5  # squashed terms up to this length match only as whole words ('npp', 'p2p', 'tdp')


class TermList:
    """Named terms found in free text: long terms allowing typos, short ones as whole words only."""

    def __init__(self, terms: list[tuple[str, str]]) -> None:
        self._long = TrigramIndex((t, name) for t, name in terms if len(squash(t)) > SHORT_TERM)
        short = {t: name for t, name in terms if len(squash(t)) <= SHORT_TERM}
        alternation = "|".join(map(re.escape, sorted(short, key=len, reverse=True))) or "(?!x)x"
        self._short = re.compile(rf"(?<![a-z0-9])({alternation})(?![a-z0-9])")
        self._short_names = short

    def scores(self, text: str, grams: AbstractSet[str] | None = None) -> dict[str, float]:
        """Similarity in [0, 1] per named term found in ``text`` (1.0 = the exact term);
        ``grams``: the text's :func:`~prescreen.models.text.trigrams`, when the caller has them
        (the precursor and press lists read the same text)."""
        found = self._long.scores(text, grams)
        for term in self._short.findall(text.lower()):
            found[self._short_names[term]] = 1.0
        return found


@dataclasses.dataclass(frozen=True)
class Lexicon:
    """Parsed reference lists."""

    generic: frozenset[str]  # stemmed generic phrases ('household good')
    filler: frozenset[str]  # stemmed words that never say what an item is
    precursors: TermList
    precursor_cas: dict[str, str]
    presses: TermList
    precursor_hs6: dict[str, str]
    press_hs6: dict[str, str]
    chemical_chapters: frozenset[str]
    value_floor: dict[str, float]
    usd_rates: dict[str, float]
    nomenclature: nomenclature.Nomenclature

    def cas_hits(self, text: str) -> list[str]:
        """Names of listed substances whose CAS number appears in ``text``."""
        return [self.precursor_cas[c] for c in _CAS.findall(text) if c in self.precursor_cas]

    def floor(self, chapter: str) -> float:
        """The lowest plausible USD per kg for goods of ``chapter``."""
        return self.value_floor.get(chapter, self.value_floor["_default"])


@functools.cache
def load() -> Lexicon:
    """The lists shipped with the package (read once per process)."""
    raw: dict[str, Any] = json.loads(
        package_file("prescreen.models", "data/screening.json").read_text(encoding="utf-8")
    )
    precursor_terms: list[tuple[str, str]] = []
    cas: dict[str, str] = {}
    for substance in raw["precursors"]:
        precursor_terms += [(t.lower(), substance["name"]) for t in substance["terms"]]
        cas.update(dict.fromkeys(substance["cas"], substance["name"]))
    stop = frozenset(stem(w) for w in raw["nomenclature_stop_words"])
    materials = frozenset(stem(w) for w in raw["materials"])
    synonyms = tuple(sorted(raw["synonyms"].items()))
    return Lexicon(
        generic=frozenset(" ".join(stems(p)) for p in raw["generic_descriptions"]),
        filler=frozenset(stem(w) for w in raw["filler_words"]),
        precursors=TermList(precursor_terms),
        precursor_cas=cas,
        presses=TermList([(t.lower(), t.lower()) for t in raw["pill_press"]]),
        precursor_hs6=dict(raw["precursor_hs6"]),
        press_hs6=dict(raw["press_hs6"]),
        chemical_chapters=frozenset(raw["chemical_chapters"]),
        value_floor={k: float(v) for k, v in raw["value_floor_usd_per_kg"].items()},
        usd_rates={k: float(v) for k, v in raw["usd_rates"].items()},
        nomenclature=nomenclature.load(stop, materials, synonyms),
    )
