"""``prescreen bench sync``: how fast a station's backlog reaches the receiver, and that none is lost.

Why in the library and not only in the test tree: site IT sizes receivers and outage budgets with
it on their own machines. It fills an outbox with N schema-valid records (group commits), then
times the real uplink draining them through a real broker to the real receiver, which validates,
dedupes, commits and acks each batch. Whether each record arrived exactly once is decided by
:func:`prescreen.sync.delivery.check_delivery` on the two SQLite files.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from prescreen.core.errors import SyncError
from prescreen.core.records import Record, envelope
from prescreen.core.signing import DeviceKey
from prescreen.ops.config import StationConfig, SyncConfig
from prescreen.packing.outbox import Outbox
from prescreen.sync.broker import LocalBroker
from prescreen.sync.delivery import DeliveryReport, check_delivery, ledger_of
from prescreen.sync.store import open_store
from prescreen.sync.uplink import Uplink

FILL_CHUNK = 5000


def synthetic_record(seq: int, station: StationConfig) -> Record:
    """A schema-valid verdict record of typical size (no personal data)."""
    record = envelope("verdict", seq, station)
    tracking = f"BENCH{seq:010d}"
    record["parcel"] = {
        "tracking_number": tracking,
        "carrier": "unknown",
        "channel": "unknown",
        "barcode": {"raw": tracking, "symbology": "none", "check_ok": False, "reason": "UNKNOWN", "gs1": {}},
        "sscc": None,
        "postal_item_id": None,
        "master_carton_id": None,
        "measured_weight_kg": 0.512,
    }
    record["order"] = None
    record["screening"] = {
        "verdict": "REVIEW",
        "score": 0.42,
        "model_version": "risk-v2",
        "mode": "rules+model",
        "reasons": [
            {"code": "ORDER_NOT_FOUND", "severity": "review", "message": "No order data for this parcel."}
        ],
    }
    return record


def fill(outbox: Outbox, records: int, station: StationConfig) -> None:
    """Commit ``records`` synthetic records in group commits of :data:`FILL_CHUNK`."""
    build: Callable[[int], Record] = lambda seq: synthetic_record(seq, station)  # noqa: E731
    for start in range(0, records, FILL_CHUNK):
        outbox.append_many([build] * min(FILL_CHUNK, records - start))


def enrol(workdir: Path, station: StationConfig, key_path: Path | None = None) -> tuple[DeviceKey, Path]:
    """A station key (in ``workdir`` unless ``key_path``) and a trust store holding it, as IT would
    set them up."""
    key = DeviceKey.load_or_create(key_path or workdir / f"{station.device_id}.key")
    trust = workdir / f"{station.device_id}-trust.json"
    trust.write_text(json.dumps({"keys": [key.trust_entry(station.site_id, station.device_id)]}))
    return key, trust


def delivery(
    outbox_path: Path,
    receiver_db: Path | str,
    station: StationConfig,
    *,
    resent: int | None,
    injected: int = 0,
) -> DeliveryReport:
    """The delivery check of one station's outbox against the receiver's store."""
    outbox = Outbox(outbox_path)
    try:
        committed = ledger_of(station.site_id, station.device_id, outbox.sequence())
    finally:
        outbox.close()
    store = open_store(receiver_db)
    try:
        return check_delivery(store, [committed], resent=resent, injected=injected)
    finally:
        store.close()


def run_sync_bench(
    records: int,
    *,
    workdir: Path | None = None,
    batch_size: int = 500,
    inflight_batches: int = 8,
    compress: bool = False,
    receiver_workers: int = 1,
    timeout_s: float = 600,
) -> dict[str, Any]:
    """Fill, drain and count; returns the ``--json`` summary."""
    with tempfile.TemporaryDirectory(prefix="prescreen-bench-") as tmp:
        settings = {"batch_size": batch_size, "inflight_batches": inflight_batches, "compress": compress}
        return _run(records, Path(workdir or tmp), timeout_s, settings, receiver_workers)


def start_receiver(
    db: Path | str, broker: LocalBroker, ready: Path, trust: Path, *extra: str
) -> subprocess.Popen[bytes]:
    """The receiver as deployed: its own process, verifying signatures against ``trust``,
    READY once its subscription is acked."""
    where = ("--host", broker.host, "--port", str(broker.port))
    options = ("--db", str(db), *where, "--trust", str(trust), *(extra or ("--no-share",)))
    return spawn_receiver(options, ready)


def spawn_receiver(options: tuple[str, ...], ready: Path) -> subprocess.Popen[bytes]:
    """``prescreen receiver OPTIONS`` in its own process, returned once it tells systemd's notify
    socket (here a datagram socket at ``ready``) READY=1.

    Raises:
        SyncError: not ready within 30 s (the process is killed).
    """
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as notify:
        notify.bind(str(ready))
        notify.settimeout(30)
        process = subprocess.Popen(
            [sys.executable, "-m", "prescreen", "--log-level", "warning", "receiver", *options],
            env={**os.environ, "NOTIFY_SOCKET": str(ready)},
        )
        try:
            while b"READY=1" not in notify.recv(4096):
                pass
        except TimeoutError:
            process.kill()
            raise SyncError("receiver did not become ready within 30 s") from None
    return process


def stop_process(process: subprocess.Popen[bytes]) -> None:
    """SIGTERM, then wait (the receiver commits before it acks, so a stop loses nothing)."""
    process.send_signal(signal.SIGTERM)
    try:
        process.wait(timeout=15)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def _run(
    records: int, workdir: Path, timeout_s: float, settings: dict[str, Any], workers: int
) -> dict[str, Any]:
    workdir.mkdir(parents=True, exist_ok=True)
    station = StationConfig(device_id="bench-01", site_id="bench")
    outbox_path = workdir / "outbox.db"
    key, trust = enrol(workdir, station)
    outbox = Outbox(outbox_path, signer=key)
    fill_started = time.perf_counter()
    fill(outbox, records, station)
    fill_s = time.perf_counter() - fill_started
    outbox.close()
    broker = LocalBroker.start()
    # Acks signed by the receiver's key and checked by the station, as deployed.
    receiver_key = DeviceKey.load_or_create(workdir / "receiver.key")
    # One worker on a plain subscription; several share one ($share/receivers/...), as deployed.
    share = ("--workers", str(workers)) if workers > 1 else ("--no-share",)
    signed = (*share, "--key", str(receiver_key.path))
    receiver = start_receiver(workdir / "receiver.db", broker, workdir / "notify.sock", trust, *signed)
    sync = SyncConfig(
        host=broker.host, port=broker.port, receiver_keys=(receiver_key.public_b64,), **settings
    )
    uplink: Uplink | None = None
    resent: int | None = None
    queue = Outbox(outbox_path)
    try:
        # The station's share of the drain's CPU is this process's: the uplink's thread, its MQTT
        # client's, the outbox checkpointer's, and this loop's polling (about 13 ms of CPU a
        # second here: 1.3 µs a record at 10,000 records/s).
        cpu_started = time.process_time()
        started = time.perf_counter()
        uplink = Uplink(queue, sync, station, signer=key).start()
        deadline = time.monotonic() + timeout_s
        while uplink.records_acked < records and time.monotonic() < deadline:
            time.sleep(0.005)
        elapsed = time.perf_counter() - started
        station_cpu_s = time.process_time() - cpu_started
    finally:
        if uplink is not None:
            uplink.stop()
            resent = uplink.copies_sent_again
        queue.close()
        stop_process(receiver)
        broker.stop()
    outbox = Outbox(outbox_path)
    acked = outbox.counts().get("acked", 0)
    outbox.close()
    report = delivery(outbox_path, workdir / "receiver.db", station, resent=resent)
    return {
        "records": records,
        "acked": acked,
        **report.as_json(),
        "records_per_s": round(records / elapsed, 1) if elapsed else 0.0,
        "drain_s": round(elapsed, 3),
        "station_cpu_us_per_record": round(station_cpu_s / records * 1e6, 2) if records else 0.0,
        "fill_records_per_s": round(records / fill_s, 1) if fill_s else 0.0,
        **settings,
        "receiver_workers": workers,
        "broker": broker.kind,
    }
