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
from collections.abc import Set as AbstractSet

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
    share at least ``PREFILTER`` of their trigrams with the whole text are scored.

    Finding those candidates costs a few microseconds for a text that names nothing listed (most
    of them): a term with ``k`` trigrams that shares at least ``need`` of them with the text misses
    at most ``k - need``, so the text holds at least one of any ``k - need + 1`` of its trigrams.
    Each term is indexed under that many of its rarest trigrams only (its *signature*); a term
    none of whose signature is in the text cannot pass, and the few that might are counted exactly.
    The candidates are exactly those of counting every trigram of every term (tested).
    """

    WINDOW_WORDS = 4
    PREFILTER = 0.6

    def __init__(self, terms: Iterable[tuple[str, str]]) -> None:
        self._names: list[str] = []
        self._grams: list[frozenset[str]] = []
        self._need: list[int] = []  # the fewest shared trigrams that pass the prefilter
        for term, name in terms:
            grams = trigrams(term)
            if not grams:
                continue
            self._names.append(name)
            self._grams.append(grams)
            # the same float comparison the prefilter always made: shared >= PREFILTER * len(grams)
            self._need.append(next(c for c in range(len(grams) + 1) if c >= self.PREFILTER * len(grams)))
        postings = collections.Counter(itertools.chain.from_iterable(self._grams))
        self._signature: dict[str, list[int]] = {}
        for number, grams in enumerate(self._grams):
            rarest = sorted(grams, key=lambda gram: (postings[gram], gram))
            for gram in rarest[: len(grams) - self._need[number] + 1]:
                self._signature.setdefault(gram, []).append(number)
        self._signature_grams = frozenset(self._signature)

    def candidates(self, grams: AbstractSet[str]) -> list[int]:
        """The terms sharing at least ``PREFILTER`` of their trigrams with a text's ``grams``."""
        hits = grams & self._signature_grams
        if not hits:
            return []
        found = {number for gram in hits for number in self._signature[gram]}
        return [n for n in sorted(found) if len(self._grams[n] & grams) >= self._need[n]]

    def scores(self, text: str, grams: AbstractSet[str] | None = None) -> dict[str, float]:
        """Best score per name over the text's windows (only names that pass the prefilter);
        ``grams``: the text's :func:`trigrams`, when the caller has them already."""
        best: dict[str, float] = {}
        candidates = self.candidates(trigrams(text) if grams is None else grams)
        if not candidates:
            return best
        tokens = [t for t in (squash(w) for w in text.split()) if t]
        for start in range(len(tokens)):
            for end in range(start + 1, min(start + self.WINDOW_WORDS, len(tokens)) + 1):
                window = trigrams("".join(tokens[start:end]))
                for number in candidates:
                    grams_of = self._grams[number]
                    score = len(grams_of & window) / max(len(grams_of), len(window))
                    name = self._names[number]
                    if score > best.get(name, 0.0):
                        best[name] = score
        return best
