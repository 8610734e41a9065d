"""TLS, client certificates, passwords and topic ACLs, against a mosquitto this test configures.

The broker gets a throwaway CA, a server certificate for 127.0.0.1, and two listeners: one that
requires a client certificate (its CN is the MQTT user name) and one with TLS and passwords. The
same ACL file limits each station to its own device's topics.
"""

from __future__ import annotations

import dataclasses
import json
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import paho.mqtt.client as paho
import pytest
from paho.mqtt.enums import CallbackAPIVersion
from pki import Authority
from prescreen.ops.config import StationConfig, SyncConfig
from prescreen.packing.outbox import Outbox
from prescreen.sync.broker import LocalBroker, free_port
from prescreen.sync.mqtt import Security
from prescreen.sync.receiver import Receiver
from prescreen.sync.uplink import Uplink
from record_fixtures import record

ACL = """
# a station's MQTT user name is its device id: it may publish and read only its own subtree
pattern write prescreen/v1/+/%u/records
pattern read prescreen/v1/+/%u/acks
pattern read prescreen/v1/+/%u/downlink
pattern write prescreen/v1/+/%u/downlink-acks
pattern write prescreen/v1/+/%u/health
pattern read prescreen/v1/receivers/+

user receiver
topic read prescreen/v1/+/+/records
topic write prescreen/v1/+/+/acks
topic write prescreen/v1/+/+/downlink
topic read prescreen/v1/+/+/downlink-acks
topic read prescreen/v1/+/+/health
topic write prescreen/v1/receivers/+
"""
STATION = StationConfig(device_id="dev-1", site_id="site-a")


@dataclasses.dataclass
class SecureBroker:
    broker: LocalBroker
    password_port: int
    ca: Authority
    folder: Path

    def station_sync(self, **security: str) -> SyncConfig:
        return SyncConfig(host="127.0.0.1", port=self.broker.port, reconnect_max_s=0.5, **security)


@pytest.fixture(scope="module")
def secure(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SecureBroker]:
    folder = tmp_path_factory.mktemp("pki")
    ca = Authority(folder)
    server_cert, server_key = ca.issue("broker", server=True)
    (folder / "acl").write_text(ACL)
    passwords = folder / "passwords"
    passwords.touch()
    for user, password in (("receiver", "rx-secret"), ("dev-1", "dev1-secret")):
        subprocess.run(["mosquitto_passwd", "-b", str(passwords), user, password], check=True)
    password_port = free_port()
    tls = f"cafile {ca.cafile}\ncertfile {server_cert}\nkeyfile {server_key}\n"
    config = (
        "per_listener_settings true\n"
        f"listener {{port}} 127.0.0.1\n{tls}require_certificate true\nuse_identity_as_username true\n"
        f"allow_anonymous false\nacl_file {folder / 'acl'}\n"
        f"listener {password_port} 127.0.0.1\n{tls}"
        f"allow_anonymous false\npassword_file {passwords}\nacl_file {folder / 'acl'}\n"
    )
    broker = LocalBroker.start(config=config)
    yield SecureBroker(broker, password_port, ca, folder)
    broker.stop()


def _receiver(secure: SecureBroker, tmp_path: Path, *, port: int | None = None, **security: str) -> Receiver:
    receiver = Receiver(
        tmp_path / "rx.db",
        host="127.0.0.1",
        port=port or secure.broker.port,
        mqtt_options={"security": Security(**security)},
    ).start()
    assert receiver.mqtt.subscribed.wait(5), "receiver could not subscribe"
    return receiver


def _mtls_receiver(secure: SecureBroker, tmp_path: Path) -> Receiver:
    """A receiver on the client-certificate listener, logged in as ``receiver``."""
    cert, key = secure.ca.issue("receiver")
    return _receiver(secure, tmp_path, cafile=str(secure.ca.cafile), certfile=str(cert), keyfile=str(key))


def _drain(
    outbox: Outbox, sync: SyncConfig, station: StationConfig, until: Callable[[], bool], timeout: float
) -> bool:
    uplink = Uplink(Outbox(outbox.path), sync, station).start()
    try:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if until():
                return True
            time.sleep(0.05)
        return False
    finally:
        uplink.stop()


