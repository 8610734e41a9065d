"""The file order source keeps each order's text, not its parsed dicts (issue 20: resident memory).

Parsed, a 400-order export took about six times its size; the station now parses one order when
it is scanned, and must find exactly what the parsed export held.
"""

from __future__ import annotations

import json
import tracemalloc
from pathlib import Path

from prescreen.packing.orders import FileOrderSource, order_key, read_orders
from prescreen.sim.samples import generate


def _export(tmp_path: Path) -> Path:
    orders, _ = generate(400, seed=11)
    path = tmp_path / "orders.ndjson"
    path.write_text("".join(json.dumps(o, ensure_ascii=False) + "\n" for o in orders))
    return path


def test_every_order_is_found_as_the_parsed_export_holds_it(tmp_path: Path) -> None:
    path = _export(tmp_path)
    parsed = {}
    for line in path.read_text().splitlines():
        order = json.loads(line)
        parsed[order_key(order)] = order
    source = FileOrderSource(path)
    assert len(parsed) > 300
    assert all(source.lookup(key) == order for key, order in parsed.items())
    assert read_orders(path) == parsed
    csv_path = tmp_path / "orders.csv"
    csv_path.write_text("tracking_number,description,quantity,unit_value\n1Z5R89390357567127,pads,2,9.5\n")
    tracking = "1Z5R89390357567127"
    assert FileOrderSource(csv_path).lookup(tracking) == read_orders(csv_path)[tracking]


def test_a_looked_up_order_is_the_callers_own(tmp_path: Path) -> None:
    source = FileOrderSource(_export(tmp_path))
    key = next(iter(read_orders(source.path)))
    first = source.lookup(key)
    first["items"].clear()
    assert source.lookup(key)["items"]


def test_the_orders_kept_cost_about_the_export_size(tmp_path: Path) -> None:
    path = _export(tmp_path)
    tracemalloc.start()
    try:
        source = FileOrderSource(path)
        kept, _ = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert source.lookup(next(iter(read_orders(path))))
    assert kept < 1.5 * path.stat().st_size, (kept, path.stat().st_size)  # parsed dicts: about 6x
