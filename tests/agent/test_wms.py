"""The WMS order source against a real local HTTP server that misbehaves on purpose."""

from __future__ import annotations

import collections
import json
import os
import queue
import threading
import time
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from order_fixtures import TRACKING, clean_order
from prescreen.core.errors import OrderError
from prescreen.core.records import validate
from prescreen.ops import config as cfg
from prescreen.packing.app import Agent
from prescreen.packing.events import StationEvent
from prescreen.packing.orders import FileOrderSource, to_record
from prescreen.packing.wms import WmsOrderSource
from prescreen.sync.broker import LocalBroker

TOKEN = "Bearer s3cret"


class Wms:
    """A WMS whose behaviour per tracking number is set by the test; counts every request."""

    def __init__(self) -> None:
        self.behaviour: dict[str, str] = {
            "HANG1": "hang",
            "E500": "500",
            "FLAKY": "flaky",
            "BADJSON": "malformed",
            "WRONG": "wrong",
            "MISSING": "404",
            "SLOW": "slow",
        }
        self.hits: collections.Counter[str] = collections.Counter()
        self.prefetch: list[dict[str, Any]] = []
        self.release = threading.Event()
        wms = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def do_GET(self) -> None:
                if self.headers.get("Authorization") != TOKEN:
                    return self.reply(401, b'{"error":"unauthorized"}')
                if self.path == "/upcoming":
                    return self.reply(200, json.dumps({"orders": wms.prefetch}).encode())
                tracking = self.path.rsplit("/", 1)[-1]
                wms.hits[tracking] += 1
                mode = wms.behaviour.get(tracking, "ok")
                if mode == "hang":
                    wms.release.wait(10)
                elif mode == "slow":
                    time.sleep(0.6)
                elif mode == "500" or (mode == "flaky" and wms.hits[tracking] == 1):
                    return self.reply(500, b"internal error")
                elif mode == "malformed":
                    return self.reply(200, b'{"tracking_number": "' + tracking.encode() + b'", "items": [')
                elif mode == "wrong":
                    return self.reply(200, json.dumps(clean_order("1ZOTHER")).encode())
                elif mode == "404":
                    return self.reply(404, b'{"error":"not found"}')
                return self.reply(200, json.dumps(clean_order(tracking)).encode())

            def reply(self, status: int, body: bytes) -> None:
                try:
                    self.send_response(status)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(body)))
                    self.end_headers()
                    self.wfile.write(body)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the client gave up (read timeout): that is the point of the test

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, args=(0.05,), daemon=True).start()

    def stop(self) -> None:
        self.release.set()
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def wms() -> Iterator[Wms]:
    server = Wms()
    yield server
    server.stop()


@pytest.fixture
def source(wms: Wms, tmp_path: Path) -> Callable[..., WmsOrderSource]:
    made: list[WmsOrderSource] = []

    def make(**changes: Any) -> WmsOrderSource:
        settings = {
            "source": "wms",
            "url": wms.url + "/orders/{tracking}",
            "auth_token": TOKEN,
            "read_timeout_ms": 1000,
            "retries": 2,
            "backoff_ms": 10,
            **changes,
        }
        made.append(WmsOrderSource(cfg.OrdersConfig(**settings), tmp_path / "cache.db"))
        return made[-1]

    yield make  # type: ignore[misc]
    for each in made:
        each.close()


def reason_of(source: WmsOrderSource, key: str) -> tuple[str, str]:
    with pytest.raises(OrderError) as caught:
        source.lookup(key)
    return caught.value.reason, str(caught.value)


def test_an_order_is_fetched_once_then_served_from_the_cache(source: Any, wms: Wms) -> None:
    orders = source()
    assert orders.lookup(TRACKING)["tracking_number"] == TRACKING
    assert orders.lookup(TRACKING)["items"][0]["hts_code"] == "8518300000"
    assert wms.hits[TRACKING] == 1


def test_a_hanging_wms_costs_the_operator_only_the_budget(source: Any) -> None:
    orders = source(budget_ms=300)
    started = time.monotonic()
    reason, message = reason_of(orders, "HANG1")
    waited = time.monotonic() - started
    assert reason == "ORDER_UNAVAILABLE"
    assert "within 300 ms" in message
    assert waited < orders.config.read_timeout_ms / 1000  # answered before the WMS's own timeout


def test_http_500_is_retried_then_reported(source: Any, wms: Wms) -> None:
    reason, message = reason_of(source(budget_ms=5000), "E500")
    assert reason == "ORDER_UNAVAILABLE"
    assert "HTTP 500" in message
    assert "3 attempt" in message
    assert wms.hits["E500"] == 3


