"""kill -9 of a draining station loses nothing and re-sends at most its in-flight window.

Real parts: the outbox file, mosquitto (or amqtt), the receiver as its own process, and the
uplink in a process of its own that is killed with SIGKILL mid-drain (between a batch's commit
at the receiver and the station's ack marks, wherever the signal lands), then started again.
"""

from __future__ import annotations

import sqlite3
import subprocess
import sys
import textwrap
import time
from pathlib import Path

from prescreen.core.signing import DeviceKey
from prescreen.ops.config import StationConfig
from prescreen.packing.outbox import Outbox
from prescreen.sim.syncbench import delivery, enrol, fill, start_receiver, stop_process
from prescreen.sync.broker import LocalBroker

RECORDS, BATCH, INFLIGHT = 4000, 100, 4
STATION = StationConfig(device_id="k9-01", site_id="k9")

# The station's uplink, draining until it is killed (or has nothing left to send).
UPLINK = textwrap.dedent(
    """
    import sys, time
    from prescreen.core.signing import DeviceKey
    from prescreen.ops.config import StationConfig, SyncConfig
    from prescreen.packing.outbox import Outbox
    from prescreen.sync.uplink import Uplink

    outbox_path, key_path, port, receiver_key = sys.argv[1:5]
    station = StationConfig(device_id="k9-01", site_id="k9")
    sync = SyncConfig(host="127.0.0.1", port=int(port), batch_size={batch}, inflight_batches={inflight},
                      receiver_keys=(receiver_key,))
    outbox = Outbox(outbox_path)
    uplink = Uplink(outbox, sync, station, signer=DeviceKey.load_or_create(key_path)).start()
    while outbox.counts().get("pending"):
        time.sleep(0.02)
    uplink.stop()
    outbox.close()
    """
).format(batch=BATCH, inflight=INFLIGHT)


def _answered(path: Path) -> int:
    with sqlite3.connect(path) as conn:
        return int(conn.execute("SELECT COUNT(*) FROM acks").fetchone()[0])


def test_kill9_mid_drain_loses_nothing_and_resends_at_most_the_window(tmp_path: Path) -> None:
    key, trust = enrol(tmp_path, STATION)
    outbox_path = tmp_path / "outbox.db"
    outbox = Outbox(outbox_path, signer=key)
    fill(outbox, RECORDS, STATION)
    outbox.close()
    broker = LocalBroker.start()
    receiver_key = DeviceKey.load_or_create(tmp_path / "receiver.key")
    receiver = start_receiver(
        tmp_path / "receiver.db", broker, tmp_path / "notify.sock", trust,
        "--no-share", "--key", str(receiver_key.path),
    )  # fmt: skip
    args = [sys.executable, "-c", UPLINK, str(outbox_path), str(key.path), str(broker.port)]
    args.append(receiver_key.public_b64)
    try:
        first = subprocess.Popen(args)
        deadline = time.monotonic() + 60
        while _answered(outbox_path) < RECORDS // 4 and time.monotonic() < deadline:
            time.sleep(0.002)
        first.kill()
        first.wait()
        answered_when_killed = _answered(outbox_path)
        assert RECORDS // 4 <= answered_when_killed < RECORDS  # killed mid-drain
        second = subprocess.run(args, timeout=120, check=False)
        assert second.returncode == 0
    finally:
        stop_process(receiver)
        broker.stop()
    report = delivery(outbox_path, tmp_path / "receiver.db", STATION, resent=None)
    assert report.ok, report.problems  # every committed seq stored once: none lost, none twice
    assert report.stored == RECORDS
    # What the receiver had acked (or stored) but the killed station had not marked: re-sent once.
    assert report.deduplicated <= BATCH * INFLIGHT
    reopened = Outbox(outbox_path)
    try:
        assert reopened.counts() == {"acked": RECORDS}
    finally:
        reopened.close()
