"""A cheap batch cannot buy expensive work: the receiver refuses it whole, once, off the network thread.

Probes from the issue against the real receiver on the real broker (default settings: anyone
may publish): a 2 KB zlib batch of a million tiny records, a batch of more bytes than allowed raw
or inflated, and sequence numbers that pass a lax schema (3.0, 2**70).
"""

from __future__ import annotations

import json
import logging
import queue
import threading
import time
import uuid
import zlib
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from prescreen.core.records import dumps
from prescreen.core.wire import MAX_BATCH_BYTES, MAX_RAW_BYTES, encode_batch
from prescreen.sync.broker import LocalBroker
from prescreen.sync.mqtt import MqttConnection
from prescreen.sync.receiver import Receiver
from prescreen.sync.store import open_store
from record_fixtures import record

PREFIX = "rb/v1"
TOPIC = f"{PREFIX}/site-a/dev-1/records"


class Sender:
    """Any client on the open broker: publishes batches as dev-1, hears dev-1's acks."""

    def __init__(self, broker: LocalBroker) -> None:
        self.acks: queue.Queue[dict[str, Any]] = queue.Queue()
        self.mqtt = MqttConnection(
            client_id=f"sender-{uuid.uuid4().hex[:6]}",
            host=broker.host,
            port=broker.port,
            on_message=lambda topic, payload: self.acks.put(json.loads(payload)),
            subscriptions=(f"{PREFIX}/site-a/dev-1/acks",),
        ).start()
        assert self.mqtt.subscribed.wait(10)

    def send(self, payload: bytes) -> None:
        self.mqtt.publish(TOPIC, payload)

    def ack_of(self, batch_id: str) -> dict[str, Any]:
        """The ack of ``batch_id``; every ack before it must belong to no refused batch."""
        while True:
            ack = self.acks.get(timeout=30)
            if ack["batch_id"] == batch_id:
                return ack
            assert ack["batch_id"].startswith("good"), f"a refused batch was acked: {ack['batch_id']}"


@pytest.fixture
def receiver(broker: LocalBroker, tmp_path: Path) -> Iterator[Receiver]:
    started = Receiver(tmp_path / "rx.db", host=broker.host, port=broker.port, prefix=PREFIX).start()
    assert started.mqtt.subscribed.wait(10)
    yield started
    started.stop()


@pytest.fixture
def sender(broker: LocalBroker) -> Iterator[Sender]:
    client = Sender(broker)
    yield client
    client.mqtt.stop()


def _batch(batch_id: str, records: list[Any]) -> bytes:
    return json.dumps({"batch_id": batch_id, "device_id": "dev-1", "records": records}).encode()


def test_a_million_tiny_records_are_refused_whole_with_one_line_and_a_durable_count(
    receiver: Receiver, sender: Sender, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    bomb = b'{"batch_id":"evil","device_id":"dev-1","records":[' + b",".join([b"{}"] * 1_000_000) + b"]}"
    payload = zlib.compress(bomb, 9)
    assert len(payload) < 10_000  # the probe: a few kilobytes on the wire
    with caplog.at_level(logging.INFO, logger="prescreen.receiver"):
        sender.send(payload)
        sender.send(_batch("good-1", [record(1)]))
        ack = sender.ack_of("good-1")
    assert ack["acked"]
    assert not ack["rejected"]
    refused = [r for r in caplog.records if r.getMessage() == "batch rejected"]
    assert len(refused) == 1
    assert "more than 10000" in refused[0].__dict__["reason"]
    assert refused[0].threadName == "receiver-batches"  # not paho's network thread
    assert not [r for r in caplog.records if r.getMessage() == "record rejected"]
    receiver.stop()
    store = open_store(tmp_path / "rx.db")
    try:
        assert store.stats()["rejected_batches"] == 1  # durable: read back from the file
    finally:
        store.close()


@pytest.mark.slow
def test_batches_over_the_byte_limits_are_refused_whole(
    receiver: Receiver, sender: Sender, wait_until: Callable[..., bool]
) -> None:
    huge = _batch("raw", [{"pad": "x" * (MAX_RAW_BYTES + 1)}])
    inflates = zlib.compress(_batch("inflated", [{"pad": " " * MAX_BATCH_BYTES}]), 1)
    assert len(inflates) < MAX_RAW_BYTES
    sender.send(huge)
    sender.send(inflates)
    sender.send(_batch("good-2", [record(2)]))
    assert sender.ack_of("good-2")["acked"]
    assert wait_until(lambda: receiver.counts["rejected_batches"] == 2, 10)


def test_a_sequence_number_must_be_an_integer_in_range(receiver: Receiver, sender: Sender) -> None:
    floating, huge = record(3), record(4)
    floating["seq"] = 3.0
    huge["seq"] = 2**70
    sender.send(_batch("good-3", [floating, huge, record(5)]))
    ack = sender.ack_of("good-3")
    assert len(ack["acked"]) == 1  # the batch is answered, so the station never re-sends it forever
    reasons = {r["record_id"]: r["reason"] for r in ack["rejected"]}
    assert "is not an integer" in reasons[floating["record_id"]]
    assert "invalid" in reasons[huge["record_id"]]


def test_a_record_nested_thousands_deep_is_refused_without_taking_its_group_down(tmp_path: Path) -> None:
    """A 4 KB batch whose record is 2,000 lists deep makes the decoder raise RecursionError: the
    batch is refused whole and counted; the batch waiting beside it in the group is stored."""
    receiver = Receiver(tmp_path / "rx.db", prefix=PREFIX)
    try:
        good = (TOPIC, encode_batch("good-1", "dev-1", [dumps(record(1))]))
        deep = (f"{PREFIX}/site-a/dev-2/records", encode_batch("deep-1", "dev-2", ["[" * 2000 + "]" * 2000]))
        assert receiver.handle_many([good, deep]) == [True, True]
        assert receiver.stored == 1
        assert receiver.store.stats()["rejected_batches"] == 1
    finally:
        receiver.store.close()


def test_a_stopping_receiver_acks_what_it_stores_before_it_disconnects(
    broker: LocalBroker, tmp_path: Path, sender: Sender
) -> None:
    """A batch being stored when the stop comes is acked before the receiver disconnects (it used
    to disconnect first, so the station sent the stored batch again)."""
    receiver = Receiver(tmp_path / "rx.db", host=broker.host, port=broker.port, prefix=PREFIX).start()
    assert receiver.mqtt.subscribed.wait(10)
    storing, go_on = threading.Event(), threading.Event()
    store = receiver._store

    def held(batches: Any) -> None:  # the worker waits here, inside the batch's handling
        storing.set()
        assert go_on.wait(30)
        store(batches)

    receiver._store = held  # type: ignore[method-assign]
    sender.send(encode_batch("good-stop", "dev-1", [dumps(record(1))]))
    assert storing.wait(10)
    stopping = threading.Thread(target=receiver.stop)
    stopping.start()
    time.sleep(0.5)  # the stop is under way (disconnecting first would be done by now)
    go_on.set()
    stopping.join(30)
    assert receiver.stored == 1
    assert sender.ack_of("good-stop")["acked"]
