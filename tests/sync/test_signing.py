"""Device keys and signatures: every record signed at commit, verified by the receiver's trust store."""

from __future__ import annotations

import json
import logging
import os
import stat
from collections.abc import Callable
from pathlib import Path

import pytest
from prescreen.core.errors import ConfigError
from prescreen.core.records import dumps, validate
from prescreen.core.signing import DeviceKey, TrustStore
from prescreen.core.wire import encode_batch
from prescreen.ops.config import StationConfig, SyncConfig
from prescreen.packing.outbox import Outbox
from prescreen.sync.broker import LocalBroker
from prescreen.sync.receiver import Receiver
from prescreen.sync.uplink import Uplink
from record_fixtures import record

STATION = StationConfig(device_id="dev-1", site_id="site-a")


def test_key_is_created_once_with_mode_0600_and_reloads_as_the_same_identity(tmp_path: Path) -> None:
    path = tmp_path / "state" / "device.key"
    first = DeviceKey.load_or_create(path)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    again = DeviceKey.load_or_create(path)
    assert again.key_id == first.key_id
    assert len(first.key_id) == 16


def test_a_key_readable_by_others_is_tightened_and_logged(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "device.key"
    DeviceKey.load_or_create(path)
    os.chmod(path, 0o644)
    with caplog.at_level(logging.WARNING, logger="prescreen.signing"):
        DeviceKey.load_or_create(path)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert "readable by others" in caplog.text


def test_a_corrupt_key_is_an_error_not_silently_a_new_identity(tmp_path: Path) -> None:
    path = tmp_path / "device.key"
    path.write_bytes(b"-----BEGIN PRIVATE KEY-----\ngarbage\n-----END PRIVATE KEY-----\n")
    path.chmod(0o600)
    with pytest.raises(ConfigError, match="cannot load the device signing key"):
        DeviceKey.load_or_create(path)
    assert b"garbage" in path.read_bytes()  # left for IT to look at


def test_outbox_signs_every_record_at_commit_and_the_signature_validates(tmp_path: Path) -> None:
    key = DeviceKey.load_or_create(tmp_path / "device.key")
    outbox = Outbox(tmp_path / "outbox.db", signer=key)
    committed = outbox.append(record)
    stored = outbox.records()[0]
    assert stored == committed
    assert stored["signature"]["key_id"] == key.key_id
    validate(stored)
    trust = TrustStore([key.trust_entry("site-a", "dev-1")])
    assert trust.check(stored) is None


def _kinds(trust: TrustStore, body: dict) -> str | None:
    rejection = trust.check(body)
    return None if rejection is None else rejection.kind


def test_trust_store_tells_unsigned_forged_and_tampered_apart(tmp_path: Path) -> None:
    key = DeviceKey.load_or_create(tmp_path / "a.key")
    stranger = DeviceKey.load_or_create(tmp_path / "b.key")
    other_device = DeviceKey.load_or_create(tmp_path / "c.key")
    trust = TrustStore([key.trust_entry("site-a", "dev-1"), other_device.trust_entry("site-a", "dev-2")])
    assert _kinds(trust, key.sign(record(1))) is None
    assert _kinds(trust, record(2)) == "unsigned"
    assert _kinds(trust, stranger.sign(record(3))) == "forged"  # key not in the trust store
    assert _kinds(trust, other_device.sign(record(4))) == "forged"  # dev-2's key on dev-1's record
    tampered = key.sign(record(5))
    tampered["screening"]["verdict"] = "HOLD"
    assert _kinds(trust, tampered) == "tampered"
    garbled = key.sign(record(6))
    garbled["signature"]["value"] = "A" * 88
    assert _kinds(trust, garbled) == "tampered"


def test_trust_store_file_errors_are_clear(tmp_path: Path) -> None:
    bad = tmp_path / "trust.json"
    bad.write_text(
        '{"keys": [{"key_id": "0011223344556677", "site_id": "s", "device_id": "d", "public_key": "!!"}]}'
    )
    with pytest.raises(ConfigError, match="not a usable trust store"):
        TrustStore.load(bad)
    key = DeviceKey.load_or_create(tmp_path / "k.key")
    entry = key.trust_entry("s", "d") | {"key_id": "ffffffffffffffff"}
    bad.write_text(json.dumps({"keys": [entry]}))
    with pytest.raises(ConfigError, match="does not match its public key"):
        TrustStore.load(bad)


def test_receiver_rejects_unsigned_forged_tampered_and_replayed_records_and_counts_each(
    tmp_path: Path, broker: LocalBroker, caplog: pytest.LogCaptureFixture
) -> None:
    key = DeviceKey.load_or_create(tmp_path / "station.key")
    attacker = DeviceKey.load_or_create(tmp_path / "attacker.key")
    trust = TrustStore([key.trust_entry("site-a", "dev-1")])
    receiver = Receiver(tmp_path / "rx.db", trust=trust, host=broker.host, port=broker.port, prefix="sg/v1")
    good = key.sign(record(1))
    tampered = key.sign(record(2))
    tampered["parcel"]["measured_weight_kg"] = 0.05
    replayed = key.sign(record(1))  # a new record id claiming seq 1 again (cloned or restored outbox)
    batch = [good, record(3), attacker.sign(record(4)), tampered, replayed, good]
    topic = "sg/v1/site-a/dev-1/records"
    receiver.mqtt.start()
    assert receiver.mqtt.wait_connected(5)
    with caplog.at_level(logging.WARNING, logger="prescreen.receiver"):
        receiver.handle(topic, encode_batch("b1", "dev-1", [dumps(r) for r in batch]))
    try:
        assert receiver.count() == 1
        stats = receiver.store.stats()
        assert stats["stored"] == 1
        assert stats["duplicates"] == 1  # the same signed record again is at-least-once, not an attack
        assert {k: stats[f"rejected_{k}"] for k in ("unsigned", "forged", "tampered", "replayed")} == {
            "unsigned": 1,
            "forged": 1,
            "tampered": 1,
            "replayed": 1,
        }
        assert stats["rejected"] == 4
        logged = [r.__dict__.get("why") for r in caplog.records if r.getMessage() == "record rejected"]
        assert sorted(logged) == ["forged", "replayed", "tampered", "unsigned"]
    finally:
        receiver.stop()


def test_signed_records_travel_end_to_end_and_counters_survive_a_receiver_restart(
    tmp_path: Path, broker: LocalBroker, wait_until: Callable[..., bool]
) -> None:
    key = DeviceKey.load_or_create(tmp_path / "device.key")
    outbox = Outbox(tmp_path / "outbox.db", signer=key)
    for _ in range(30):
        outbox.append(record)
    trust = TrustStore([key.trust_entry("site-a", "dev-1")])
    receiver = Receiver(tmp_path / "rx.db", trust=trust, host=broker.host, port=broker.port, prefix="sg2/v1")
    receiver.start()
    assert receiver.mqtt.subscribed.wait(5)
    uplink = Uplink(
        Outbox(outbox.path), SyncConfig(host=broker.host, port=broker.port, topic_prefix="sg2/v1"), STATION
    )
    uplink.start()
    try:
        assert wait_until(lambda: outbox.counts() == {"acked": 30}, 15)
    finally:
        uplink.stop()
        receiver.stop()
    reopened = Receiver(tmp_path / "rx.db", trust=trust, host=broker.host, port=broker.port, prefix="sg2/v1")
    try:
        assert reopened.count() == 30
        assert reopened.store.stats()["stored"] == 30
        assert reopened.store.stats()["rejected"] == 0
    finally:
        reopened.stop()


def test_a_batch_signature_stands_for_its_records_and_a_bad_one_falls_back_to_each_record(
    tmp_path: Path, broker: LocalBroker
) -> None:
    key = DeviceKey.load_or_create(tmp_path / "station.key")
    trust = TrustStore([key.trust_entry("site-a", "dev-1")])
    receiver = Receiver(tmp_path / "rx.db", trust=trust, host=broker.host, port=broker.port, prefix="sg3/v1")
    receiver.mqtt.start()
    assert receiver.mqtt.wait_connected(5)
    topic = "sg3/v1/site-a/dev-1/records"
    try:
        good = [dumps(key.sign(record(seq))) for seq in (1, 2, 3)]
        receiver.handle(topic, encode_batch("b1", "dev-1", good, key))
        assert receiver.batches_verified == 1
        assert receiver.count() == 3
        # One record altered after signing: the batch signature fails, each record is checked,
        # and only the altered one is refused.
        records = [key.sign(record(seq)) for seq in (4, 5, 6)]
        signed = encode_batch("b2", "dev-1", [dumps(r) for r in records], key)
        tampered = signed.replace(b'"measured_weight_kg":0.5', b'"measured_weight_kg":0.1', 1)
        assert tampered != signed
        receiver.handle(topic, tampered)
        assert receiver.batches_verified == 1
        assert receiver.count() == 5
        assert receiver.store.stats()["rejected_tampered"] == 1
        # A batch signed by a key that is not this station's proves nothing: records are checked one by one.
        stranger = DeviceKey.load_or_create(tmp_path / "stranger.key")
        receiver.handle(topic, encode_batch("b3", "dev-1", [dumps(stranger.sign(record(7)))], stranger))
        assert receiver.batches_verified == 1
        assert receiver.store.stats()["rejected_forged"] == 1
        # A station from before the digest signed its joined records themselves: still one check.
        joined = ",".join(dumps(key.sign(record(seq))) for seq in (8, 9)).encode()
        head = {
            "batch_id": "b4",
            "device_id": "dev-1",
            "key_id": key.key_id,
            "signature": key.sign_bytes(joined),
        }
        receiver.handle(topic, json.dumps(head)[:-1].encode() + b',"records":[' + joined + b"]}")
        assert receiver.batches_verified == 2
        assert receiver.count() == 7
    finally:
        receiver.stop()


def test_records_verify_audits_every_stored_signature(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from prescreen.commands.main import main
    from prescreen.sync.store import open_store

    key = DeviceKey.load_or_create(tmp_path / "station.key")
    (tmp_path / "trust.json").write_text(json.dumps({"keys": [key.trust_entry("site-a", "dev-1")]}))
    store = open_store(tmp_path / "rx.db")
    good, bad = key.sign(record(1)), key.sign(record(2))
    bad["seq"] = 3  # changed after signing: a store edited behind the receiver's back
    with store.transaction() as cur:
        for body in (good, bad):
            row = (
                body["record_id"],
                "dev-1",
                "site-a",
                body["seq"],
                "verdict",
                "CLEAR",
                None,
                "t",
                "t",
                dumps(body),
                body["schema"],
            )
            store.insert_many(cur, [row])
    store.close()
    args = ["records", "verify", "--db", str(tmp_path / "rx.db"), "--trust", str(tmp_path / "trust.json")]
    assert main(args) == 1
    out = capsys.readouterr().out
    assert f"{bad['record_id']} site-a/dev-1 seq 3: tampered" in out
    assert "2 records checked, 1 failed" in out
