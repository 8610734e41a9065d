"""Exports in the formats filers take for the rules in force, and the record schema itself.

- ``ndjson``: one canonical record per line (the schema itself);
- ``csv``: the record schema flattened, one row per record (:data:`RECORD_COLUMNS`);
- ``us-informal``: US Type 11 informal entry, one row per line item (non-postal, up to $2,500);
- ``us-formal-lines``: US Type 01 entry line data, one row per line item (non-postal);
- ``us-mail``: US Type 13 informal mail entry, keyed by the UPU S10 item id, one row per line;
- ``ics2-ens``: EU ICS2 house-level entry summary, one row per goods item (EU-bound parcels);
- ``pact``: Canada PACT pre-load data, the 7+1 set with the house-to-master link, one row per parcel.

Each mapped format is a table of :class:`Element` (name, documented source, whether it is
mandatory) so ``docs/data-mapping.md`` can be checked against it by the tests. A parcel missing a
mandatory element is refused as a whole with the list of what is missing, never written as an
incomplete row; ``allow_incomplete`` writes it with the ``incomplete`` column naming the gaps.
Which parcels a format takes is decided by the channel (postal or not) and the destination; a
master carton is declared through its house bills, and a record superseded by a newer one in the
same export is left out. Facts and sources: ``../shared/docs/domain.md`` section 0.
"""

from __future__ import annotations

import csv
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any, TextIO

from prescreen.core.records import Record, dumps
from prescreen.risk.entry import destination
from prescreen.trade.elements import Element, channel, house_bill, total_value_usd, value_at
from prescreen.trade.filer_tables import (
    ICS2_ENS,
    INFORMAL_LIMIT_USD,
    PACT,
    RECORD_COLUMNS,
    US_FORMAL_LINES,
    US_INFORMAL,
    US_MAIL,
)

# The 27 EU member states: ICS2 covers goods entering the EU.
# fmt: off
EU = frozenset({
    "AT", "BE", "BG", "CY", "CZ", "DE", "DK", "EE", "ES", "FI", "FR", "GR", "HR", "HU",
    "IE", "IT", "LT", "LU", "LV", "MT", "NL", "PL", "PT", "RO", "SE", "SI", "SK",
})
# fmt: on


# --- which parcels each format takes ------------------------------------------------------------


def _destination(record: Record) -> str | None:
    return destination(record.get("order"))


def _not_us(record: Record) -> str | None:
    """Why a record is not for a US export (bound elsewhere), or None (US, or not known yet)."""
    where = _destination(record)
    return None if where in ("US", None) else f"bound for {where}, not the US"


def _us_non_postal(record: Record) -> str | None:
    return _not_us(record) or ("postal item: us-mail" if channel(record) == "postal" else None)


def _us_informal(record: Record) -> str | None:
    reason = _us_non_postal(record)
    total = total_value_usd(record)
    if reason is None and total is not None and total > INFORMAL_LIMIT_USD:
        return f"{total:.2f} USD is over the informal limit: us-formal-lines"
    return reason


def _us_mail(record: Record) -> str | None:
    return _not_us(record) or (None if channel(record) == "postal" else "not a postal item")


def _to(countries: frozenset[str], name: str) -> Callable[[Record], str | None]:
    return lambda record: None if _destination(record) in countries else f"not bound for {name}"


@dataclass(frozen=True)
class Format:
    """A mapped export: its element table, one row per line item or per parcel, and which verdict
    records it takes (``scope`` gives the reason a record is not for it, or None)."""

    name: str
    elements: tuple[Element, ...]
    per_line: bool
    scope: Callable[[Record], str | None]


MAPPED: dict[str, Format] = {
    f.name: f
    for f in (
        Format("us-informal", US_INFORMAL, True, _us_informal),
        Format("us-formal-lines", US_FORMAL_LINES, True, _us_non_postal),
        Format("us-mail", US_MAIL, True, _us_mail),
        Format("ics2-ens", ICS2_ENS, True, _to(EU, "the EU")),
        Format("pact", PACT, False, _to(frozenset({"CA"}), "Canada")),
    )
}
FORMATS = ("ndjson", "csv", *MAPPED)


