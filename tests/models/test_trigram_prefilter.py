"""The trigram prefilter indexes each term under its rarest trigrams only: it must find exactly the
terms that counting every trigram of every term finds, and the scores must be those of scoring
every such term, on generated descriptions, listed terms with typos and mixtures of both."""

from __future__ import annotations

import json
import random
from importlib import resources

from prescreen.models import lexicon
from prescreen.models.text import TrigramIndex, squash, trigrams
from prescreen.sim.samples import generate


def _terms() -> list[list[tuple[str, str]]]:
    raw = json.loads(
        resources.files("prescreen.models").joinpath("data/screening.json").read_text(encoding="utf-8")
    )
    precursors = [(t.lower(), s["name"]) for s in raw["precursors"] for t in s["terms"]]
    presses = [(t.lower(), t.lower()) for t in raw["pill_press"]]
    return [precursors, presses]


def _texts(terms: list[str]) -> list[str]:
    rng = random.Random(20)
    orders, _ = generate(600, seed=21)
    descriptions = [
        f"{item.get('description') or ''} {item.get('sku') or ''}"
        for order in orders
        for item in order.get("items", [])
        if isinstance(item, dict)
    ]

    def typo(term: str) -> str:
        letters = list(term)
        for _ in range(rng.randint(0, 3)):
            at = rng.randrange(len(letters))
            letters[at] = rng.choice("abcdefghijklmnopqrstuvwxyz0123456789 -")
        return "".join(letters)

    def word() -> str:
        return typo(rng.choice(terms)) if rng.random() < 0.6 else rng.choice(descriptions)

    mixed = [" ".join(word() for _ in range(3)) for _ in range(2000)]
    return descriptions + terms + [t.upper() for t in terms] + mixed + ["", " ", "-", "ab"]


def _passing(index: TrigramIndex, text: str) -> list[int]:
    """Every term whose trigrams the whole text holds at least ``PREFILTER`` of, counted one by one."""
    whole = trigrams(text)
    return [n for n, grams in enumerate(index._grams) if len(grams & whole) >= index.PREFILTER * len(grams)]


def _brute_force(index: TrigramIndex, text: str) -> dict[str, float]:
    """Every passing term scored on every window."""
    passing = _passing(index, text)
    tokens = [t for t in (squash(w) for w in text.split()) if t]
    best: dict[str, float] = {}
    for start in range(len(tokens)):
        for end in range(start + 1, min(start + index.WINDOW_WORDS, len(tokens)) + 1):
            window = trigrams("".join(tokens[start:end]))
            for n in passing:
                grams = index._grams[n]
                score = len(grams & window) / max(len(grams), len(window))
                best[index._names[n]] = max(best.get(index._names[n], 0.0), score)
    return {name: score for name, score in best.items() if score > 0.0}


def test_signature_prefilter_finds_what_counting_every_trigram_finds() -> None:
    for terms in _terms():
        index = TrigramIndex(terms)
        found = 0
        for text in _texts([t for t, _ in terms]):
            whole = trigrams(text)
            assert index.candidates(whole) == _passing(index, text), text
            scores = index.scores(text)
            assert scores == _brute_force(index, text), text
            assert index.scores(text, whole) == scores
            found += bool(scores)
        assert found > 500  # the texts do name listed terms: the comparison bites


def test_shipped_lists_score_a_text_as_before() -> None:
    lex = lexicon.load()
    text = "4-Piperidone hydrocloride 99% powder, TDP-5 tablet pres machine"
    assert lex.precursors.scores(text)["4-Piperidone"] > 0.8
    assert max(lex.presses.scores(text).values()) > 0.85
    assert lex.precursors.scores(text, trigrams(text)) == lex.precursors.scores(text)
