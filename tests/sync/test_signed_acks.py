"""A station takes an ack only from a receiver key it trusts, for a batch it sent, for its records.

The probe from the issue on the real broker with default settings (anonymous, no TLS, no ACL): a
client joins the receivers' shared subscription and acks (or rejects) every batch it gets.
"""

from __future__ import annotations

import json
import threading
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from prescreen.core.signing import DeviceKey
from prescreen.ops.config import StationConfig, SyncConfig
from prescreen.packing.outbox import Outbox
from prescreen.sync.broker import LocalBroker
from prescreen.sync.mqtt import MqttConnection
from prescreen.sync.receiver import Receiver
from prescreen.sync.topics import acks_topic, records_subscription
from prescreen.sync.uplink import Uplink
from record_fixtures import record

STATION = StationConfig(device_id="dev-1", site_id="site-a")
PREFIX = "prescreen/v1"


class ShareGroupAcker:
    """Joins ``$share/receivers/...`` like a receiver and answers every batch it gets with ``answer``."""

    def __init__(self, broker: LocalBroker, answer: Callable[[dict[str, Any]], list[dict[str, Any]]]) -> None:
        self.batches: list[dict[str, Any]] = []
        self.answer = answer
        self.topic = acks_topic(PREFIX, STATION.site_id, STATION.device_id)
        self._lock = threading.Lock()
        self.mqtt = MqttConnection(
            client_id=f"impostor-{uuid.uuid4().hex[:6]}",
            host=broker.host,
            port=broker.port,
            on_message=self._on_batch,
            subscriptions=(records_subscription(PREFIX),),
        ).start()
        assert self.mqtt.subscribed.wait(10)

    def _on_batch(self, topic: str, payload: bytes) -> None:
        batch = json.loads(payload)
        with self._lock:
            self.batches.append(batch)
        for ack in self.answer(batch):
            self.mqtt.publish(self.topic, json.dumps(ack).encode())

    def stop(self) -> None:
        self.mqtt.stop()


def _ack_all(batch: dict[str, Any]) -> dict[str, Any]:
    acked = [r["record_id"] for r in batch["records"]]
    return {"batch_id": batch["batch_id"], "acked": acked, "rejected": []}


def _reject_all(batch: dict[str, Any]) -> dict[str, Any]:
    rejected = [{"record_id": r["record_id"], "reason": "forged: no"} for r in batch["records"]]
    return {"batch_id": batch["batch_id"], "acked": [], "rejected": rejected}


@pytest.fixture
def keys(tmp_path: Path) -> tuple[DeviceKey, DeviceKey]:
    """(the genuine receiver's ack key, an impostor's key)."""
    return (DeviceKey.load_or_create(tmp_path / "receiver.key"), DeviceKey.load_or_create(tmp_path / "m.key"))


@pytest.fixture
def uplink(broker: LocalBroker, tmp_path: Path, keys: tuple[DeviceKey, DeviceKey]) -> Iterator[Uplink]:
    outbox = Outbox(tmp_path / "outbox.db")
    outbox.append_many([record] * 10)
    outbox.close()
    sync = SyncConfig(
        host=broker.host,
        port=broker.port,
        batch_size=2,
        batch_age_ms=0,
        ack_timeout_s=0.5,
        receiver_keys=(keys[0].public_b64,),
    )
    started = Uplink(Outbox(tmp_path / "outbox.db"), sync, STATION).start()
    yield started
    started.stop()


@pytest.mark.slow
def test_forged_acks_from_the_share_group_mark_nothing_and_the_genuine_receiver_gets_everything(
    broker: LocalBroker,
    tmp_path: Path,
    uplink: Uplink,
    keys: tuple[DeviceKey, DeviceKey],
    wait_until: Callable[..., bool],
) -> None:
    receiver_key, mallory = keys

    def forge(batch: dict[str, Any]) -> list[dict[str, Any]]:
        foreign = {**_ack_all(batch), "acked": [uuid.uuid4().hex]}  # ids of no batch of ours
        return [
            _ack_all(batch),  # unsigned
            _reject_all(batch),  # unsigned rejection
            mallory.sign(_ack_all(batch)),  # signed by a key the station does not trust
            {**receiver_key.sign(_reject_all(batch)), "rejected": []},  # changed after signing
            receiver_key.sign({**_ack_all(batch), "batch_id": uuid.uuid4().hex}),  # a batch never sent
            receiver_key.sign(foreign),  # the genuine key, but naming records not in the batch
        ]

    impostor = ShareGroupAcker(broker, forge)
    try:
        assert wait_until(lambda: sum(uplink.acks_refused.values()) >= 30, 15), uplink.acks_refused
        assert uplink.outbox.counts() == {"pending": 10}  # nothing marked acked nor rejected
        kinds = {"unsigned", "forged", "tampered", "unknown_batch", "foreign_records"}
        assert set(uplink.acks_refused) == kinds
        receiver = Receiver(tmp_path / "rx.db", host=broker.host, port=broker.port, signer=receiver_key)
        receiver.start()
        try:
            # The impostor still takes its share of batches; the station re-sends what it does not
            # get a genuine ack for, so every record ends up stored, and only stored records acked.
            assert wait_until(lambda: uplink.outbox.counts() == {"acked": 10}, 30), uplink.outbox.counts()
            assert receiver.count() == 10
        finally:
            receiver.stop()
        assert impostor.batches, "the impostor got no batch: the probe did not run"
    finally:
        impostor.stop()


def test_genuine_rejections_still_mark_records_rejected(
    broker: LocalBroker, uplink: Uplink, keys: tuple[DeviceKey, DeviceKey], wait_until: Callable[..., bool]
) -> None:
    receiver_key, _ = keys
    impostor = ShareGroupAcker(broker, lambda batch: [receiver_key.sign(_reject_all(batch))])
    try:
        assert wait_until(lambda: uplink.outbox.counts() == {"rejected": 10}, 15), uplink.outbox.counts()
    finally:
        impostor.stop()
