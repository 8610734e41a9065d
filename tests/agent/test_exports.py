"""Exports: each mapped format matches its table in docs/data-mapping.md element by element on demo
records, takes the parcels of its channel and destination, and refuses incomplete parcels."""

from __future__ import annotations

import copy
import csv
import io
import json
import re
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from order_fixtures import clean_order
from prescreen.core.records import SCHEMA_V1, validate
from prescreen.drivers.barcodes import decode
from prescreen.ops.config import ScreeningConfig, StationConfig
from prescreen.packing.verdicts import verdict_record
from prescreen.risk.entry import PARCEL_FIELDS, EntrySettings
from prescreen.risk.rules import ParcelFacts
from prescreen.risk.screening import Screener
from prescreen.sim.demo import run_demo
from prescreen.trade import exports

DOC = Path(__file__).resolve().parents[2] / "docs" / "data-mapping.md"
HEADINGS = {
    "us-informal": "US Type 11 informal entry",
    "us-formal-lines": "US Type 01 entry line data",
    "us-mail": "US Type 13 informal mail entry",
    "ics2-ens": "EU ICS2 house-level ENS",
    "pact": "Canada PACT",
}


def doc_rows(heading: str) -> list[list[str]]:
    """The cells of the table under ``heading`` in the mapping document (backticks removed)."""
    text = DOC.read_text()
    section = text.split(f"## {heading}", 1)[1].split("\n## ", 1)[0]
    rows = [
        [cell.strip().strip("`") for cell in line.strip().strip("|").split("|")]
        for line in section.splitlines()
        if line.startswith("| `")
    ]
    assert rows, f"no table under {heading}"
    return rows


@pytest.mark.parametrize("fmt", sorted(exports.MAPPED))
def test_each_documented_table_is_exactly_what_the_code_exports(fmt: str) -> None:
    rows = doc_rows(HEADINGS[fmt])
    code = [[e.name, e.source, e.need.text] for e in exports.MAPPED[fmt].elements]
    assert [row[:3] for row in rows] == code
    assert all(len(row) == 4 and row[3] for row in rows), "every element names its official source"


def test_the_record_csv_table_is_what_the_code_exports() -> None:
    assert [row[:2] for row in doc_rows("Record CSV")] == [[e.name, e.source] for e in exports.RECORD_COLUMNS]


# --- element by element on demo records ---------------------------------------------------------


@pytest.fixture(scope="module")
def demo_records(tmp_path_factory: pytest.TempPathFactory) -> list[dict[str, Any]]:
    workdir = tmp_path_factory.mktemp("exports")
    run_demo(40, workdir=workdir)
    from prescreen.commands.compliance import read_outbox

    records, _ = read_outbox(workdir / "outbox.db")
    for record in records:
        validate(record)
    return records


def _path(value: Any, dotted: str) -> Any:
    for part in dotted.split("."):
        value = value.get(part) if isinstance(value, dict) else None
    return value


def _one_line(address: dict[str, Any] | None) -> str | None:
    keys = ("line1", "line2", "city", "region", "postal_code", "country")
    return ", ".join(str(address[k]) for k in keys if address and address.get(k)) or None


