"""``make chaos``: the sync path's faults with real processes; every committed record stored exactly once.

Scenarios (each with its own broker, receiver process, signed outbox and trust store):

- ``kill9_agent``: ``prescreen run`` killed with SIGKILL mid-drain, then started again;
- ``broker_restart``: mosquitto stopped and started on the same port mid-drain;
- ``partition``: the station reaches the broker through a TCP proxy that, mid-drain, silently
  drops everything for a while (a black hole, not a clean close), then heals;
- ``receiver_restart``: the receiver killed with SIGKILL mid-drain (batches stored but not acked)
  and started again;
- ``duplicates``: every batch delivered twice (published again behind the uplink's back).

Prints one JSON object per scenario (``scenario``, ``committed``, ``stored``, ``lost``, the copies
sent again and those the receiver deduplicated, ``exactly_once`` and its ``problems``: the checks
of :mod:`prescreen.sync.delivery`) and exits 1 if any scenario failed them.
``--records`` sets the records per scenario (``--smoke`` for the test suite).
"""

from __future__ import annotations

import argparse
import json
import socket
import sqlite3
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from prescreen.core.wire import encode_batch
from prescreen.ops import logs
from prescreen.ops.config import StationConfig, SyncConfig
from prescreen.packing.outbox import Outbox
from prescreen.sim.syncbench import delivery, enrol, fill, start_receiver, stop_process
from prescreen.sync.broker import LocalBroker, free_port
from prescreen.sync.delivery import DeliveryReport
from prescreen.sync.uplink import Uplink
from run import kill9

STATION = StationConfig(device_id="chaos-01", site_id="chaos")


class BlackHoleProxy:
    """A TCP proxy to the broker that can silently drop all traffic (a network partition)."""

    def __init__(self, upstream_port: int) -> None:
        self.port = free_port()
        self.upstream_port = upstream_port
        self.partitioned = threading.Event()
        self._listener = socket.create_server(("127.0.0.1", self.port))
        self._sockets: list[socket.socket] = []
        self._lock = threading.Lock()
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            try:
                upstream = socket.create_connection(("127.0.0.1", self.upstream_port))
            except OSError:
                client.close()
                continue
            with self._lock:
                self._sockets += [client, upstream]
            for source, sink in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pump, args=(source, sink), daemon=True).start()

    def _pump(self, source: socket.socket, sink: socket.socket) -> None:
        while True:
            try:
                data = source.recv(65536)
            except OSError:
                data = b""
            if not data:
                break
            if self.partitioned.is_set():
                continue  # the packets vanish; neither side is told
            try:
                sink.sendall(data)
            except OSError:
                break
        for each in (source, sink):
            each.close()

    def heal(self) -> None:
        """End the partition; connections that lost bytes in it are closed (their streams are broken)."""
        with self._lock:
            sockets, self._sockets = self._sockets, []
        for each in sockets:
            each.close()
        self.partitioned.clear()

    def close(self) -> None:
        self._listener.close()
        self.heal()


def _acked(outbox: Path) -> int:
    with sqlite3.connect(outbox) as conn:
        return int(conn.execute("SELECT COUNT(*) FROM acks WHERE state = 'acked'").fetchone()[0])


def _wait(predicate: Callable[[], bool], timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.02)
    return False