def test_mtls_station_publishes_under_its_own_id_and_gets_acks(secure: SecureBroker, tmp_path: Path) -> None:
    cert, key = secure.ca.issue("dev-1")
    receiver = _mtls_receiver(secure, tmp_path)
    outbox = Outbox(tmp_path / "outbox.db")
    outbox.append_many([record] * 20)
    sync = secure.station_sync(cafile=str(secure.ca.cafile), certfile=str(cert), keyfile=str(key))
    try:
        assert _drain(outbox, sync, STATION, lambda: outbox.counts() == {"acked": 20}, 15)
        assert receiver.count() == 20
    finally:
        receiver.stop()


@pytest.mark.slow
def test_acl_stops_a_station_publishing_as_another_device(secure: SecureBroker, tmp_path: Path) -> None:
    cert, key = secure.ca.issue("dev-2")  # a real station, but configured with dev-1's id
    receiver = _mtls_receiver(secure, tmp_path)
    outbox = Outbox(tmp_path / "outbox.db")
    outbox.append_many([record] * 5)
    sync = secure.station_sync(cafile=str(secure.ca.cafile), certfile=str(cert), keyfile=str(key))
    try:
        assert not _drain(outbox, sync, STATION, lambda: receiver.count() > 0, 3)
        assert outbox.counts() == {"pending": 5}  # nothing lost: they wait for a correct set-up
    finally:
        receiver.stop()


def _spy(secure: SecureBroker, cn: str, topics: list[str]) -> tuple[paho.Client, list[str], threading.Event]:
    """A client with a real station certificate subscribing to ``topics``: (client, topics of the
    messages it got, set once the broker answered the subscription)."""
    cert, key = secure.ca.issue(cn)
    got: list[str] = []
    subscribed = threading.Event()
    spy = paho.Client(CallbackAPIVersion.VERSION2, client_id=f"spy-{cn}")
    spy.tls_set(ca_certs=str(secure.ca.cafile), certfile=str(cert), keyfile=str(key))
    spy.on_message = lambda c, u, m: got.append(m.topic)
    spy.on_subscribe = lambda *a: subscribed.set()
    spy.on_connect = lambda c, *a: c.subscribe([(t, 1) for t in topics])
    spy.connect("127.0.0.1", secure.broker.port)
    spy.loop_start()
    return spy, got, subscribed


@pytest.mark.slow
def test_acl_stops_a_station_reading_another_devices_downlink(secure: SecureBroker, tmp_path: Path) -> None:
    topics = ["prescreen/v1/site-a/dev-1/downlink", "prescreen/v1/site-a/dev-2/downlink"]
    spy, got, subscribed = _spy(secure, "dev-2", topics)
    receiver = _mtls_receiver(secure, tmp_path)
    try:
        assert subscribed.wait(5)
        receiver.mqtt.publish("prescreen/v1/site-a/dev-1/downlink", b'{"for": "dev-1"}')
        receiver.mqtt.publish("prescreen/v1/site-a/dev-2/downlink", b'{"for": "dev-2"}')
        deadline = time.monotonic() + 3
        while not got and time.monotonic() < deadline:
            time.sleep(0.05)
        time.sleep(0.3)
        assert got == ["prescreen/v1/site-a/dev-2/downlink"]
    finally:
        spy.loop_stop()
        spy.disconnect()
        receiver.stop()


@pytest.mark.slow
@pytest.mark.parametrize("case", ["wrong CA", "no client certificate"])
def test_broker_refuses_stations_it_cannot_verify_or_that_cannot_verify_it(
    secure: SecureBroker, tmp_path: Path, case: str
) -> None:
    cert, key = secure.ca.issue("dev-1")
    if case == "wrong CA":
        impostor = Authority(tmp_path / "other", name="impostor CA")
        security = {"cafile": str(impostor.cafile), "certfile": str(cert), "keyfile": str(key)}
    else:
        security = {"cafile": str(secure.ca.cafile)}
    outbox = Outbox(tmp_path / "outbox.db")
    uplink = Uplink(Outbox(outbox.path), secure.station_sync(**security), STATION).start()
    try:
        assert not uplink.mqtt.wait_connected(3)
    finally:
        uplink.stop()


