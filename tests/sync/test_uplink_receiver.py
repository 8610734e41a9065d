"""Uplink and receiver against a real mosquitto: acks, broker outages, duplicates, bad records."""

from __future__ import annotations

import json
import time
import zlib
from collections.abc import Callable
from pathlib import Path

import pytest
from prescreen.core.wire import MAX_BATCH_BYTES, encode_batch, inflate
from prescreen.ops.config import StationConfig, SyncConfig
from prescreen.packing.outbox import Outbox
from prescreen.sync.broker import LocalBroker, free_port
from prescreen.sync.mqtt import MqttConnection
from prescreen.sync.receiver import Receiver
from prescreen.sync.topics import receiver_presence_topic
from prescreen.sync.uplink import Uplink
from record_fixtures import record

STATION = StationConfig(device_id="dev-1", site_id="site-a")


def fill(path: Path, count: int) -> Outbox:
    outbox = Outbox(path)
    for _ in range(count):
        outbox.append(record)
    return outbox


@pytest.mark.slow
def test_records_leave_pending_only_after_the_receivers_ack(
    tmp_path: Path, broker: LocalBroker, wait_until: Callable[..., bool]
) -> None:
    outbox = fill(tmp_path / "outbox.db", 250)
    sync = SyncConfig(host=broker.host, port=broker.port, topic_prefix="t1/v1", batch_size=100)
    uplink = Uplink(Outbox(outbox.path), sync, STATION).start()
    try:
        # No receiver yet: the broker takes the publishes (PUBACK) but nothing is acked.
        assert uplink.mqtt.wait_connected(5)
        time.sleep(0.5)
        assert uplink.batches_sent > 0
        assert outbox.counts() == {"pending": 250}
        receiver = Receiver(tmp_path / "rx.db", host=broker.host, port=broker.port, prefix="t1/v1").start()
        try:
            # Batches sent before the receiver subscribed are lost by the broker; the uplink
            # re-sends them when their ack is overdue.
            uplink.sync = SyncConfig(**{**sync.__dict__, "ack_timeout_s": 1.0})
            assert wait_until(lambda: outbox.counts() == {"acked": 250}, 15)
            assert receiver.count() == 250
        finally:
            receiver.stop()
    finally:
        uplink.stop()


@pytest.mark.slow
def test_broker_down_then_up_drains_everything(tmp_path: Path, wait_until: Callable[..., bool]) -> None:
    port = free_port()
    outbox = fill(tmp_path / "outbox.db", 120)
    sync = SyncConfig(host="127.0.0.1", port=port, topic_prefix="t2/v1", batch_size=50)
    uplink = Uplink(Outbox(outbox.path), sync, STATION).start()  # the broker is not there yet
    try:
        time.sleep(0.5)
        assert not uplink.mqtt.connected.is_set()
        assert outbox.counts() == {"pending": 120}
        broker = LocalBroker.start(port=port)
        try:
            receiver = Receiver(tmp_path / "rx.db", port=port, prefix="t2/v1").start()
            assert receiver.mqtt.wait_connected(5)
            assert wait_until(lambda: outbox.counts() == {"acked": 120}, 15)
            assert receiver.count() == 120
            # At least once: batches that reached the receiver while its presence made the station
            # re-send its window arrive twice, and are deduplicated; never more than were re-sent.
            assert receiver.duplicates <= uplink.copies_sent_again
            receiver.stop()
        finally:
            broker.stop()
    finally:
        uplink.stop()


def test_receiver_stores_a_duplicate_batch_once_and_acks_it_again(
    tmp_path: Path, broker: LocalBroker
) -> None:
    receiver = Receiver(tmp_path / "rx.db", host=broker.host, port=broker.port, prefix="t3/v1")
    bodies = [json.dumps(record(seq)) for seq in (1, 2, 3)]
    payload = encode_batch("b1", "dev-1", bodies)
    receiver.mqtt.start()
    try:
        assert receiver.mqtt.wait_connected(5)
        receiver.handle("t3/v1/site-a/dev-1/records", payload)
        receiver.handle("t3/v1/site-a/dev-1/records", payload)
        assert receiver.count() == 3
        assert (receiver.stored, receiver.duplicates) == (3, 3)
    finally:
        receiver.stop()


