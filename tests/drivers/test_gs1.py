"""The GS1 parser reads what ``biip.parse`` reads, without importing biip (its 16-20 MB trie).

biip 5's own parser is the oracle: element strings built from every AI of its table (data drawn
from each AI's pattern, so Unicode digits too), mutated, glued with or without group separators,
with dates valid and not, and check digits right and wrong; both must give the same elements, SSCC
and check result. The running agent must not import biip at all.
"""

from __future__ import annotations

import subprocess
import sys

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from prescreen.drivers import gs1
from prescreen.drivers.barcodes import decode

TABLE = gs1._table()
assert TABLE is not None, "biip's AI table file was not found: the parser would fall back to biip"
AIS = sorted(TABLE)


def by_biip(payload: str) -> gs1.Parsed:
    return gs1._parse_with_biip(payload)


def _with_check_digit(body: str) -> str:
    total = sum(int(d) * (3 if i % 2 == 0 else 1) for i, d in enumerate(reversed(body)))
    return body + str((10 - total % 10) % 10)


FOCUS = ["00", "01", "02", "17", "11", "7007", "8008", "3103", "420", "10", "21"]  # a parcel's


@st.composite
def element(draw: st.DrawFn) -> str:
    ai = draw(st.one_of(st.sampled_from(AIS), st.sampled_from(FOCUS)))
    if ai in ("00", "01", "02") and draw(st.booleans()):
        size = 17 if ai == "00" else 13
        data = _with_check_digit(draw(st.text("0123456789", min_size=size, max_size=size)))
    elif ai in gs1._DATE_AIS and draw(st.booleans()):
        yy, mm, dd = draw(st.integers(0, 99)), draw(st.integers(0, 13)), draw(st.integers(0, 31))
        data = f"{yy:02}{mm:02}{dd:02}" + draw(st.sampled_from(["", "1230", "9999", "2561", "0000"]))
    else:  # mostly ASCII, as scanners send; sometimes any character the pattern admits (\\d: any digit)
        alphabet = draw(st.sampled_from([st.characters(codec="ascii"), st.characters(codec="ascii"), None]))
        data = draw(st.from_regex(TABLE[ai] + "$", fullmatch=True, alphabet=alphabet))[len(ai) :]
    return ai + data


@st.composite
def message(draw: st.DrawFn) -> str:
    parts = draw(st.lists(element(), min_size=1, max_size=4))
    text = "".join(p + draw(st.sampled_from(["", "", gs1.GS, gs1.GS * 2])) for p in parts)
    if draw(st.integers(0, 3)) == 0:  # a damaged scan: a character changed, cut short, or junk
        at = draw(st.integers(0, len(text)))
        text = text[:at] + draw(st.sampled_from(["", "x", "9", " ", gs1.GS, "٣"])) + text[at + 1 :]
    return draw(st.sampled_from(["", " ", gs1.GS])) + text


@settings(max_examples=400, deadline=None)
@given(message())
def test_the_same_elements_sscc_and_checks_as_biip(payload: str) -> None:
    assert gs1.parse(payload) == by_biip(payload)


@pytest.mark.parametrize(
    "payload",
    [
        "00106141411234567897",
        "00106141411234567898",  # SSCC check digit wrong
        "00106141411234567897\x1d3302001250\x1d42010001\x1d403ROUTE1",
        "0109501101530003172912000010ABC",
        "0109501101530004",  # GTIN check digit wrong
        "17240229",  # 29 February in a leap year
        "17230229",  # and in a year that has none: not a GS1 message
        "17770229",  # 1977 (49 years back at most): no 29 February
        "17241300",  # month 13
        "17240200",  # day 00: the month's last day
        "7007240101240131",
        "800824010112",
        "8008240101",
        "99",  # an AI without data
        "",
        "\x1d\x1d",
        "ab",
    ],
)
def test_known_label_contents_read_as_biip_reads_them(payload: str) -> None:
    assert gs1.parse(payload) == by_biip(payload)


def test_a_gs1_label_decodes_without_importing_biip() -> None:
    code = (
        "import sys; from prescreen.drivers.barcodes import decode; "
        "b = decode(']C100106141411234567897\\x1d3103001250'); "
        "assert b.sscc == '106141411234567897' and b.check_ok, b; "
        "assert 'biip' not in sys.modules, 'biip imported'"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=False
    )
    assert result.returncode == 0, result.stderr[-2000:]


def test_without_the_table_file_biip_itself_parses(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(gs1, "_table", lambda: None)
    barcode = decode("]C100106141411234567897")
    assert (barcode.carrier, barcode.sscc, barcode.check_ok) == ("gs1", "106141411234567897", True)
