"""Text normalisation shared by the nomenclature index, the lexicons and the features.

Descriptions come from thousands of shops in their own wording: plural or singular, hyphenated
or not, misspelt. Matching them against official texts (the HS nomenclature, DEA's chemical names)
needs the same few normalisations everywhere, so they live here once: words with a light English
stem, a "squashed" form without spaces or punctuation, and character trigrams for misspellings.
"""

from __future__ import annotations

import collections
import itertools
import re
from collections.abc import Iterable

_WORD = re.compile(r"[a-z0-9]+")
_NOT_ALNUM = re.compile(r"[^0-9a-z]")


def squash(text: str) -> str:
    """Lowercase with every non-alphanumeric removed: '4 - Piperidone' -> '4piperidone'."""
    return _NOT_ALNUM.sub("", text.lower())


def stem(word: str) -> str:
    """A light English stem, enough to meet 'T-shirts' with 't-shirt' and 'batteries' with 'battery'.

    Deliberately not Porter: the official texts and shop listings differ mostly by number, and a
    stronger stemmer merges words the nomenclature keeps apart ('printing' / 'printed').
    """
    if len(word) <= 3 or word.isdigit():
        return word
    if word.endswith("ies") and len(word) > 4:
        return word[:-3] + "y"
    if word.endswith(("sses", "shes", "ches", "xes", "zes")):
        return word[:-2]
    if word.endswith("s") and not word.endswith(("ss", "us", "is")):
        return word[:-1]
    return word


def words(text: str) -> list[str]:
    """Lowercase alphanumeric words, hyphenated parts joined ('t-shirt' -> 'tshirt') and split."""
    lowered = text.lower().replace("'s ", " ")
    out: list[str] = []
    for chunk in lowered.split():
        parts = _WORD.findall(chunk)
        if len(parts) > 1 and "-" in chunk and all(p.isalpha() for p in parts):
            out.append("".join(parts))  # 't-shirt' is one word, as in 'tshirt'
        out.extend(parts)
    return out


def stems(text: str) -> list[str]:
    """:func:`words`, stemmed."""
    return [stem(w) for w in words(text)]


def trigrams(text: str) -> frozenset[str]:
    """Character trigrams of the squashed text (what survives a typo or a missing hyphen)."""
    flat = squash(text)
    return frozenset(flat[i : i + 3] for i in range(len(flat) - 2))


class TrigramIndex:
    """Which listed terms a text names, allowing a typo or two (character trigrams).

    A text is read as windows of one to four consecutive words (squashed, so '4 - piperidone'
    meets '4-piperidone'); a term's score in a window is the share of trigrams they share over the
    larger of the two trigram sets: 1.0 for the exact term, about 0.7-0.9 for one wrong letter in
    a long name, and low when the trigrams only occur scattered over a long text. Only terms that
    share at least ``PREFILTER`` of their trigrams with the whole text are scored (an inverted
    index finds them), so a description that names nothing listed costs a few microseconds.
    """

    WINDOW_WORDS = 4
    PREFILTER = 0.6

    def __init__(self, terms: Iterable[tuple[str, str]]) -> None:
        self._names: list[str] = []
        self._grams: list[frozenset[str]] = []
        self._index: dict[str, list[int]] = {}
        for term, name in terms:
            grams = trigrams(term)
            if not grams:
                continue
            number = len(self._names)
            self._names.append(name)
            self._grams.append(grams)
            for gram in grams:
                self._index.setdefault(gram, []).append(number)

    def scores(self, text: str) -> dict[str, float]:
        """Best score per name over the text's windows (only names that pass the prefilter)."""
        tokens = [t for t in (squash(w) for w in text.split()) if t]
        empty: list[int] = []
        counts = collections.Counter(
            itertools.chain.from_iterable(self._index.get(g, empty) for g in trigrams("".join(tokens)))
        )
        candidates = [n for n, c in counts.items() if c >= self.PREFILTER * len(self._grams[n])]
        best: dict[str, float] = {}
        if not candidates:
            return best
        for start in range(len(tokens)):
            for end in range(start + 1, min(start + self.WINDOW_WORDS, len(tokens)) + 1):
                window = trigrams("".join(tokens[start:end]))
                for number in candidates:
                    grams = self._grams[number]
                    score = len(grams & window) / max(len(grams), len(window))
                    name = self._names[number]
                    if score > best.get(name, 0.0):
                        best[name] = score
        return best