def test_one_500_then_success_is_retried_to_success(source: Any, wms: Wms) -> None:
    assert source(budget_ms=5000).lookup("FLAKY")["tracking_number"] == "FLAKY"
    assert wms.hits["FLAKY"] == 2


@pytest.mark.parametrize(
    ("key", "reason", "words"),
    [
        ("BADJSON", "ORDER_MALFORMED", "malformed JSON"),
        ("WRONG", "ORDER_MISMATCH", "order for 1ZOTHER"),
        ("MISSING", "ORDER_NOT_FOUND", "HTTP 404"),
    ],
)
def test_bad_answers_get_their_own_reason(source: Any, key: str, reason: str, words: str) -> None:
    got_reason, message = reason_of(source(budget_ms=5000), key)
    assert got_reason == reason
    assert words in message


def test_a_wrong_token_is_reported_as_such(source: Any) -> None:
    reason, message = reason_of(source(budget_ms=5000, auth_token="Bearer wrong"), TRACKING)
    assert reason == "ORDER_UNAVAILABLE"
    assert "HTTP 401" in message
    assert "s3cret" not in message


def test_a_wms_that_is_down_is_unavailable(tmp_path: Path) -> None:
    config = cfg.OrdersConfig(
        source="wms", url="http://127.0.0.1:9/orders/{tracking}", retries=1, backoff_ms=1, budget_ms=5000
    )
    orders = WmsOrderSource(config, tmp_path / "cache.db")
    try:
        reason, message = reason_of(orders, TRACKING)
    finally:
        orders.close()
    assert reason == "ORDER_UNAVAILABLE"
    assert "unreachable" in message


@pytest.mark.slow
def test_a_late_order_is_handed_over_once_it_arrives(source: Any, wait_until: Any) -> None:
    orders = source(budget_ms=100)
    assert reason_of(orders, "SLOW")[0] == "ORDER_UNAVAILABLE"
    late: list[tuple[str, Any]] = []
    assert wait_until(lambda: bool(late.extend(orders.late_orders()) or late), timeout=5)
    assert [k for k, _ in late] == ["SLOW"]
    assert orders.lookup("SLOW")["tracking_number"] == "SLOW"  # now cached


def test_prefetch_fills_the_cache_before_the_scan(source: Any, wms: Wms) -> None:
    wms.prefetch = [clean_order("1ZPRE1"), clean_order("1ZPRE2"), {"no": "key"}]
    orders = source(prefetch_url=wms.url + "/upcoming", prefetch_every_s=3600)
    assert orders.prefetch() == 2
    assert orders.lookup("1ZPRE2")["tracking_number"] == "1ZPRE2"
    assert wms.hits["1ZPRE2"] == 0


@pytest.mark.slow
def test_the_cache_survives_a_restart(source: Any, wms: Wms) -> None:
    source().lookup(TRACKING)
    wms.behaviour[TRACKING] = "500"
    assert source().lookup(TRACKING)["tracking_number"] == TRACKING


@pytest.mark.slow
def test_a_slow_wms_gives_review_then_a_completed_record(
    wms: Wms, tmp_path: Path, broker: LocalBroker
) -> None:
    """The verdict comes within the budget; the completed record supersedes it when the order lands."""
    wms.behaviour[TRACKING] = "slow"
    config = cfg.Config()
    config = cfg.replace(config, "scale", url="sim://mt-sics", poll_interval_ms=10, settle_ms=20)
    config = cfg.replace(config, "scanner", url="sim://scanner")
    config = cfg.replace(
        config,
        "orders",
        source="wms",
        url=wms.url + "/orders/{tracking}",
        auth_token=TOKEN,
        budget_ms=200,
    )
    config = cfg.replace(config, "outbox", path=str(tmp_path / "outbox.db"))
    config = cfg.replace(config, "sync", host=broker.host, port=broker.port)
    config = cfg.replace(config, "http", port=0)
    agent = Agent(config).start()
    events: queue.Queue[StationEvent] = queue.Queue()
    agent.station.listeners.append(events.put)
    try:
        agent.scale.simulator.place("0.5")  # type: ignore[attr-defined]
        agent.scanner.simulator.scan(TRACKING)  # type: ignore[attr-defined]
        first = events.get(timeout=10)
        update = events.get(timeout=10)
    finally:
        agent.stop()
    assert first.record is not None
    assert update.record is not None
    assert first.record["screening"]["verdict"] == "REVIEW"
    assert [r["code"] for r in first.record["screening"]["reasons"]] == ["ORDER_UNAVAILABLE"]
    assert first.record["order"] is None
    assert update.kind == "verdict_update"
    assert update.record["supersedes"] == {"record_id": first.record["record_id"], "reason": "order_arrived"}
    assert update.record["order"]["items"][0]["hts_code"] == "8518300000"
    assert update.record["screening"]["verdict"] == "CLEAR"
    assert update.record["seq"] == first.record["seq"] + 1
    validate(first.record)
    validate(update.record)


