"""GS1 element strings of a scan (``00`` SSCC, ``01`` GTIN, weights, dates…), as biip parses them.

Why not ``import biip``: importing it loads its GS1 Company Prefix trie, a nested dict of about a
million entries that cost the agent 16–20 MB of resident memory at the first GS1 label, for the
company-prefix lengths the station never reads. The Application Identifier table is still biip's
(its data file, read here without importing biip: the maintained table of the GS1 General
Specifications), and the rules are biip 5's ``GS1Message.parse``: the AI found by its prefix, its
data matched by the table's pattern up to the next group separator, separators skipped between
element strings, dates verified, SSCC and GTIN check digits. ``tests/drivers/test_gs1.py`` checks
the result against ``biip.parse`` on generated and real label contents.

A biip without that data file (a future layout) falls back to ``biip.parse`` itself.
"""

from __future__ import annotations

import calendar
import datetime as dt
import functools
import importlib.util
import json
import re
from pathlib import Path

GS = "\x1d"
_DATE_AIS = frozenset(
    ("11", "12", "13", "15", "16", "17", "4324", "4325", "4326", "7003", "7006", "7007", "7011", "8008")
)
_GTIN_AIS = frozenset(("01", "02", "03"))
Parsed = tuple[dict[str, str], str | None, bool]


class _Unparsable(ValueError):
    """The scan is not a GS1 message (biip's ``ParseError``)."""


@functools.cache
def _table() -> dict[str, str] | None:
    """AI → its data pattern (anchored at the start, open at the end), or None without the file."""
    spec = importlib.util.find_spec("biip")  # finds the package without importing it
    if spec is None or spec.origin is None:
        return None
    path = Path(spec.origin).parent / "gs1_application_identifiers" / "_application_identifiers.json"
    try:
        entries = json.loads(path.read_text(encoding="utf-8"))
        return {str(e["ai"]): str(e["pattern"]).removesuffix("$") for e in entries}
    except (OSError, ValueError, KeyError, TypeError):
        return None


def _check_ok(value: str, lengths: tuple[int, ...]) -> bool:
    """A GTIN's or SSCC's length, digits and GS1 mod-10 check digit (leading zeros weigh nothing)."""
    if len(value) not in lengths or not value.isdecimal():
        return False
    total = sum(int(d) * (3 if i % 2 == 0 else 1) for i, d in enumerate(reversed(value[:-1])))
    return (10 - total % 10) % 10 == int(value[-1])


def _verify_date(value: str) -> None:
    """YYMMDD[hh[mm[ss]]] as GS1 section 7.12 reads it (day 00: the month's last day; the
    century within 49 years back and 50 ahead); raises ValueError where biip refuses the scan."""
    pairs = [value[i : i + 2] for i in range(0, len(value), 2)]
    year = int(pairs[0])
    this_year = dt.datetime.now(tz=dt.timezone.utc).year
    ahead = year - this_year % 100
    year += this_year - this_year % 100 + (-100 if 51 <= ahead <= 99 else 100 if -99 <= ahead <= -50 else 0)
    month, day = int(pairs[1]), int(pairs[2])
    day = day or calendar.monthrange(year, month)[1]
    dt.date(year, month, day)
    if pairs[3:]:
        hour, minute = int(pairs[3]), int(pairs[4] if pairs[4:] else 0)
        if not (hour == 99 and minute == 99):
            dt.datetime(year, month, day, hour, minute, int(pairs[5] if pairs[5:] else 0))


def _element(rest: str, table: dict[str, str]) -> tuple[str, str]:
    """The first element string of ``rest``: (AI, data)."""
    ai = next((rest[:n] for n in (2, 3, 4) if rest[:n] in table), None)  # the AIs are prefix-free
    if ai is None:
        raise _Unparsable(f"no GS1 Application Identifier at {rest[:4]!r}")
    found = re.match(table[ai], rest.split(GS, 1)[0])
    if not found:
        raise _Unparsable(f"data of AI {ai} does not match its format")
    data = "".join(g for g in found.groups() if g is not None)
    if ai in _DATE_AIS:
        try:
            _verify_date(data)
        except ValueError:
            raise _Unparsable(f"AI {ai}: not a date {data!r}") from None
    return ai, data


def parse(payload: str) -> Parsed:
    """A GS1 element string (AIM identifier removed): (AI→value, SSCC or None, every SSCC and GTIN
    check digit right); ({}, None, False) when it is not one."""
    table = _table()
    if table is None:
        return _parse_with_biip(payload)
    elements: dict[str, str] = {}
    checks_ok = True
    rest = payload.strip()  # str.strip() drops leading and trailing GS as well, as biip does
    try:
        while rest:
            ai, data = _element(rest, table)
            elements[ai] = data
            if ai == "00":
                checks_ok &= _check_ok(data, (18,))
            elif ai in _GTIN_AIS:
                checks_ok &= _check_ok(data, (8, 12, 13, 14))
            rest = rest[len(ai) + len(data) :].lstrip(GS)
    except _Unparsable:
        return {}, None, False
    return elements, elements.get("00"), checks_ok


def _parse_with_biip(payload: str) -> Parsed:
    import biip  # loads its company-prefix trie (16-20 MB): only where its AI table file is not found

    try:
        result = biip.parse("]C1" + payload)
    except biip.ParseError:
        return {}, None, False
    message = result.gs1_message
    if message is None:
        return {}, None, False
    elements = {e.ai.ai: e.value for e in message.element_strings}
    checks_ok = all(e.sscc_error is None and e.gtin_error is None for e in message.element_strings)
    return elements, elements.get("00"), checks_ok