def documented(source: str, record: dict[str, Any], item: dict[str, Any], line: int, rows: list[Any]) -> Any:
    """What the documented ``source`` says the element holds, read independently of the code."""
    if source.startswith('"'):
        return source.strip('"')
    if ", else " in source:
        first, second = source.split(", else ")
        return documented(first, record, item, line, rows) or documented(second, record, item, line, rows)
    if source == "position in order.items (1-based)":
        return line
    if source == "1 per parcel record":
        return 1
    if source == "sum of line_value_usd":
        values = [r["line_value_usd"] for r in rows]
        return None if None in values else round(sum(values), 2)
    if source == "order.items[].unit_value_usd × quantity":
        value, quantity = item.get("unit_value_usd"), item.get("quantity")
        return None if value is None or quantity is None else round(value * quantity, 2)
    if source == "order.items[].hts_code (digits)":
        return re.sub(r"\D", "", item.get("hts_code") or "") or None
    if source == "order.items[].hts_code first 6 digits":
        found = re.sub(r"\D", "", item.get("hts_code") or "")
        return found[:6] if len(found) >= 6 else None
    if source.endswith(" (space separated)") and source.startswith("order.items[]."):
        return " ".join(item.get(source.split(".")[2].split(" ", maxsplit=1)[0]) or []) or None
    if source == "screening.reasons[].code (space separated)":
        return " ".join(r["code"] for r in record["screening"]["reasons"])
    if source == "order.items[].description (joined with '; ')":
        return "; ".join(i["description"] for i in record["order"]["items"] if i.get("description")) or None
    if source.endswith(" (one line)"):
        path = source.removesuffix(" (one line)")
        if path.startswith("order.items[]."):
            return _one_line(_path(item, path.removeprefix("order.items[].")))
        return _one_line(_path(record, path))
    if source.endswith(" (scale)"):
        return _path(record, source.removesuffix(" (scale)"))
    assert re.fullmatch(r"[a-z0-9_]+(\.[a-z0-9_]+|\[\]\.[a-z0-9_]+)*", source), (
        f"undocumented form {source!r}"
    )
    if source.startswith("order.items[]."):
        return _path(item, source.removeprefix("order.items[]."))
    return _path(record, source)


def _rows(
    records: list[dict[str, Any]], fmt: str, **options: Any
) -> tuple[list[dict[str, str]], exports.Result]:
    out = io.StringIO()
    result = exports.write_records(records, fmt, out, **options)
    return list(csv.DictReader(io.StringIO(out.getvalue()))), result


def _text(value: Any) -> str:
    """How the CSV writer renders a value."""
    return "" if value is None else str(value)


@pytest.mark.slow
@pytest.mark.parametrize("fmt", sorted(exports.MAPPED))
def test_every_element_holds_what_its_table_says_on_demo_records(
    fmt: str, demo_records: list[dict[str, Any]]
) -> None:
    spec = exports.MAPPED[fmt]
    rows, result = _rows(demo_records, fmt)
    assert result.written == len(rows) > 0, "the demo has parcels for every export"
    assert result.refused or fmt in ("ics2-ens", "pact")  # the demo's gaps are US data gaps
    by_bill: dict[str, list[dict[str, str]]] = {}
    for row in rows:
        assert list(row) == [*(e.name for e in spec.elements), "incomplete"]
        assert row["incomplete"] == ""  # without --allow-incomplete only complete parcels are written
        by_bill.setdefault(
            row["correlation_id" if fmt in ("ics2-ens", "pact") else "preclearance_record_id"], []
        ).append(row)
    checked = 0
    records = {r["record_id"]: r for r in demo_records}
    for record_id, parcel_rows in by_bill.items():
        record = records[record_id]
        items = record["order"]["items"] if spec.per_line else [{}]
        assert len(parcel_rows) == len(items)
        raw = [
            {e.name: e.get(record, {**i, "_line": n}) for e in spec.elements} for n, i in enumerate(items, 1)
        ]
        for line, (item, row) in enumerate(zip(items, parcel_rows, strict=True), start=1):
            for element in spec.elements:
                expected = documented(element.source, record, item, line, raw)
                assert row[element.name] == _text(expected), (fmt, element.name)
                if element.need.needed(record, {**item, "_line": line}):
                    assert row[element.name] != "", (fmt, element.name)  # mandatory and written: filled
                checked += 1
    assert len(by_bill) >= 2
    assert checked >= 2 * len(spec.elements)


@pytest.mark.slow
def test_refused_parcels_are_listed_and_allow_incomplete_marks_them(
    demo_records: list[dict[str, Any]],
) -> None:
    complete, refused = _rows(demo_records, "us-informal")
    marked, result = _rows(demo_records, "us-informal", allow_incomplete=True)
    assert result.refused == []
    assert refused.refused
    gaps = [row for row in marked if row["incomplete"]]
    assert {row["preclearance_record_id"] for row in gaps} == {r.record_id for r in refused.refused}
    assert len(marked) == len(complete) + len(gaps)
    no_importer = [r for r in refused.refused if "importer_of_record_name missing" in r.missing]
    assert no_importer, "the demo has an order without importer of record"
    assert "importer_of_record_number missing" in no_importer[0].missing
    assert str(no_importer[0]).startswith(
        f"{no_importer[0].house_bill} (record {no_importer[0].record_id}): "
    )


