"""The wire format, both ends: a batch keeps each record's exact bytes and its one signature, an ack
is signed over its canonical JSON, and what msgspec refuses is still read (and refused by the schema)."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
from pathlib import Path

import pytest
from prescreen.core import wire
from prescreen.core.records import dumps
from prescreen.core.signing import DeviceKey, KeyRing, TrustStore
from record_fixtures import record


@pytest.fixture
def key(tmp_path: Path) -> DeviceKey:
    return DeviceKey.load_or_create(tmp_path / "device.key")


def test_batch_keeps_each_record_exactly_and_its_signature_covers_them(key: DeviceKey) -> None:
    bodies = [dumps(key.sign(record(seq))) for seq in range(1, 6)]
    bodies[2] = bodies[2].replace('"carrier":"ups"', '"carrier":"ups" ')  # odd spacing stays as sent
    batch = wire.decode_batch(wire.encode_batch("b1", "dev-1", bodies, key))
    assert batch.batch_id == "b1"
    assert batch.key_id == key.key_id
    assert [t.decode() for t in batch.texts] == bodies
    assert batch.signed_texts
    trust = TrustStore([key.trust_entry("site-a", "dev-1")])
    assert batch.signed is not None
    assert isinstance(batch.signature, str)
    # The signature is over the SHA-256 digest of the records as joined, not over the records.
    assert batch.digest == wire.BATCH_DIGEST == "sha256"
    assert batch.signed_message() == hashlib.sha256(batch.signed).digest()
    assert trust.verify_batch(
        key.key_id, "site-a", "dev-1", hashlib.sha256(batch.signed).digest(), batch.signature
    )
    assert not trust.verify_batch(key.key_id, "site-a", "dev-1", batch.signed, batch.signature)
    altered = hashlib.sha256(batch.signed + b" ").digest()
    assert not trust.verify_batch(key.key_id, "site-a", "dev-1", altered, batch.signature)


def _batch_of_a_station_before_the_digest(key: DeviceKey, bodies: list[str], digest: str | None) -> bytes:
    """A batch whose signature is over the joined records themselves (``digest`` names any)."""
    joined = ",".join(bodies).encode()
    head = {
        "batch_id": "old",
        "device_id": "dev-1",
        "key_id": key.key_id,
        "signature": key.sign_bytes(joined),
    }
    if digest is not None:
        head["digest"] = digest
    return json.dumps(head)[:-1].encode() + b',"records":[' + joined + b"]}"


def test_records_joined_as_stored_bytes_make_the_same_message(key: DeviceKey) -> None:
    """The station joins its outbox's UTF-8 bytes (encode_joined); the message is the one
    encode_batch makes of the same records as text, signature included (Ed25519 is deterministic)."""
    bodies = [dumps(key.sign(record(seq))) for seq in range(1, 4)]
    bodies.append(bodies[0].replace('"carrier":"ups"', '"carrier":"ups ñ"'))  # not ASCII
    joined = b",".join(body.encode("utf-8") for body in bodies)
    assert wire.encode_joined("b1", "dev-1", joined, key) == wire.encode_batch("b1", "dev-1", bodies, key)
    assert wire.encode_joined("b2", "dev-1", joined) == wire.encode_batch("b2", "dev-1", bodies)


def test_a_batch_signed_over_its_records_is_checked_over_them_and_an_unknown_digest_over_nothing(
    key: DeviceKey,
) -> None:
    bodies = [dumps(key.sign(record(seq))) for seq in range(1, 4)]
    old = wire.decode_batch(_batch_of_a_station_before_the_digest(key, bodies, None))
    assert old.digest is None
    assert old.signed_message() == old.signed
    trust = TrustStore([key.trust_entry("site-a", "dev-1")])
    message = old.signed_message()
    assert message is not None
    assert isinstance(old.signature, str)
    assert trust.verify_batch(key.key_id, "site-a", "dev-1", message, old.signature)
    unknown = wire.decode_batch(_batch_of_a_station_before_the_digest(key, bodies, "md5"))
    assert unknown.signed_message() is None  # the receiver then checks each record's own signature


def test_a_batch_of_the_version_before_signed_over_the_sha512_digest_is_still_checked(key: DeviceKey) -> None:
    bodies = [dumps(key.sign(record(seq))) for seq in range(1, 4)]
    joined = ",".join(bodies).encode()
    head = {"batch_id": "b", "device_id": "dev-1", "key_id": key.key_id, "digest": "sha512"}
    head["signature"] = key.sign_bytes(hashlib.sha512(joined).digest())
    batch = wire.decode_batch(json.dumps(head)[:-1].encode() + b',"records":[' + joined + b"]}")
    assert batch.signed_message() == hashlib.sha512(joined).digest()
    message = batch.signed_message()
    assert message is not None
    assert isinstance(batch.signature, str)
    trust = TrustStore([key.trust_entry("site-a", "dev-1")])
    assert trust.verify_batch(key.key_id, "site-a", "dev-1", message, batch.signature)
    # the same signature named as SHA-256 covers nothing: the digest is part of what is checked
    other = dataclasses.replace(batch, digest="sha256").signed_message()
    assert other is not None
    assert not trust.verify_batch(key.key_id, "site-a", "dev-1", other, batch.signature)
    assert wire.Batch(None, None, None, [], joined, ["sha256"]).signed_message() is None  # not a name


def test_records_outside_the_signed_layout_are_not_taken_as_signed(key: DeviceKey) -> None:
    body = dumps(key.sign(record(1)))
    signed = wire.encode_batch("b1", "dev-1", [body], key)
    # a second records list after the signed one: the texts are not the signed bytes any more
    forged = signed[:-1] + b',"records":[' + dumps(record(2)).encode() + b"]}"
    batch = wire.decode_batch(forged)
    assert not batch.signed_texts


def test_the_slow_path_reads_the_same_records_and_stops_at_the_limit(
    key: DeviceKey, monkeypatch: pytest.MonkeyPatch
) -> None:
    bodies = [dumps(key.sign(record(seq))) for seq in range(1, 4)]
    payload = wire.encode_batch("b1", "dev-1", bodies, key)
    fast = wire.decode_batch(payload)
    monkeypatch.setattr(wire, "FAST_PATH_COMMAS", 1)
    slow = wire.decode_batch(payload)
    assert (slow.batch_id, slow.key_id, slow.signature, slow.texts) == (
        fast.batch_id,
        fast.key_id,
        fast.signature,
        fast.texts,
    )
    monkeypatch.setattr(wire, "MAX_BATCH_RECORDS", 2)
    with pytest.raises(wire.BatchRefused, match="more than 2 records"):
        wire.decode_batch(payload)


def test_too_many_records_are_refused_before_any_is_read() -> None:
    payload = b'{"batch_id":"x","device_id":"d","records":[' + b",".join([b"{}"] * 10_001) + b"]}"
    with pytest.raises(wire.BatchRefused, match="more than 10000 records"):
        wire.decode_batch(payload)


@pytest.mark.parametrize(
    "payload",
    [b'{"batch_id":"x"}', b'{"records":{}}', b"[1,2]", b'{"records":[1,]}', b"\x00\x01garbage"],
)
def test_what_is_not_a_batch_is_a_value_error(payload: bytes) -> None:
    with pytest.raises(ValueError, match=r"not a batch|neither JSON nor a zlib batch"):
        wire.decode_batch(payload)


def test_values_msgspec_refuses_are_read_by_the_standard_library() -> None:
    assert wire.decode_record(b'{"seq":1180591620717411303424}') == {"seq": 2**70}
    assert math.isnan(wire.decode_record(b'{"score":NaN}')["score"])
    assert wire.decode_record(b'{"seq":3.0,"a":"\\u00e9"}') == json.loads('{"seq":3.0,"a":"\\u00e9"}')
    with pytest.raises(ValueError, match="Expecting value"):
        wire.decode_record(b'{"seq":')


def test_an_ack_is_signed_as_a_document_and_read_back(key: DeviceKey) -> None:
    rejected = [{"record_id": "r3", "reason": "invalid: seq ünicode"}]
    payload = wire.encode_ack("b1", ["r1", "r2"], rejected, key)
    document = json.loads(payload)
    # the same signature a signed document carries (serialised once, the signature sorted last)
    assert document == key.sign({"batch_id": "b1", "acked": ["r1", "r2"], "rejected": rejected})
    assert KeyRing([key.public_b64]).check(document) is None
    ack = wire.decode_ack(payload)
    assert (ack.batch_id, ack.acked, ack.rejected) == ("b1", ["r1", "r2"], ["r3"])
    tampered = payload.replace(b'"r2"', b'"r9"')
    assert KeyRing([key.public_b64]).check(wire.decode_ack(tampered).document) is not None
    assert json.loads(wire.encode_ack("b2", [], [])) == {"acked": [], "batch_id": "b2", "rejected": []}


@pytest.mark.parametrize("payload", [b"not json", b"[]", b'{"batch_id":"b","acked":[1]}', b'{"acked":3}'])
def test_what_is_not_an_ack_is_a_value_error(payload: bytes) -> None:
    with pytest.raises(ValueError, match="not an ack"):
        wire.decode_ack(payload)
