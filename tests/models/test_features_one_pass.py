"""``vectorize`` reads the order lines in one pass: each line figure must be what ``min``/``max``/
``any`` over every line give (the vector training and inference both compute), for orders of no
line, one line and several, with ties and lines that are not even objects."""

from __future__ import annotations

from prescreen.models import features, lexicon
from prescreen.models.signals import ParcelSignals, measure
from prescreen.sim.samples import generate


def _by_builtins(signals: ParcelSignals) -> list[float]:
    """Features 7-22 (the line figures) as min/max/any over the lines, no line: the defaults."""
    items = signals.items
    states = [i.code_state for i in items] or ["missing"]
    return [
        1.0 if "missing" in states else 0.0,
        1.0 if "malformed" in states or "chapter_invalid" in states else 0.0,
        1.0 if "unknown" in states else 0.0,
        1.0 if any(i.code_state == "valid" and len(i.hts) < 10 for i in items) else 0.0,
        min((i.fit.declared for i in items), default=0.0),
        max((i.fit.mismatch for i in items), default=0.0),
        min((i.fit.known for i in items), default=0.0),
        min((i.own_fit for i in items), default=0.0),
        max((i.generic for i in items), default=1.0),
        max((i.precursor for i in items), default=0.0),
        max((i.press for i in items), default=0.0),
        1.0 if any(i.precursor_line for i in items) else 0.0,
        1.0 if any(i.press_line for i in items) else 0.0,
        1.0 if any(i.chemical_chapter for i in items) else 0.0,
        1.0 if any(i.chemical_unexplained for i in items) else 0.0,
        min((len(i.description.split()) for i in items), default=0) / 10 if items else 0.0,
    ]


def test_one_pass_gives_min_max_and_any_of_every_line() -> None:
    lex = lexicon.load()
    orders, _ = generate(400, seed=17)
    parcels = [o for o in orders if "items" in o]
    lines_of = [[i for p in parcels[n : n + 1 + n % 4] for i in p["items"]] for n in range(len(parcels))]
    several = [{**o, "items": items} for o, items in zip(parcels, lines_of, strict=True)]
    odd = [None, {}, {"items": []}, {"items": [{}, "not an object", {"description": "Gift"}]}]
    lines = 0
    for order in parcels + several + odd:
        signals = measure(lex, order, 0.75)
        vector = features.vectorize(signals)
        assert len(vector) == len(features.NAMES)
        assert vector[7:23] == _by_builtins(signals), order
        lines += len(signals.items) > 1
    assert lines > 250  # orders of several lines, where the pass must pick the right one