@pytest.mark.slow
def test_password_listener_takes_the_right_password_only(secure: SecureBroker, tmp_path: Path) -> None:
    receiver = _receiver(
        secure,
        tmp_path,
        port=secure.password_port,
        cafile=str(secure.ca.cafile),
        username="receiver",
        password="rx-secret",
    )
    outbox = Outbox(tmp_path / "outbox.db")
    outbox.append_many([record] * 10)
    try:
        wrong = dataclasses.replace(
            secure.station_sync(cafile=str(secure.ca.cafile), username="dev-1", password="guess"),
            port=secure.password_port,
        )
        uplink = Uplink(Outbox(outbox.path), wrong, STATION).start()
        try:
            assert not uplink.mqtt.wait_connected(2)
        finally:
            uplink.stop()
        right = dataclasses.replace(wrong, password="dev1-secret")
        assert _drain(outbox, right, STATION, lambda: outbox.counts() == {"acked": 10}, 15)
    finally:
        receiver.stop()


def _doctor(tmp_path: Path, port: int, sync: str) -> dict[str, Any]:
    from prescreen.ops.doctor import run_checks

    tmp_path.mkdir(parents=True)
    config = tmp_path / "agent.toml"
    config.write_text(
        '[station]\nfiler_code = "TST"\n[http]\nport = 0\n'
        '[scanner]\nurl = "sim://scanner"\n[scale]\nurl = "sim://mt-sics"\n'
        f'[orders]\npath = "{tmp_path / "o.ndjson"}"\n'
        f'[outbox]\npath = "{tmp_path / "outbox.db"}"\n[sync]\nhost = "127.0.0.1"\nport = {port}\n'
        f"allow_insecure = true\n{sync}"
    )
    (tmp_path / "o.ndjson").write_text("")
    return {c.name: c for c in run_checks(str(config))}


def test_doctor_names_the_tls_or_login_problem(secure: SecureBroker, tmp_path: Path) -> None:
    cert, key = secure.ca.issue("dev-1")
    ca = f'cafile = "{secure.ca.cafile}"\n'
    good = _doctor(tmp_path / "good", secure.broker.port, f'{ca}certfile = "{cert}"\nkeyfile = "{key}"\n')
    assert good["tls"].level == "ok"
    assert "broker certificate verified with client certificate" in good["tls"].detail
    assert good["broker"].level == "ok"
    impostor = Authority(tmp_path / "impostor", name="impostor CA")
    wrong_ca = _doctor(tmp_path / "ca", secure.broker.port, f'cafile = "{impostor.cafile}"\n')
    assert wrong_ca["tls"].level == "FAIL"
    assert "certificate verify failed" in wrong_ca["tls"].detail
    login = _doctor(tmp_path / "pw", secure.password_port, f'{ca}username = "dev-1"\npassword = "guess"\n')
    assert login["tls"].level == "ok"
    assert login["broker"].level == "FAIL"
    assert "refused the connection" in login["broker"].detail


@pytest.mark.slow
def test_acl_keeps_stations_out_of_the_receivers_share_group(secure: SecureBroker, tmp_path: Path) -> None:
    """A station's credential can neither read other stations' batches nor ack them.

    mosquitto 2.0 grants the subscription and applies the ACL at delivery: a batch the broker
    hands to the spy's share is dropped, and the station re-sends it after its ack timeout.
    """
    topics = ["$share/receivers/prescreen/v1/+/+/records", "prescreen/v1/+/+/records"]
    spy, got, subscribed = _spy(secure, "dev-2", topics)
    cert, key = secure.ca.issue("dev-1")
    receiver = _mtls_receiver(secure, tmp_path)
    outbox = Outbox(tmp_path / "outbox.db")
    outbox.append_many([record] * 20)
    sync = secure.station_sync(cafile=str(secure.ca.cafile), certfile=str(cert), keyfile=str(key))
    sync = dataclasses.replace(sync, ack_timeout_s=1.0)
    try:
        assert subscribed.wait(5)
        ids = [r["record_id"] for r in outbox.records()]
        forged = json.dumps({"batch_id": "x", "acked": ids, "rejected": []})
        for _ in range(20):  # forged acks for every record, on dev-1's acks topic
            spy.publish("prescreen/v1/site-a/dev-1/acks", forged, qos=1)
        assert _drain(outbox, sync, STATION, lambda: outbox.counts() == {"acked": 20}, 15)
        assert receiver.count() == 20  # every record acked was stored: the spy took no share
        assert got == []
    finally:
        spy.loop_stop()
        spy.disconnect()
        receiver.stop()