@dataclass(frozen=True)
class Refusal:
    """A parcel left out of an export because mandatory elements are missing or invalid."""

    record_id: str
    house_bill: str | None
    missing: tuple[str, ...]

    def __str__(self) -> str:
        return f"{self.house_bill or '(no label)'} (record {self.record_id}): {'; '.join(self.missing)}"


@dataclass
class Result:
    """What an export wrote, refused and left out as not for this format."""

    written: int = 0
    refused: list[Refusal] = field(default_factory=list)
    not_applicable: int = 0


def _problem(element: Element, value: Any, record: Record, item: dict[str, Any]) -> str | None:
    need = element.need
    if not need.needed(record, item):
        return None
    if value is None or value == "":
        return f"{element.name} missing"
    if need.valid is not None and not need.valid(value):
        return f"{element.name} {value!r} is not {need.text.removeprefix('yes: ')}"
    return None


def mapped_rows(record: Record, fmt: Format) -> tuple[list[dict[str, Any]], list[str]]:
    """The rows of one parcel and every problem a filer would be rejected for (empty: complete)."""
    items = (value_at(record, "order.items") or [{}]) if fmt.per_line else [{}]
    rows, problems = [], []
    for number, item in enumerate(items, start=1):
        line = {**item, "_line": number}
        row = {e.name: e.get(record, line) for e in fmt.elements}
        for element in fmt.elements:
            problem = _problem(element, row[element.name], record, line)
            if problem is not None:
                problems.append(f"line {number}: {problem}" if fmt.per_line and len(items) > 1 else problem)
        rows.append(row)
    return rows, list(dict.fromkeys(problems))


def _in_scope(records: list[Record], fmt: Format) -> Iterator[Record | None]:
    """The verdict records ``fmt`` takes; None for each record it leaves out."""
    superseded = {value_at(r, "supersedes.record_id") for r in records if r.get("supersedes")}
    for record in records:
        house_level = record.get("kind") == "verdict" and not value_at(record, "parcel.carton")
        if house_level and record.get("record_id") not in superseded and fmt.scope(record) is None:
            yield record
        else:
            yield None


def write_mapped(
    records: Iterable[Record], fmt_name: str, out: TextIO, *, allow_incomplete: bool = False
) -> Result:
    """Write the rows of a mapped format as CSV; refuse incomplete parcels (or, with
    ``allow_incomplete``, write them with the gaps in the ``incomplete`` column)."""
    fmt = MAPPED[fmt_name]
    writer = csv.DictWriter(
        out, fieldnames=[*(e.name for e in fmt.elements), "incomplete"], lineterminator="\n"
    )
    writer.writeheader()
    result = Result()
    for record in _in_scope(list(records), fmt):
        if record is None:
            result.not_applicable += 1
            continue
        rows, problems = mapped_rows(record, fmt)
        if problems and not allow_incomplete:
            result.refused.append(Refusal(record["record_id"], house_bill(record), tuple(problems)))
            continue
        for row in rows:
            writer.writerow({**row, "incomplete": "; ".join(problems)})
            result.written += 1
    return result


def record_row(record: Record) -> dict[str, Any]:
    """The record schema flattened to :data:`RECORD_COLUMNS`."""
    return {e.name: e.get(record, {}) for e in RECORD_COLUMNS}


def write_records(
    records: Iterable[Record], fmt: str, out: TextIO, *, allow_incomplete: bool = False
) -> Result:
    """Write ``records`` to ``out`` in ``fmt`` (one of :data:`FORMATS`).

    Raises:
        ValueError: an unknown format.
    """
    if fmt in MAPPED:
        return write_mapped(records, fmt, out, allow_incomplete=allow_incomplete)
    result = Result()
    if fmt == "ndjson":
        for record in records:
            out.write(dumps(record) + "\n")
            result.written += 1
        return result
    if fmt != "csv":
        raise ValueError(f"unknown export format {fmt!r}; one of {', '.join(FORMATS)}")
    writer = csv.DictWriter(out, fieldnames=[e.name for e in RECORD_COLUMNS], lineterminator="\n")
    writer.writeheader()
    for record in records:
        writer.writerow(record_row(record))
        result.written += 1
    return result