def _scenario(
    name: str,
    records: int,
    workdir: Path,
    fault: Callable[[dict[str, Any]], None],
    *,
    through_proxy: bool = False,
) -> dict[str, Any]:
    """Fill, drain with ``fault`` injected once a quarter is acked, wait for the rest, count."""
    workdir.mkdir(parents=True)
    key, trust = enrol(workdir, STATION)
    outbox_path = workdir / "outbox.db"
    outbox = Outbox(outbox_path, signer=key)
    fill(outbox, records, STATION)
    outbox.close()
    broker = LocalBroker.start()
    proxy = BlackHoleProxy(broker.port) if through_proxy else None
    parts: dict[str, Any] = {"broker": broker, "proxy": proxy, "workdir": workdir, "trust": trust}
    parts["receiver"] = start_receiver(workdir / "receiver.db", broker, workdir / "rx.sock", trust)
    sync = SyncConfig(
        host=broker.host,
        port=proxy.port if proxy else broker.port,
        batch_size=200,
        inflight_batches=4,
        ack_timeout_s=3.0,
        keepalive_s=2,
        reconnect_max_s=0.5,
    )
    started = time.monotonic()
    queue = Outbox(outbox_path)
    uplink = Uplink(queue, sync, STATION, signer=key).start()
    parts["uplink"] = uplink
    parts["injected"] = 0
    try:
        _wait(lambda: _acked(outbox_path) >= records // 4, 60)
        fault(parts)
        done = _wait(lambda: _acked(outbox_path) >= records, 120)
    finally:
        uplink.stop()
        queue.close()
        stop_process(parts["receiver"])
        if proxy is not None:
            proxy.close()
        broker.stop()
    seconds = time.monotonic() - started
    check = delivery(
        outbox_path,
        workdir / "receiver.db",
        STATION,
        resent=uplink.copies_sent_again,
        injected=parts["injected"],
    )
    return _result(name, check, done, seconds)


def _result(name: str, check: DeliveryReport, done: bool, seconds: float) -> dict[str, Any]:
    return {"scenario": name, **check.as_json(), "all_acked": done, "seconds": round(seconds, 2)}


def broker_restart(parts: dict[str, Any]) -> None:
    parts["broker"].restart()


def partition(parts: dict[str, Any]) -> None:
    proxy: BlackHoleProxy = parts["proxy"]
    proxy.partitioned.set()
    time.sleep(6)  # past the keepalive (2 s × 1.5) and the ack timeout (3 s)
    proxy.heal()


def receiver_restart(parts: dict[str, Any]) -> None:
    process = parts["receiver"]
    process.kill()
    process.wait()
    time.sleep(1)
    workdir: Path = parts["workdir"]
    (workdir / "rx.sock").unlink(missing_ok=True)
    parts["receiver"] = start_receiver(
        workdir / "receiver.db", parts["broker"], workdir / "rx.sock", parts["trust"]
    )


def duplicates(parts: dict[str, Any]) -> None:
    """Publish every committed record again in fresh batches, as a confused network would."""
    uplink: Uplink = parts["uplink"]
    outbox = Outbox(parts["workdir"] / "outbox.db")
    bodies = [json.dumps(r, separators=(",", ":"), sort_keys=True) for r in outbox.records()]
    outbox.close()
    topic = f"prescreen/v1/{STATION.site_id}/{STATION.device_id}/records"
    for start in range(0, len(bodies), 200):
        uplink.mqtt.publish(
            topic, encode_batch(f"dup-{start}", STATION.device_id, bodies[start : start + 200])
        )
        parts["injected"] += len(bodies[start : start + 200])
        time.sleep(0.002)


def kill9_agent(records: int, workdir: Path) -> dict[str, Any]:
    workdir.mkdir(parents=True)
    started = time.monotonic()
    check = kill9(records, workdir)["_kill9_delivery"]  # the killed agent's re-send count died with it
    return {
        "scenario": "kill9_agent",
        **check,
        "all_acked": True,
        "seconds": round(time.monotonic() - started, 2),
    }


def run(records: int) -> list[dict[str, Any]]:
    results = []
    with tempfile.TemporaryDirectory(prefix="prescreen-chaos-") as tmp:
        root = Path(tmp)
        results.append(kill9_agent(records, root / "kill9"))
        print(json.dumps(results[-1]), flush=True)
        for name, fault, proxy in (
            ("broker_restart", broker_restart, False),
            ("partition", partition, True),
            ("receiver_restart", receiver_restart, False),
            ("duplicates", duplicates, False),
        ):
            results.append(_scenario(name, records, root / name, fault, through_proxy=proxy))
            print(json.dumps(results[-1]), flush=True)
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=20_000, help="committed records per scenario")
    parser.add_argument("--smoke", action="store_true", help="600 records per scenario")
    args = parser.parse_args()
    logs.configure("error")  # the faults make the expected warnings; the JSON lines are the result
    results = run(600 if args.smoke else args.records)
    bad = [f"{r['scenario']}: {'; '.join(r['problems'])}" for r in results if not r["exactly_once"]]
    if bad:
        print(f"chaos: delivery check failed in {' | '.join(bad)}", file=sys.stderr)
        sys.exit(1)


if __name__ == "__main__":
    main()
