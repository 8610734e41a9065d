"""A line's description is stemmed once for the chapter fit, the own fit and the generic share:
each gives what it gives when it stems the description itself."""

from __future__ import annotations

from prescreen.models import lexicon
from prescreen.models.signals import generic_share
from prescreen.models.text import stems
from prescreen.sim.samples import generate


def test_shared_stems_give_the_same_signals() -> None:
    lex = lexicon.load()
    nomenclature = lex.nomenclature
    orders, _ = generate(300, seed=5)
    lines = [item for order in orders for item in order.get("items", [])]
    assert len(lines) > 200
    for item in lines:
        description = str(item.get("description") or "").strip()
        code = "".join(ch for ch in str(item.get("hts_code") or "") if ch.isdigit())
        stemmed = stems(description)
        words = nomenclature.description_words(description, stemmed)
        assert words == nomenclature.description_words(description)
        chapter = code[:2] or "--"
        assert nomenclature.fit(description, chapter, words) == nomenclature.fit(description, chapter)
        assert nomenclature.own_fit(description, code, words) == nomenclature.own_fit(description, code)
        if description:
            assert generic_share(lex, description, stemmed) == generic_share(lex, description)