def test_receiver_rejects_tampered_and_misaddressed_records(tmp_path: Path, broker: LocalBroker) -> None:
    receiver = Receiver(tmp_path / "rx.db", host=broker.host, port=broker.port, prefix="t4/v1")
    broken = record(1)
    broken["screening"]["verdict"] = "MAYBE"
    other_device = record(2, device="dev-2")
    good = record(3)
    receiver.mqtt.start()
    try:
        assert receiver.mqtt.wait_connected(5)
        receiver.handle(
            "t4/v1/site-a/dev-1/records",
            encode_batch("b", "dev-1", [json.dumps(r) for r in (broken, other_device, good)]),
        )
        receiver.handle("t4/v1/site-a/dev-1/records", b"not json at all")
        assert receiver.count() == 1
        assert receiver.rejected == 3
    finally:
        receiver.stop()


def test_rejected_records_are_not_resent_forever(
    tmp_path: Path, broker: LocalBroker, wait_until: Callable[..., bool]
) -> None:
    outbox = Outbox(tmp_path / "outbox.db")
    outbox.append(record)
    bad = record(2)
    bad["screening"]["verdict"] = "MAYBE"  # written by a buggy older agent, say
    outbox.append(lambda seq: {**bad, "seq": seq})
    sync = SyncConfig(host=broker.host, port=broker.port, topic_prefix="t5/v1")
    receiver = Receiver(tmp_path / "rx.db", host=broker.host, port=broker.port, prefix="t5/v1").start()
    assert receiver.mqtt.wait_connected(5)
    uplink = Uplink(Outbox(outbox.path), sync, STATION).start()
    try:
        assert wait_until(lambda: outbox.counts() == {"acked": 1, "rejected": 1}, 10)
    finally:
        uplink.stop()
        receiver.stop()


@pytest.mark.slow
def test_compressed_batches_drain_and_store_like_plain_ones(
    tmp_path: Path, broker: LocalBroker, wait_until: Callable[..., bool]
) -> None:
    outbox = fill(tmp_path / "outbox.db", 300)
    sync = SyncConfig(
        host=broker.host, port=broker.port, topic_prefix="tz/v1", compress=True, compress_min_bytes=0
    )
    receiver = Receiver(tmp_path / "rx.db", host=broker.host, port=broker.port, prefix="tz/v1").start()
    assert receiver.mqtt.subscribed.wait(5)
    uplink = Uplink(Outbox(outbox.path), sync, STATION).start()
    try:
        assert wait_until(lambda: outbox.counts() == {"acked": 300}, 15)
        assert receiver.count() == 300
    finally:
        uplink.stop()
        receiver.stop()


@pytest.mark.slow
def test_inflate_refuses_garbage_and_bombs() -> None:
    assert inflate(b'{"records": []}') == b'{"records": []}'
    assert inflate(zlib.compress(b'{"a": 1}')) == b'{"a": 1}'
    with pytest.raises(ValueError, match="neither JSON nor a zlib batch"):
        inflate(b"\x00\x01garbage")
    with pytest.raises(ValueError, match="inflates beyond"):
        inflate(zlib.compress(b"{" + b" " * (MAX_BATCH_BYTES + 10), 9))


