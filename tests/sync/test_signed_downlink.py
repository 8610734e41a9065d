"""Only customs can tell a station what to do: signed, addressed, current, never replayed.

Each probe goes from its own MQTT client through the real broker (mosquitto, default settings:
anonymous, no TLS) to a whole simulated station; what the station does is read from its outbox,
its hold list and the acks it publishes.
"""

from __future__ import annotations

import dataclasses
import json
import queue
import time
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest
from prescreen.core.records import rfc3339
from prescreen.core.signing import DeviceKey, KeyRing
from prescreen.drivers.barcodes import decode
from prescreen.packing.downlink_journal import attach
from prescreen.sim.demo_station import DemoStation
from prescreen.sim.samples import Step, generate
from prescreen.sync.customs import new_message, seal
from prescreen.sync.downlink import Downlink
from prescreen.sync.mqtt import MqttConnection
from prescreen.sync.topics import downlink_acks_topic, downlink_topic

SITE, DEVICE = "site-01", "station-01"  # the demo station's ids
PREFIX = "prescreen/v1"

EVERY_TYPE: list[dict[str, Any]] = [
    {"type": "hold", "tracking_number": "1ZFORGE0000000001"},
    {"type": "rfi", "tracking_number": "1ZFORGE0000000002"},
    {"type": "rfs", "tracking_number": "1ZFORGE0000000003"},
    {"type": "dnl", "tracking_number": "1ZFORGE0000000004", "reason": "attacker's text"},
    {"type": "release", "tracking_number": "1ZKEPT00000000001"},
    {"type": "watchlist", "add": ["1ZFORGE0000000005"], "remove": ["1ZKEPT00000000001"]},
    {"type": "feedback", "seller": "Acme", "text": "forged"},
    {"type": "config", "settings": {"review_score": 1.0, "hold_score": 1.0, "weight_tolerance_pct": 100.0}},
    {"type": "model", "manifest": {"version": "old", "files": []}, "manifest_signature": "AAAA"},
    {"type": "keys", "keys": ["A" * 43 + "="]},
    {
        "type": "outcome",
        "tracking_number": "1ZKEPT00000000001",
        "outcome": "released",
        "reason_code": "REL",
        "customs_reference": "FORGED-1",
    },
]


@pytest.fixture(scope="module")
def bench(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[DemoStation, list[Step]]]:
    orders, steps = generate(30, seed=5)
    station = DemoStation(tmp_path_factory.mktemp("signed-downlink"), orders)
    try:
        yield station, [s for s in steps if s.kind == "parcel" and decode(s.payload).tracking_number]
    finally:
        station.close()


class Attacker:
    """Any MQTT client on the open broker: publishes to the station's downlink, hears its acks."""

    def __init__(self, station: DemoStation) -> None:
        self.acks: queue.Queue[dict[str, Any]] = queue.Queue()
        self.mqtt = MqttConnection(
            client_id=f"attacker-{uuid.uuid4().hex[:6]}",
            host=station.broker.host,
            port=station.broker.port,
            on_message=lambda topic, payload: self.acks.put(json.loads(payload)),
            subscriptions=(downlink_acks_topic(PREFIX, SITE, DEVICE),),
        ).start()
        assert self.mqtt.subscribed.wait(10)

    def send(self, message: dict[str, Any]) -> None:
        self.mqtt.publish(downlink_topic(PREFIX, SITE, DEVICE), json.dumps(message).encode())

    def heard_until(self, message_id: str) -> list[dict[str, Any]]:
        """Every ack this client heard up to the one answering ``message_id`` (the station's acks
        come in the order it published them)."""
        heard = []
        while not heard or heard[-1].get("message_id") != message_id:
            heard.append(self.acks.get(timeout=10))
        return heard

    def close(self) -> None:
        self.mqtt.stop()


@pytest.fixture
def attacker(bench: tuple[DemoStation, list[Step]]) -> Iterator[Attacker]:
    client = Attacker(bench[0])
    yield client
    client.close()


def _sealed(
    kind: str, key: DeviceKey, site: str = SITE, device: str = DEVICE, **fields: Any
) -> dict[str, Any]:
    return seal(new_message(kind, **fields), key, site=site, device=device)


def _applied(ack: dict[str, Any] | None, status: str = "applied") -> None:
    assert ack is not None, "no ack"
    assert ack["status"] == status, ack


def _downlink(station: DemoStation) -> Downlink:
    assert station.agent is not None
    return station.agent.downlink


def _effects(station: DemoStation) -> int:
    assert station.agent is not None
    return int(station.agent.outbox.rows("SELECT COUNT(*) FROM downlink")[0][0])


