"""Customs believes only the station's own ack of exactly the message it sent (review #2).

A stand-in station on the real broker answers each message customs publishes with the acks a
forger could publish on the ack topic (unsigned, other content, another station's key, not JSON,
not an object) and, last, the real station's signed ack: customs must skip every forgery with a
log line and return only the real one, or nothing when the real one never comes.
"""

from __future__ import annotations

import json
import logging
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from prescreen.core.signing import DeviceKey, TrustStore
from prescreen.sync.broker import LocalBroker
from prescreen.sync.customs import new_message, send_downlink
from prescreen.sync.downlink import digest
from prescreen.sync.mqtt import MqttConnection
from prescreen.sync.topics import downlink_acks_topic, downlink_topic

SITE, DEVICE = "site-a", "st-1"


def _station(
    broker: LocalBroker, prefix: str, answers: Callable[[dict[str, Any]], list[bytes]]
) -> MqttConnection:
    """A stand-in station: on each message, publishes ``answers(message)`` on its ack topic."""
    acks = downlink_acks_topic(prefix, SITE, DEVICE)
    holder: list[MqttConnection] = []

    def on_message(topic: str, payload: bytes) -> None:
        for answer in answers(json.loads(payload)):
            holder[0].publish(acks, answer)

    link = MqttConnection(
        client_id=f"stand-in-{uuid.uuid4().hex[:6]}",
        host=broker.host,
        port=broker.port,
        on_message=on_message,
        subscriptions=(downlink_topic(prefix, SITE, DEVICE),),
    )
    holder.append(link)
    link.start()
    assert link.subscribed.wait(5)
    return link


def _ack(message: dict[str, Any], key: DeviceKey | None, **overrides: Any) -> bytes:
    ack = {
        "message_id": message["message_id"],
        "message_sha256": digest(message),
        "status": "applied",
        "record_id": "r-1",
        "detail": "held",
        "parcel_state": None,
    }
    ack.update(overrides)
    return json.dumps(key.sign(ack) if key is not None else ack).encode()


@pytest.fixture
def keys(tmp_path: Path) -> tuple[DeviceKey, DeviceKey, TrustStore]:
    station = DeviceKey.load_or_create(tmp_path / "station.key")
    other = DeviceKey.load_or_create(tmp_path / "other.key")
    trust = TrustStore([station.trust_entry(SITE, DEVICE), other.trust_entry(SITE, "st-2")])
    return station, other, trust


def test_forged_and_malformed_acks_are_skipped_and_the_stations_own_is_taken(
    broker: LocalBroker, keys: tuple[DeviceKey, DeviceKey, TrustStore], caplog: pytest.LogCaptureFixture
) -> None:
    station, other, trust = keys
    prefix = f"t{uuid.uuid4().hex[:8]}/v1"

    def answers(message: dict[str, Any]) -> list[bytes]:
        return [
            b"not json",
            b"[1]",
            _ack(message, None),  # unsigned
            _ack(message, station, message_sha256="0" * 64),  # the station's key, other content
            _ack(message, other),  # another station's key
            _ack(message, station, detail="the real one"),
        ]

    link = _station(broker, prefix, answers)
    try:
        with caplog.at_level(logging.WARNING, logger="prescreen.customs"):
            ack = send_downlink(
                new_message("hold", tracking_number="1Z1"),
                site=SITE,
                device=DEVICE,
                host=broker.host,
                port=broker.port,
                prefix=prefix,
                wait_s=5,
                stations=trust,
            )
    finally:
        link.stop()
    assert ack is not None
    assert ack["detail"] == "the real one"
    refused = [r.why for r in caplog.records if r.getMessage() == "downlink ack refused"]  # type: ignore[attr-defined]
    assert len(refused) == 5, refused


@pytest.mark.slow
def test_a_forged_applied_ack_alone_leaves_customs_without_an_answer(
    broker: LocalBroker, keys: tuple[DeviceKey, DeviceKey, TrustStore]
) -> None:
    """Without the station's own ack, customs reports none (the CLI then exits 1), never 'applied'."""
    _, other, trust = keys
    prefix = f"t{uuid.uuid4().hex[:8]}/v1"
    link = _station(broker, prefix, lambda message: [_ack(message, None), _ack(message, other)])
    try:
        ack = send_downlink(
            new_message("dnl", tracking_number="1Z2", reason="x"),
            site=SITE,
            device=DEVICE,
            host=broker.host,
            port=broker.port,
            prefix=prefix,
            wait_s=1.5,
            resend_s=0.5,
            stations=trust,
        )
    finally:
        link.stop()
    assert ack is None
