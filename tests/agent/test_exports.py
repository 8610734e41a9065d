"""Exports: the code matches the tables in docs/data-mapping.md; postal parcels map like express ones."""

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
from prescreen import exports
from prescreen.config import ScreeningConfig, StationConfig
from prescreen.demo import run_demo
from prescreen.drivers.barcodes import decode
from prescreen.rules import ParcelFacts
from prescreen.screening import Screener
from prescreen.station import verdict_record

DOC = Path(__file__).resolve().parents[2] / "docs" / "data-mapping.md"


def doc_table(heading: str) -> list[tuple[str, str]]:
    """(element, source) rows of the first table under ``heading`` in the mapping document."""
    text = DOC.read_text()
    section = text.split(f"## {heading}", 1)[1].split("\n## ", 1)[0]
    rows = re.findall(r"^\| `([^`]+)` \| `([^`]+)` \|", section, flags=re.MULTILINE)
    assert rows, f"no table under {heading}"
    return rows


@pytest.mark.parametrize(
    ("heading", "elements"),
    [
        ("US low-value entry", exports.ENTRY_ELEMENTS),
        ("7+1 pre-loading data set", exports.PLACI_ELEMENTS),
        ("Record CSV", exports.RECORD_COLUMNS),
    ],
)
def test_the_documented_tables_are_exactly_what_the_code_exports(
    heading: str, elements: tuple[Any, ...]
) -> None:
    assert doc_table(heading) == [(e.name, e.source) for e in elements]


@pytest.fixture(scope="module")
def demo_records(tmp_path_factory: pytest.TempPathFactory) -> list[dict[str, Any]]:
    workdir = tmp_path_factory.mktemp("exports")
    run_demo(30, workdir=workdir)
    from prescreen.cli_compliance import read_outbox

    records, _ = read_outbox(workdir / "outbox.db")
    return records


def _at(record: dict[str, Any], item: dict[str, Any], source: str) -> Any:
    """The value at a documented source that is a plain path (``a.b`` or ``order.items[].x``)."""
    if source.startswith("order.items[]."):
        return item.get(source.removeprefix("order.items[]."))
    value: Any = record
    for part in source.split("."):
        value = value.get(part) if isinstance(value, dict) else None
    return value


PLAIN = re.compile(r"^[a-z_]+(\.[a-z_]+|\[\]\.[a-z_]+)*$")


def test_entry_rows_take_each_element_from_its_documented_source(demo_records: list[dict[str, Any]]) -> None:
    verdicts = [r for r in demo_records if r["kind"] == "verdict" and r["order"]]
    assert len(verdicts) > 20
    checked = 0
    for record in verdicts:
        rows = list(exports.entry_rows(record))
        assert len(rows) == len(record["order"]["items"])
        for item, row in zip(record["order"]["items"], rows, strict=True):
            assert list(row) == [e.name for e in exports.ENTRY_ELEMENTS]
            for element in exports.ENTRY_ELEMENTS:
                if PLAIN.match(element.source):
                    assert row[element.name] == _at(record, item, element.source), element.name
                    checked += 1
            # entry-grade elements a complete order must fill
            for name in ("house_bill_number", "consignee_name", "seller_name", "description", "currency"):
                assert row[name], name
    assert checked > 500


def test_placi_rows_fill_the_seven_plus_one(demo_records: list[dict[str, Any]]) -> None:
    verdicts = [r for r in demo_records if r["kind"] == "verdict" and r["order"]]
    for record in verdicts:
        row = exports.placi_row(record)
        assert row is not None
        assert list(row) == [e.name for e in exports.PLACI_ELEMENTS]
        for name in (
            "house_bill_number",
            "shipper_name",
            "consignee_name",
            "consignee_address",
            "total_weight_kg",
        ):
            assert row[name], name
        assert row["total_piece_count"] == 1
        assert row["cargo_description"] == "; ".join(
            i["description"] for i in record["order"]["items"] if i["description"]
        )
    assert exports.placi_row({"kind": "outcome"}) is None


@pytest.mark.parametrize("fmt", ["csv", "entry-csv", "ics2"])
def test_csv_formats_parse_back_with_their_header(demo_records: list[dict[str, Any]], fmt: str) -> None:
    out = io.StringIO()
    written = exports.write_records(demo_records, fmt, out)
    rows = list(csv.DictReader(io.StringIO(out.getvalue())))
    assert len(rows) == written > 0
    columns = {
        "csv": exports.RECORD_COLUMNS,
        "entry-csv": exports.ENTRY_ELEMENTS,
        "ics2": exports.PLACI_ELEMENTS,
    }
    assert list(rows[0]) == [e.name for e in columns[fmt]]


def test_ndjson_is_the_records_themselves(demo_records: list[dict[str, Any]]) -> None:
    out = io.StringIO()
    exports.write_records(demo_records, "ndjson", out)
    assert [json.loads(line) for line in out.getvalue().splitlines()] == demo_records


ORDER = {
    "order_id": "SO-1",
    "order_date": "2026-11-20",
    "currency": "USD",
    "declared_weight_kg": 0.4,
    "total_declared_value": 18.0,
    "shipment_category": "sale",
    "marketplace": "demo",
    "seller": {
        "name": "Seller Co",
        "address": {"line1": "1 Rd", "city": "Shenzhen", "country": "CN"},
        "id": None,
    },
    "shipper": {
        "name": "Seller Co",
        "address": {"line1": "1 Rd", "city": "Shenzhen", "country": "CN"},
        "id": None,
    },
    "consignee": {
        "name": "Ana Ruiz",
        "address": {"line1": "5 Elm St", "city": "Austin", "country": "US"},
        "id": None,
    },
    "final_recipient": None,
    "items": [
        {
            "description": "Cotton T-shirt",
            "hts_code": "6109100012",
            "quantity": 2.0,
            "unit_value": 9.0,
            "origin_country": "CN",
        }
    ],
}


def _record(label: str) -> dict[str, Any]:
    from prescreen.orders import to_record

    facts = ParcelFacts(
        barcode=decode(label), weight_kg=Decimal("0.41"), order=to_record(copy.deepcopy(ORDER))
    )
    return verdict_record(1, StationConfig(), facts, Screener(ScreeningConfig()).screen(facts))


@pytest.mark.parametrize(
    ("label", "channel"),
    [("CP749118622CN", "postal"), ("9400111899223334445561", "postal")],
)
def test_postal_parcels_produce_the_same_data_elements_as_express(label: str, channel: str) -> None:
    express = _record("1Z5R89390357567127")
    postal = _record(label)
    assert express["parcel"]["channel"] == "express"
    assert postal["parcel"]["channel"] == channel
    for rows in (
        (next(exports.entry_rows(express)), next(exports.entry_rows(postal))),
        (exports.placi_row(express), exports.placi_row(postal)),
    ):
        express_row, postal_row = rows
        assert express_row is not None
        assert postal_row is not None
        filled = {k for k, v in express_row.items() if v not in (None, "")}
        assert filled == {k for k, v in postal_row.items() if v not in (None, "")}
        differ = {k for k in express_row if express_row[k] != postal_row[k]}
        assert differ <= {
            "house_bill_number",
            "carrier",
            "channel",
            "preclearance_record_id",
            "correlation_id",
        }
    assert next(exports.entry_rows(postal))["house_bill_number"] == decode(label).tracking_number