# --- the right export and channel for each kind of parcel ---------------------------------------


def _formats_taking(record: dict[str, Any]) -> set[str]:
    taken = set()
    for fmt in exports.MAPPED:
        rows, _result = _rows([record], fmt, allow_incomplete=True)
        if rows:
            taken.add(fmt)
    return taken


def _verdicts(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [r for r in records if r["kind"] == "verdict"]


@pytest.mark.slow
def test_demo_parcels_go_to_the_export_of_their_network(demo_records: list[dict[str, Any]]) -> None:
    verdicts = _verdicts(demo_records)
    s10 = next(r for r in verdicts if r["parcel"]["carrier"] == "upu" and r["order"])
    assert s10["parcel"]["channel"] == "postal"
    assert _formats_taking(s10) == {"us-mail"}
    ups = next(r for r in verdicts if r["parcel"]["carrier"] == "ups" and not r["parcel"]["master_carton_id"])
    assert ups["parcel"]["channel"] == "express"
    assert _formats_taking(ups) == {"us-informal", "us-formal-lines"}
    domestic = next(
        r
        for r in verdicts
        if r["parcel"]["carrier"] == "usps"
        and r["parcel"]["master_bill"]
        and r["order"]["consignee"]["address"]["country"] == "US"
    )
    assert domestic["parcel"]["channel"] == "cargo"  # a domestic USPS label is not a postal item abroad
    assert _formats_taking(domestic) == {"us-informal", "us-formal-lines"}
    (carton,) = [r for r in verdicts if "carton" in r["parcel"]]
    assert carton["parcel"]["channel"] == "cargo"
    assert carton["parcel"]["master_bill"]
    assert _formats_taking(carton) == set()  # declared through its house bills
    inside = [
        r for r in verdicts if r["parcel"]["master_carton_id"] == carton["parcel"]["sscc"] and r["order"]
    ]
    assert len(inside) == 3
    assert {(r["parcel"]["channel"], r["parcel"]["master_bill"]) for r in inside} == {
        ("cargo", carton["parcel"]["master_bill"])
    }
    rows, _ = _rows(inside, "us-formal-lines", allow_incomplete=True)
    assert {row["master_bill"] for row in rows} == {carton["parcel"]["master_bill"]}
    eu = [
        r
        for r in verdicts
        if r["order"] and (r["order"]["consignee"] or {}).get("address", {}).get("country") == "DE"
    ]
    assert eu
    assert all(_formats_taking(r) == {"ics2-ens"} for r in eu)


def _record(label: str, **changes: Any) -> dict[str, Any]:
    order = clean_order(label)
    order.update(changes)
    facts = ParcelFacts(barcode=decode(label), weight_kg=Decimal("0.41"), order=order)
    settings = EntrySettings(account_channels={"CNPOST-EPACKET": "postal"})
    screening = Screener(ScreeningConfig(), entry=settings).screen(facts)
    carton = {"master_bill": "176-70000061", "port_of_entry": "2720", "transport_mode": "air"}
    return verdict_record(
        1,
        StationConfig(),
        facts,
        screening,
        entry=settings,
        carton_order=carton if "in_carton" in changes else None,
    )


@pytest.mark.parametrize(
    ("label", "changes", "channel", "formats"),
    [
        ("CP749118622CN", {"carrier_account": "CNPOST-EPACKET"}, "postal", {"us-mail"}),
        (
            "1Z5R89390357567127",
            {"port_of_entry": "4196", "transport_mode": "air"},
            "express",
            {"us-informal", "us-formal-lines"},
        ),
        ("9400111899223334445561", {"in_carton": True}, "cargo", {"us-informal", "us-formal-lines"}),
        (
            "9400111899223334445561",
            {"carrier_account": "CNPOST-EPACKET"},
            "unknown",
            {"us-informal", "us-formal-lines"},
        ),
    ],
)
def test_routing_by_channel(label: str, changes: dict[str, Any], channel: str, formats: set[str]) -> None:
    record = _record(label, **changes)
    validate(record)
    assert record["parcel"]["channel"] == channel
    assert _formats_taking(record) == formats
    if channel == "unknown":  # the postal account's domestic label: refused, with the reason
        _, result = _rows([record], "us-informal")
        assert "channel 'unknown' is not express or cargo" in result.refused[0].missing


def test_over_the_informal_limit_goes_to_formal_lines_only() -> None:
    record = _record("1Z5R89390357567127", port_of_entry="4196", transport_mode="air")
    record["order"]["items"][0].update(unit_value=2600.0, unit_value_usd=2600.0)
    assert _formats_taking(record) == {"us-formal-lines"}


def test_a_superseded_record_is_left_out_and_v1_records_are_refused_with_what_they_lack() -> None:
    first = _record("1Z5R89390357567127", port_of_entry="4196", transport_mode="air")
    second = copy.deepcopy(first)
    second.update(
        record_id="0b7b6f3e-7a43-4c1e-9f4c-2f7e3c1a0001",
        supersedes={"record_id": first["record_id"], "reason": "correction"},
    )
    rows, result = _rows([first, second], "us-informal")
    assert [r["preclearance_record_id"] for r in rows] == [second["record_id"]]
    assert result.not_applicable == 1
    old = copy.deepcopy(first)
    old["schema"] = SCHEMA_V1
    for key in PARCEL_FIELDS[1:]:  # v1 had the channel only
        old["parcel"].pop(key)
    old["order"] = {
        k: v
        for k, v in old["order"].items()
        if k not in ("importer_of_record", "gift", "ioss_number", "usd_rate")
    }
    old["order"]["items"] = [
        {
            k: v
            for k, v in i.items()
            if k in ("description", "hts_code", "quantity", "unit_value", "origin_country")
        }
        for i in old["order"]["items"]
    ]
    validate(old)
    rows, result = _rows([old], "us-informal")
    assert rows == []
    (refusal,) = result.refused
    assert {
        "importer_of_record_name missing",
        "manufacturer_mid missing",
        "usd_rate missing",
        "port_of_entry missing",
    } <= set(refusal.missing)


def test_the_export_command_lists_refusals_and_exits_1(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from prescreen.commands.main import main
    from prescreen.packing.outbox import Outbox

    outbox = Outbox(tmp_path / "outbox.db")
    complete = _record("1Z5R89390357567127", port_of_entry="4196", transport_mode="air")
    missing = _record(
        "1Z5R89390357567127", port_of_entry="4196", transport_mode="air", importer_of_record=None
    )
    outbox.append_many([lambda seq, r=r: {**r, "seq": seq} for r in (complete, missing)])
    outbox.close()
    args = ["export", "--outbox", str(tmp_path / "outbox.db"), "--format", "us-informal"]
    assert main(args) == 1
    captured = capsys.readouterr()
    assert len(captured.out.splitlines()) == 2  # header and the complete parcel
    assert (
        f"refused 1Z5R89390357567127 (record {missing['record_id']}): importer_of_record_name missing"
        in captured.err
    )
    assert "1 rows written, 1 parcels refused as incomplete" in captured.err
    assert main([*args, "--allow-incomplete"]) == 0
    rows = list(csv.DictReader(io.StringIO(capsys.readouterr().out)))
    assert [bool(r["incomplete"]) for r in rows] == [False, True]


@pytest.mark.slow
@pytest.mark.parametrize("fmt", ["csv", *sorted(exports.MAPPED)])
def test_csv_formats_parse_back_with_their_header(demo_records: list[dict[str, Any]], fmt: str) -> None:
    rows, result = _rows(demo_records, fmt)
    assert len(rows) == result.written > 0


@pytest.mark.slow
def test_ndjson_is_the_records_themselves(demo_records: list[dict[str, Any]]) -> None:
    out = io.StringIO()
    exports.write_records(demo_records, "ndjson", out)
    assert [json.loads(line) for line in out.getvalue().splitlines()] == demo_records
