"""``prescreen demo``: a whole packing station on this machine, no hardware, no set-up.

Simulated scanner and scale on pty pairs (read by the real drivers through pyserial), bundled
sample orders in a file export, real screening, the SQLite outbox, a local broker (mosquitto or the
embedded amqtt) and the reference receiver. The simulated operator places each parcel, scans its
label, waits for the verdict and takes the parcel off, exactly as at the bench.
"""

from __future__ import annotations

import collections
import json
import logging
import queue
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from prescreen import config as cfg
from prescreen.app import Agent
from prescreen.drivers.registry import scale_protocol
from prescreen.drivers.sim import ScaleSimulator, ScannerSimulator
from prescreen.samples import Step, generate
from prescreen.station import StationEvent
from prescreen.sync.broker import LocalBroker
from prescreen.sync.receiver import Receiver

log = logging.getLogger("prescreen.demo")
Progress = Callable[[int, int, Step, StationEvent], None]


def percentile(values: list[float], q: float) -> float:
    """The q-th percentile (0-100) by linear interpolation; 0 for no values."""
    if not values:
        return 0.0
    if len(values) == 1:
        return values[0]
    return statistics.quantiles(values, n=100, method="inclusive")[min(98, max(0, int(q) - 1))]


def demo_config(workdir: Path, scale_port: str, scanner_port: str, broker: LocalBroker) -> cfg.Config:
    """The station config the demo runs with: fast polling, everything under ``workdir``."""
    config = cfg.Config()
    config = cfg.replace(
        config,
        "scale",
        url=scale_port,
        protocol="mt-sics",
        poll_interval_ms=10,
        settle_readings=3,
        settle_ms=20,
    )
    config = cfg.replace(config, "scanner", url=scanner_port)
    config = cfg.replace(config, "orders", path=str(workdir / "orders.ndjson"))
    config = cfg.replace(config, "outbox", path=str(workdir / "outbox.db"))
    config = cfg.replace(config, "http", port=0)
    return cfg.replace(config, "sync", host=broker.host, port=broker.port, batch_age_ms=20)


def run_demo(
    parcels: int = 100,
    *,
    workdir: Path | None = None,
    progress: Progress | None = None,
    broker_kind: str = "mosquitto",
    seed: int = 7,
) -> dict[str, Any]:
    """Run the demo and return its summary (the ``--json`` object)."""
    with tempfile.TemporaryDirectory(prefix="prescreen-demo-") as tmp:
        return _run(parcels, Path(workdir or tmp), progress, broker_kind, seed)


def _run(
    parcels: int, workdir: Path, progress: Progress | None, broker_kind: str, seed: int
) -> dict[str, Any]:
    workdir.mkdir(parents=True, exist_ok=True)
    orders, steps = generate(parcels, seed=seed)
    (workdir / "orders.ndjson").write_text("".join(json.dumps(o) + "\n" for o in orders))
    broker = LocalBroker.start(prefer=broker_kind)
    receiver = Receiver(
        workdir / "receiver.db", host=broker.host, port=broker.port, shared=broker.kind == "mosquitto"
    ).start()
    scale = ScaleSimulator(scale_protocol("mt-sics"))
    scanner = ScannerSimulator()
    agent: Agent | None = None
    started = time.monotonic()
    try:
        receiver.mqtt.wait_connected(10)
        agent = Agent(demo_config(workdir, scale.port, scanner.port, broker)).start()
        events: queue.Queue[StationEvent] = queue.Queue()
        agent.station.listeners.append(events.put)
        latencies: list[float] = []
        verdicts: collections.Counter[str] = collections.Counter()
        for number, step in enumerate(steps, start=1):
            if step.weight_kg is not None:
                scale.place(step.weight_kg, motion=2)
            scanner.scan(step.payload, aim=step.aim)
            event = events.get(timeout=30)
            if event.record is not None:
                verdicts[event.record["screening"]["verdict"]] += 1
                latencies.append(event.latency_ms or 0.0)
            if progress is not None:
                progress(number, len(steps), step, event)
            if step.weight_kg is not None:
                scale.place("0", motion=1)
        deadline = time.monotonic() + 30
        while agent.outbox.counts().get("pending", 0) and time.monotonic() < deadline:
            time.sleep(0.05)
        counts = agent.outbox.counts()
        return {
            "parcels": sum(verdicts.values()),
            "verdicts": {k: verdicts.get(k, 0) for k in ("CLEAR", "REVIEW", "HOLD")},
            "committed": sum(counts.values()),
            "acked": counts.get("acked", 0),
            "received": receiver.count(),
            "duplicates": receiver.duplicates,
            "rejected": receiver.rejected,
            "latency_ms": {
                "p50": round(percentile(latencies, 50), 3),
                "p99": round(percentile(latencies, 99), 3),
                "max": round(max(latencies, default=0.0), 3),
            },
            "model": agent.screener.model.version if agent.screener.model else None,
            "broker": broker.kind,
            "seconds": round(time.monotonic() - started, 2),
            "workdir": str(workdir),
        }
    finally:
        if agent is not None:
            agent.stop()
        receiver.stop()
        scale.close()
        scanner.close()
        broker.stop()