def _refused(
    station: DemoStation,
    attacker: Attacker,
    messages: list[dict[str, Any]],
    kind: str,
    wait_until: Callable[..., bool],
) -> None:
    """Each message is refused (counted as ``kind``), changes nothing and is answered with nothing."""
    downlink = _downlink(station)
    assert station.agent is not None
    holds, screening = dict(station.agent.station.holds), station.agent.station.screener.config
    # Genuine markers before and after: the acks between them answer the probes, if anything.
    start = new_message("feedback", seller="sync-marker", text="start")
    assert station.send(start) is not None
    attacker.heard_until(start["message_id"])
    effects, before = _effects(station), downlink.refused[kind]
    for message in messages:
        attacker.send(message)
    assert wait_until(lambda: downlink.refused[kind] == before + len(messages), 10), downlink.refused
    end = new_message("feedback", seller="sync-marker", text="end")
    assert station.send(end) is not None
    assert _effects(station) == effects + 1  # only the marker's
    assert station.agent.station.holds == holds
    assert station.agent.station.screener.config == screening
    assert [a["message_id"] for a in attacker.heard_until(end["message_id"])] == [end["message_id"]]


def test_unsigned_messages_of_every_type_are_refused(
    bench: tuple[DemoStation, list[Step]], attacker: Attacker, wait_until: Callable[..., bool]
) -> None:
    station, _ = bench
    station.send(new_message("hold", tracking_number="1ZKEPT00000000001"))  # a real hold to keep
    forged = [new_message(m["type"], **{k: v for k, v in m.items() if k != "type"}) for m in EVERY_TYPE]
    unsigned = [{**m, "target": {"site_id": SITE, "device_id": DEVICE}} for m in forged]
    _refused(station, attacker, unsigned, "unsigned", wait_until)


def test_messages_signed_by_another_key_or_changed_after_signing_are_refused(
    bench: tuple[DemoStation, list[Step]], attacker: Attacker, wait_until: Callable[..., bool], tmp_path: Any
) -> None:
    station, _ = bench
    mallory = DeviceKey.load_or_create(tmp_path / "mallory.key")
    forged = [_sealed(m["type"], mallory, **{k: v for k, v in m.items() if k != "type"}) for m in EVERY_TYPE]
    _refused(station, attacker, forged, "forged", wait_until)
    genuine = _sealed("release", station.customs_key, tracking_number="1ZKEPT00000000001")
    tampered = [
        {**genuine, "tracking_number": "1ZOTHER0000000001"},
        {**genuine, "type": "dnl"},
        {**genuine, "expires_at": rfc3339(time.time() + 86400)},
        {**genuine, "target": {"site_id": SITE, "device_id": "*"}},
    ]
    _refused(station, attacker, tampered, "tampered", wait_until)


@pytest.mark.slow
def test_stale_future_and_overlong_messages_are_refused(
    bench: tuple[DemoStation, list[Step]], attacker: Attacker, wait_until: Callable[..., bool]
) -> None:
    station, _ = bench
    key = station.customs_key

    def issued(offset_s: float, lifetime_s: float = 3600) -> dict[str, Any]:
        at = rfc3339(time.time() + offset_s)
        message = new_message("dnl", tracking_number="1ZTIME00000000001", issued_at=at)
        return seal(message, key, site=SITE, device=DEVICE, lifetime_s=lifetime_s)

    _refused(station, attacker, [issued(-7200), issued(-3601)], "stale", wait_until)
    _refused(station, attacker, [issued(+3600)], "future", wait_until)
    _refused(station, attacker, [issued(0, lifetime_s=30 * 86400)], "stale", wait_until)
    # A little clock skew is tolerated.
    _applied(station.send(issued(+60), sealed=True))


def test_messages_for_another_station_are_refused_and_fleet_messages_applied(
    bench: tuple[DemoStation, list[Step]], attacker: Attacker, wait_until: Callable[..., bool]
) -> None:
    station, _ = bench
    key = station.customs_key

    def to(site: str, device: str) -> dict[str, Any]:
        return _sealed("hold", key, site, device, tracking_number="1ZAIM000000000001")

    elsewhere = [to(SITE, "station-02"), to("site-02", DEVICE), to("*", DEVICE)]
    _refused(station, attacker, elsewhere, "mistargeted", wait_until)
    for site, device in ((SITE, "*"), ("*", "*")):
        _applied(station.send(to(site, device), sealed=True))