def test_a_new_csv_export_is_picked_up_without_a_restart(tmp_path: Path) -> None:
    export = tmp_path / "orders.csv"
    export.write_text("tracking_number,description,hts_code\n1ZA,Cotton t-shirt,6109100012\n")
    orders = FileOrderSource(export, check_every_s=0)
    assert orders.lookup("1ZA")["items"][0]["description"] == "Cotton t-shirt"
    with pytest.raises(OrderError):
        orders.lookup("1ZB")
    export.write_text(
        "tracking_number,description,hts_code\n1ZA,Cotton t-shirt,6109100012\n1ZB,Steel spoon,8215990500\n"
    )
    os.utime(export, (time.time() + 5, time.time() + 5))  # a later mtime, whatever the fs resolution
    assert orders.lookup("1ZB")["items"][0]["hts_code"] == "8215990500"


def test_a_half_written_export_keeps_the_previous_orders(tmp_path: Path) -> None:
    export = tmp_path / "orders.ndjson"
    export.write_text(json.dumps(clean_order("1ZA")) + "\n")
    orders = FileOrderSource(export, check_every_s=0)
    export.write_text(json.dumps(clean_order("1ZB")) + "\n{broken")
    os.utime(export, (time.time() + 5, time.time() + 5))
    assert orders.lookup("1ZA")["tracking_number"] == "1ZA"


def test_a_csv_export_carries_the_entry_grade_columns(tmp_path: Path) -> None:
    export = tmp_path / "orders.csv"
    columns = {
        "tracking_number": "1ZA",
        "description": "Wooden puzzle",
        "hts_code": "9503006000",
        "chapter99": "9903.88.15 9903.01.25",
        "pga_flags": "CPSC",
        "cpsc_certificate": "CPC-1",
        "manufacturer_name": "Hanoi Wooden Toys",
        "manufacturer_line1": "45 Lang Ha St",
        "manufacturer_city": "Hanoi",
        "origin_country": "VN",
        "importer_of_record_name": "Demo Imports LLC",
        "importer_of_record_id": "98-7654321",
        "importer_of_record_id_type": "ein",
        "seller_name": "Toy Co",
        "seller_eori": "NL823456789",
        "carrier_account": "UPS-1",
        "master_bill": "176-12345675",
    }
    export.write_text(",".join(columns) + "\n" + ",".join(columns.values()) + "\n")
    order = FileOrderSource(export, check_every_s=0).lookup("1ZA")
    record = to_record(order)
    item = record["items"][0]
    assert item["chapter99"] == ["99038815", "99030125"]
    assert item["pga_flags"] == ["CPSC"]
    assert item["cpsc_certificate"] == "CPC-1"
    assert item["manufacturer"]["name"] == "Hanoi Wooden Toys"
    assert item["manufacturer"]["address"]["city"] == "Hanoi"
    assert record["importer_of_record"]["id_type"] == "ein"
    assert record["seller"]["eori"] == "NL823456789"
    assert (order["carrier_account"], order["master_bill"]) == ("UPS-1", "176-12345675")


def test_a_fetch_done_before_its_callback_is_added_does_not_deadlock(tmp_path: Path) -> None:
    """Found by a full suite run on a loaded machine: a fetch that failed at once (connection
    refused) ran its done-callback inside the lock the callback takes, and the station hung."""
    from concurrent.futures import Future

    orders = WmsOrderSource(
        cfg.OrdersConfig(source="wms", url="http://127.0.0.1:9/{tracking}"), tmp_path / "c.db"
    )
    done: Future[dict] = Future()
    done.set_exception(OrderError("refused", reason="ORDER_UNAVAILABLE"))
    orders._pool.submit = lambda *args, **kwargs: done  # type: ignore[method-assign]
    result: list[str] = []
    worker = threading.Thread(target=lambda: result.append(reason_of(orders, TRACKING)[0]), daemon=True)
    worker.start()
    worker.join(timeout=10)
    orders.close()
    assert result == ["ORDER_UNAVAILABLE"], "the lookup hung"
