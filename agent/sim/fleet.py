"""``prescreen bench fleet``: many stations, a 3-node cluster, receivers that share one stream.

Why: one station and one receiver say nothing about a fulfilment centre with dozens of stations
or a customs site receiving from thousands. This starts a NATS cluster (JetStream + MQTT) on
loopback ports, 1-3 receiver processes on a PostgreSQL database of their own reading the
replicated stream, and worker processes each running a slice of the stations (own outbox, own
key, the real uplink). Phases: every station fills a backlog (an outage before the cluster was
reachable), then all connect and drain it, then each commits parcels at its pace for a while.
Counts come from the outboxes and from PostgreSQL through the delivery check, per device by seq
(rows = distinct seqs = committed, no gaps, the same record ids), not from counters.
"""

from __future__ import annotations

import contextlib
import json
import multiprocessing
import statistics
import tempfile
import time
import uuid
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from prescreen.core.errors import ConfigError, SyncError
from prescreen.core.signing import DeviceKey
from prescreen.sim.fleet_station import StationSpec, key_path, run_slice, station_config
from prescreen.sim.syncbench import spawn_receiver, stop_process
from prescreen.sync.cluster import NatsCluster
from prescreen.sync.delivery import DeliveryReport, check_delivery
from prescreen.sync.store import open_store

PG_ADMIN = "postgresql://postgres@127.0.0.1:5432/postgres"


@dataclass(frozen=True)
class FleetPlan:
    """The fleet to simulate (the command's options)."""

    stations: int = 200
    parcels_per_minute: float = 12.0
    backlog: int = 1000
    receivers: int = 2
    live_s: float = 60.0
    processes: int = 2
    batch_size: int = 200
    admin_db: str = PG_ADMIN
    drain_timeout_s: float = 900.0
    keepalive_s: int = 5  # a node cut off is noticed within 1.5 keepalives
    # The stream keeps every batch until a receiver commits it, and a station re-sends what is in
    # flight when it reconnects, so the ack timeout only guards against a batch lost silently.
    # At 10 s (a single broker's default) a fleet's backlog queued in the stream for longer is
    # re-sent into it over and over: measured, 200 stations added batches faster than two
    # receivers took them.
    ack_timeout_s: float = 300.0


@contextlib.contextmanager
def scratch_database(admin_url: str = PG_ADMIN) -> Iterator[str]:
    """A new, empty PostgreSQL database (its URL), dropped on the way out.

    Raises:
        ConfigError: psycopg is missing or the server does not answer.
    """
    try:
        import psycopg
    except ImportError as exc:
        raise ConfigError("the fleet bench needs psycopg: pip install 'prescreen-agent[postgres]'") from exc
    name = f"prescreen_fleet_{uuid.uuid4().hex[:12]}"
    try:
        admin = psycopg.connect(admin_url, autocommit=True)
    except psycopg.Error as exc:
        raise ConfigError(f"PostgreSQL at {admin_url.rsplit('@', 1)[-1]}: {exc}") from exc
    with admin:
        admin.execute(f"CREATE DATABASE {name}")
        try:
            yield f"{admin_url.rsplit('/', 1)[0]}/{name}"
        finally:
            admin.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