def test_a_replay_is_acked_once_more_but_never_applied_again_and_an_id_reused_is_refused(
    bench: tuple[DemoStation, list[Step]], attacker: Attacker, wait_until: Callable[..., bool]
) -> None:
    station, _ = bench
    message = _sealed("hold", station.customs_key, tracking_number="1ZREPLAY000000001")
    first = station.send(message, sealed=True)
    effects = _effects(station)
    assert station.send(message, sealed=True) == first  # a QoS 1 redelivery: the same answer
    assert _effects(station) == effects
    other = {**message, "tracking_number": "1ZREPLAY000000002"}  # customs' own bug: one id twice
    reused = seal(other, station.customs_key, site=SITE, device=DEVICE)
    _refused(station, attacker, [reused], "replayed", wait_until)


def test_refusals_are_counted_in_status_and_metrics(bench: tuple[DemoStation, list[Step]]) -> None:
    """After the probes above (same module station): each refusal kind is a counter an operator sees."""
    station, _ = bench
    agent = station.agent
    assert agent is not None
    assert agent.http is not None
    refused = agent.status()["broker"]["downlink_refused"]
    assert refused.get("unsigned", 0) >= len(EVERY_TYPE)
    metrics = httpx.get(agent.http.url + "/metrics", timeout=5).text
    assert f'prescreen_downlink_refused_total{{why="unsigned"}} {float(refused["unsigned"])}' in metrics


def test_acks_are_signed_by_the_station(bench: tuple[DemoStation, list[Step]]) -> None:
    station, _ = bench
    assert station.agent is not None
    ack = station.send(new_message("feedback", seller="Acme", text="thanks"))
    assert ack is not None
    assert KeyRing([station.agent.key.public_b64]).check(ack) is None
    assert KeyRing([station.customs_key.public_b64]).check(ack) is not None


def test_a_forged_hold_does_not_hold_a_clean_parcel(
    bench: tuple[DemoStation, list[Step]], attacker: Attacker, wait_until: Callable[..., bool], tmp_path: Any
) -> None:
    """The issue's first probe, end to end: the parcel clears and the operator sees no attacker text."""
    station, steps = bench
    step = next(s for s in steps if s.label == "clean")
    tracking = decode(step.payload).tracking_number
    mallory = DeviceKey.load_or_create(tmp_path / "mallory.key")
    forged = _sealed("dnl", mallory, tracking_number=tracking, reason="attacker's text")
    _refused(station, attacker, [forged], "forged", wait_until)
    event, _ = station.run(step)
    assert event.record is not None
    assert event.record["screening"]["verdict"] == "CLEAR"


@pytest.mark.slow
def test_keys_rotate_by_a_message_signed_with_the_old_key(
    tmp_path_factory: pytest.TempPathFactory, wait_until: Callable[..., bool]
) -> None:
    orders, _ = generate(5, seed=3)
    station = DemoStation(tmp_path_factory.mktemp("rotation"), orders)
    attacker = Attacker(station)
    try:
        old = station.customs_key
        new = DeviceKey.load_or_create(station.workdir / "customs-2027.key")
        _applied(station.send(new_message("keys", keys=[new.public_b64])))
        # The old key is no longer obeyed; the new one is, also after a restart.
        stale = _sealed("hold", old, tracking_number="1ZROT000000000001")
        station.customs_key = new  # the marker _refused sends is signed with the new key
        _refused(station, attacker, [stale], "forged", wait_until)
        _applied(station.send(new_message("hold", tracking_number="1ZROT000000000002")))
        agent = station.agent
        assert agent is not None
        sync = dataclasses.replace(agent.config.sync, customs_keys=(old.public_b64,))
        restarted = attach(agent.station, agent.uplink.mqtt, sync).downlink
        assert restarted.customs.key_ids == KeyRing([new.public_b64]).key_ids
        # A rotation to keys that are not Ed25519 keys is rejected (and answered: it was signed).
        _applied(station.send(new_message("keys", keys=["not a key"])), "rejected")
    finally:
        attacker.close()
        station.close()


@pytest.mark.slow
def test_the_cli_rotates_customs_keys(
    tmp_path_factory: pytest.TempPathFactory, capsys: pytest.CaptureFixture[str]
) -> None:
    """`prescreen downlink send --type keys --customs-key NEW`, signed with the key the station obeys."""
    from prescreen.commands.main import main

    orders, _ = generate(3, seed=5)
    station = DemoStation(tmp_path_factory.mktemp("cli-rotation"), orders)
    try:
        new = DeviceKey.load_or_create(station.workdir / "customs-next.key")
        common = ["--site", SITE, "--device", DEVICE, "--port", str(station.broker.port), "--json"]
        common += ["--key", str(station.workdir / "customs.key")]  # the customs key the station obeys
        assert main(["downlink", "send", *common, "--type", "keys", "--customs-key", new.public_b64]) == 0
        assert json.loads(capsys.readouterr().out)["status"] == "applied"
        assert _downlink(station).customs.key_ids == KeyRing([new.public_b64]).key_ids
    finally:
        station.close()