def test_a_receiver_coming_back_gets_what_was_sent_while_it_was_away_at_once(
    tmp_path: Path, broker: LocalBroker, wait_until: Callable[..., bool]
) -> None:
    """Batches published while no receiver is subscribed are dropped by the broker; the station
    re-sends them when a receiver announces itself, not after its (here 60 s) ack timeout."""
    outbox = fill(tmp_path / "outbox.db", 50)
    sync = SyncConfig(host=broker.host, port=broker.port, topic_prefix="tp/v1", ack_timeout_s=60)
    uplink = Uplink(Outbox(outbox.path), sync, STATION).start()
    try:
        assert uplink.mqtt.wait_connected(5)
        assert wait_until(lambda: uplink.batches_sent > 0, 5)  # sent into the void
        receiver = Receiver(tmp_path / "rx.db", host=broker.host, port=broker.port, prefix="tp/v1").start()
        try:
            assert wait_until(lambda: outbox.counts() == {"acked": 50}, 10)
            assert receiver.count() == 50
        finally:
            receiver.stop()
    finally:
        uplink.stop()


def test_an_upgraded_v1_outbox_delivers_its_pending_v1_records_beside_new_v2_ones(
    tmp_path: Path, broker: LocalBroker, wait_until: Callable[..., bool]
) -> None:
    """The upgrade loses nothing: records committed by the v1 agent but not yet acked go out after
    the upgrade, byte for byte, and the upgraded receiver stores them as v1 beside new v2 ones."""
    import shutil

    from prescreen.sync.store import Filters

    path = tmp_path / "outbox.db"
    shutil.copy(Path(__file__).parents[1] / "fixtures" / "outbox-v1.db", path)
    outbox = Outbox(path)
    assert outbox.counts() == {"acked": 3, "pending": 5}
    v1_bodies = {record_id: body.decode() for _, record_id, body in outbox.pending(10)}
    station = StationConfig(device_id="station-07", site_id="site-01")
    new = outbox.append(lambda seq: {**record(seq, "station-07"), "site_id": "site-01"})
    sync = SyncConfig(host=broker.host, port=broker.port, topic_prefix="t9/v1", ack_timeout_s=1.0)
    receiver = Receiver(tmp_path / "rx.db", host=broker.host, port=broker.port, prefix="t9/v1").start()
    uplink = Uplink(Outbox(outbox.path), sync, station).start()
    try:
        assert wait_until(lambda: outbox.counts() == {"acked": 9}, 15)
        stored = {row["record_id"]: row for row in receiver.store.query(Filters())}
        assert {k: stored[k]["body"] for k in v1_bodies} == v1_bodies
        assert {stored[k]["record_schema"] for k in v1_bodies} == {"prescreen.record/v1"}
        assert stored[new["record_id"]]["record_schema"] == "prescreen.record/v2"
        assert receiver.counts["rejected"] == 0
    finally:
        uplink.stop()
        receiver.stop()


@pytest.mark.slow
def test_a_flood_of_presence_messages_makes_one_resend_not_one_each(
    tmp_path: Path, broker: LocalBroker, wait_until: Callable[..., bool]
) -> None:
    """Presence is unsigned: 50 of them in a burst (anyone who may publish on the topic) re-send
    the station's window once, not 50 times (review #8)."""
    outbox = fill(tmp_path / "outbox.db", 40)
    sync = SyncConfig(
        host=broker.host, port=broker.port, topic_prefix="pf/v1", ack_timeout_s=60, batch_size=10
    )
    uplink = Uplink(Outbox(outbox.path), sync, STATION).start()
    flood = MqttConnection(client_id="flood", host=broker.host, port=broker.port).start()
    try:
        assert uplink.mqtt.wait_connected(5)
        assert flood.wait_connected(5)
        assert wait_until(lambda: uplink.records_sent == 40, 5)  # no receiver: all in flight
        for n in range(50):
            flood.publish(receiver_presence_topic("pf/v1", f"fake-{n}"), b"{}")
        assert wait_until(lambda: uplink.presence_ignored >= 49, 5)
        time.sleep(0.5)  # let the one re-send go out
        assert uplink.records_resent == 40  # the window once (4 batches of 10), not 50 times
    finally:
        flood.stop()
        uplink.stop()