def _percentile(values: list[float], share: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return round(ordered[min(len(ordered) - 1, int(share * len(ordered)))], 1)


class _Fleet:
    """The running parts of one fleet run, so :meth:`close` can stop whatever started."""

    def __init__(self, plan: FleetPlan, workdir: Path) -> None:
        self.plan = plan
        self.workdir = workdir
        self.cluster: NatsCluster | None = None
        self.receivers: list[Any] = []
        self.workers: list[Any] = []
        self.prefix = "prescreen/v1"

    def start_receivers(self, db_url: str) -> None:
        """Station keys and the trust file, then each receiver (the first makes the stream)."""
        assert self.cluster is not None
        (self.workdir / "stations").mkdir(parents=True, exist_ok=True)
        entries = []
        for index in range(self.plan.stations):
            station = station_config(index)
            key = DeviceKey.load_or_create(key_path(self.workdir, index))
            entries.append(key.trust_entry(station.site_id, station.device_id))
        trust = self.workdir / "trust.json"
        trust.write_text(json.dumps({"keys": entries}))
        self.receiver_key = DeviceKey.load_or_create(self.workdir / "receiver.key")
        options = (
            "--db", db_url, "--trust", str(trust), "--key", str(self.receiver_key.path),
            "--jetstream", ",".join(self.cluster.urls), "--hosts", ",".join(self.cluster.mqtt_hosts),
        )  # fmt: skip
        for n in range(self.plan.receivers):
            self.receivers.append(spawn_receiver(options, self.workdir / f"receiver-{n}.ready"))

    def start_workers(self) -> tuple[Any, Any]:
        """Worker processes, each with every ``processes``-th station; returns (go, reports)."""
        assert self.cluster is not None
        context = multiprocessing.get_context("spawn")
        go, reports = context.Event(), context.Queue()
        for slot in range(self.plan.processes):
            spec = StationSpec(
                workdir=str(self.workdir),
                indices=tuple(range(slot, self.plan.stations, self.plan.processes)),
                hosts=self.cluster.mqtt_hosts,
                prefix=self.prefix,
                receiver_key=self.receiver_key.public_b64,
                backlog=self.plan.backlog,
                parcels_per_minute=self.plan.parcels_per_minute,
                live_s=self.plan.live_s,
                drain_timeout_s=self.plan.drain_timeout_s,
                batch_size=self.plan.batch_size,
                keepalive_s=self.plan.keepalive_s,
                ack_timeout_s=self.plan.ack_timeout_s,
            )
            worker = context.Process(target=run_slice, args=(spec, go, reports), daemon=True)
            worker.start()
            self.workers.append(worker)
        return go, reports

    def collect(self, reports: Any, phase: str, timeout_s: float) -> list[dict[str, Any]]:
        """One ``phase`` report from every worker.

        Raises:
            SyncError: a worker died or stayed silent past ``timeout_s``.
        """
        got: list[dict[str, Any]] = []
        deadline = time.monotonic() + timeout_s
        while len(got) < len(self.workers):
            try:
                name, figures = reports.get(timeout=1)
            except Exception:  # queue.Empty from the multiprocessing queue
                if time.monotonic() > deadline or not all(w.is_alive() for w in self.workers):
                    raise SyncError(f"fleet workers did not report {phase!r}") from None
                continue
            if name == phase:
                got.append(figures)
        return got

    def close(self) -> None:
        """Stop workers, receivers and the cluster, whatever got started."""
        for worker in self.workers:
            worker.join(timeout=30)
            if worker.is_alive():
                worker.kill()
        for receiver in self.receivers:
            stop_process(receiver)
        if self.cluster is not None:
            self.cluster.stop()


def run_fleet(plan: FleetPlan, workdir: Path | None = None) -> dict[str, Any]:
    """Run the fleet; returns the one-line JSON summary (``lost`` must be 0)."""
    with tempfile.TemporaryDirectory(prefix="prescreen-fleet-") as tmp:
        fleet = _Fleet(plan, Path(workdir or tmp))
        try:
            fleet.cluster = NatsCluster.start(3, workdir=fleet.workdir / "nats")
            with scratch_database(plan.admin_db) as db_url:
                return _phases(fleet, db_url)
        finally:
            fleet.close()


def _phases(fleet: _Fleet, db_url: str) -> dict[str, Any]:
    plan = fleet.plan
    fleet.start_receivers(db_url)
    started = time.perf_counter()
    go, reports = fleet.start_workers()
    filled = fleet.collect(reports, "filled", plan.drain_timeout_s)
    fill_s = time.perf_counter() - started
    go_at = time.time()
    go.set()
    drained = fleet.collect(reports, "drained", plan.drain_timeout_s + 60)
    drain_s = max(d["at"] for d in drained) - go_at
    done = fleet.collect(reports, "done", plan.live_s + plan.drain_timeout_s + 60)
    for receiver in fleet.receivers:  # SIGTERM: each finishes its batch in hand
        stop_process(receiver)
    fleet.receivers.clear()
    store = open_store(db_url)
    try:
        ledgers = [ledger for d in done for ledger in d["ledgers"]]
        redelivered = store.stats().get("redelivered", 0)  # copies the stream handed out again
        delivery = check_delivery(store, ledgers, resent=sum(d["resent"] for d in done), injected=redelivered)
    finally:
        store.close()
    reports = {"filled": filled, "drained": drained, "done": done}
    return _summary(plan, reports, delivery, {"fill": fill_s, "drain": drain_s})


def _summary(
    plan: FleetPlan,
    reports: dict[str, list[dict[str, Any]]],
    delivery: DeliveryReport,
    seconds: dict[str, float],
) -> dict[str, Any]:
    done = reports["done"]
    latencies = [ms for d in done for ms in d["latencies_ms"]]
    return {
        "stations": plan.stations,
        "nodes": 3,
        "receivers": plan.receivers,
        "records": delivery.committed,
        **delivery.as_json(),  # per device: rows = distinct seqs = committed, no gaps, same ids
        "commit_to_ack_p50_ms": _percentile(latencies, 0.50),
        "commit_to_ack_p99_ms": _percentile(latencies, 0.99),
        "commit_to_ack_mean_ms": round(statistics.fmean(latencies), 1) if latencies else None,
        "phases": _phase_figures(plan, reports, seconds),
        "failovers": sum(d["failovers"] for d in done),
        "acks_refused": sum(d["acks_refused"] for d in done),
        "plan": asdict(plan) | {"admin_db": None},
    }


def _phase_figures(
    plan: FleetPlan, reports: dict[str, list[dict[str, Any]]], seconds: dict[str, float]
) -> dict[str, Any]:
    """Throughput of each phase: fill (every outbox at once), drain (the whole fleet's backlog to
    the receivers), live (parcels committed at the stations' pace and acked)."""
    backlog = plan.stations * plan.backlog
    parcels = sum(d["parcels"] for d in reports["done"])

    def rate(count: int, took: float) -> float | None:
        return round(count / took, 1) if took > 0 else None

    return {
        "fill": {
            "records": backlog,
            "seconds": round(seconds["fill"], 2),
            "records_per_s": rate(backlog, seconds["fill"]),
        },
        "drain": {
            "records": backlog,
            "seconds": round(seconds["drain"], 2),
            "records_per_s": rate(backlog, seconds["drain"]),
            "complete": all(d["complete"] for d in reports["drained"]),
        },
        "live": {
            "parcels": parcels,
            "seconds": plan.live_s,
            "parcels_per_s": rate(parcels, plan.live_s),
            "settled": all(d["settled"] for d in reports["done"]),
        },
    }
