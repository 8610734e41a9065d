"""The stations of ``prescreen bench fleet``: many light uplinks in one worker process.

Each station is what a packing station is to the sync path: its own outbox (SQLite, WAL, every
record signed with its own key), its own MQTT client with the cluster's nodes in its own order,
and the real :class:`~prescreen.sync.uplink.Uplink`. No scanner, scale or screening: the fleet
bench measures the sync path, and a synthetic record costs what a real one costs on the wire.
A worker runs a slice of the fleet and reports to the parent through a queue, phase by phase.
"""

from __future__ import annotations

import heapq
import logging
import random
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from prescreen.core.records import epoch_s
from prescreen.core.signing import DeviceKey
from prescreen.ops.config import StationConfig, SyncConfig
from prescreen.packing.outbox import Outbox
from prescreen.sim.syncbench import fill, synthetic_record
from prescreen.sync.delivery import Ledger, ledger_of
from prescreen.sync.uplink import Uplink

log = logging.getLogger("prescreen.sync")


@dataclass(frozen=True)
class StationSpec:
    """What a worker needs to run its slice of the fleet (picklable: it crosses a process)."""

    workdir: str
    indices: tuple[int, ...]
    hosts: tuple[str, ...]  # the cluster's MQTT nodes; each station rotates them by its index
    prefix: str
    receiver_key: str  # base64 public key whose signed acks the stations take
    backlog: int
    parcels_per_minute: float
    live_s: float
    drain_timeout_s: float
    batch_size: int
    keepalive_s: int
    ack_timeout_s: float


def station_config(index: int) -> StationConfig:
    """Station ``index`` of the fleet: 25 stations per site, as in a fulfilment centre."""
    return StationConfig(device_id=f"fleet-{index:04d}", site_id=f"site-{index // 25:02d}")


def key_path(workdir: Path, index: int) -> Path:
    """Where station ``index`` keeps its key (made by the parent, which also builds the trust file)."""
    return workdir / "stations" / f"{station_config(index).device_id}.key"


class Slice:
    """One worker's stations: outboxes, uplinks, and the parcels it commits."""

    def __init__(self, spec: StationSpec) -> None:
        self.spec = spec
        self.workdir = Path(spec.workdir)
        self.stations = [station_config(i) for i in spec.indices]
        self.keys = [DeviceKey.load_or_create(key_path(self.workdir, i)) for i in spec.indices]
        self.outboxes = [
            Outbox(self.workdir / "stations" / f"{s.device_id}.db", signer=key)
            for s, key in zip(self.stations, self.keys, strict=True)
        ]
        self.uplinks: list[Uplink] = []
        self.committed = [0] * len(self.stations)

    def fill(self) -> float:
        """Commit each station's backlog (its outage before the cluster was reachable); seconds."""
        started = time.perf_counter()
        for n, (outbox, station) in enumerate(zip(self.outboxes, self.stations, strict=True)):
            fill(outbox, self.spec.backlog, station)
            self.committed[n] = self.spec.backlog
        return time.perf_counter() - started

    def connect(self) -> None:
        """Start every uplink; each lists the nodes starting from its own, so the fleet spreads."""
        hosts = self.spec.hosts
        for index, outbox, station, key in zip(
            self.spec.indices, self.outboxes, self.stations, self.keys, strict=True
        ):
            at = index % len(hosts)
            sync = SyncConfig(
                hosts=hosts[at:] + hosts[:at],
                topic_prefix=self.spec.prefix,
                batch_size=self.spec.batch_size,
                keepalive_s=self.spec.keepalive_s,
                ack_timeout_s=self.spec.ack_timeout_s,
                subscribe_qos=0,  # NATS 2.9's QoS 1 subscriptions can fail silently after a node loss
                receiver_keys=(self.spec.receiver_key,),
            )
            self.uplinks.append(Uplink(outbox, sync, station, signer=key).start())

    def acked(self) -> int:
        """Records the receivers have acknowledged to this slice's stations."""
        return sum(u.records_acked for u in self.uplinks)

    def wait_acked(self, total: int, timeout_s: float) -> bool:
        """Until ``total`` records are acked or ``timeout_s`` passes."""
        deadline = time.monotonic() + timeout_s
        while self.acked() < total and time.monotonic() < deadline:
            time.sleep(0.05)
        return self.acked() >= total

    def live(self) -> int:
        """Commit parcels at each station's pace for ``live_s`` (each station on its own random
        phase, ±10 % per interval); returns how many."""
        period = 60.0 / self.spec.parcels_per_minute
        rng = random.Random(self.spec.indices[0])
        start = time.monotonic()
        due = [(start + rng.uniform(0, period), n) for n in range(len(self.stations))]
        heapq.heapify(due)
        parcels = 0
        while due and due[0][0] < start + self.spec.live_s:
            at, n = heapq.heappop(due)
            time.sleep(max(0.0, at - time.monotonic()))
            station = self.stations[n]
            self.outboxes[n].append(lambda seq, station=station: synthetic_record(seq, station))  # type: ignore[misc]
            self.uplinks[n].notify()
            self.committed[n] += 1
            parcels += 1
            heapq.heappush(due, (at + period * rng.uniform(0.9, 1.1), n))
        return parcels

    def latencies_ms(self) -> list[float]:
        """Commit → ack of every live parcel (the backlog was committed before the drain)."""
        found: list[float] = []
        for outbox in self.outboxes:
            rows = outbox.rows(
                "SELECT r.created_at, a.acked_at FROM acks a JOIN records r ON r.seq = a.seq WHERE a.seq > ?",
                (self.spec.backlog,),
            )
            found += [(epoch_s(acked) - epoch_s(created)) * 1000 for created, acked in rows]
        return found

    def ledgers(self) -> list[Ledger]:
        """What each station committed, for the delivery check against the receivers' store."""
        return [
            ledger_of(station.site_id, station.device_id, outbox.sequence())
            for station, outbox in zip(self.stations, self.outboxes, strict=True)
        ]

    def stop(self) -> None:
        """Stop the uplinks and close the outboxes (pending records stay for a next run)."""
        for uplink in self.uplinks:
            uplink.stop()
        for outbox in self.outboxes:
            outbox.close()


def run_slice(spec: StationSpec, go: Any, report: Any) -> None:
    """A worker process: fill, wait for the parent's go, drain, live phase, settle, report.

    Each report is ``(phase, figures)`` on the ``report`` queue; ``go`` is an Event.
    """
    logging.basicConfig(level=logging.WARNING)
    part = Slice(spec)
    try:
        report.put(("filled", {"seconds": part.fill(), "records": sum(part.committed)}))
        go.wait()
        part.connect()
        drained = part.wait_acked(sum(part.committed), spec.drain_timeout_s)
        report.put(("drained", {"at": time.time(), "complete": drained}))
        parcels = part.live()
        settled = part.wait_acked(sum(part.committed), spec.drain_timeout_s)
        report.put(
            (
                "done",
                {
                    "parcels": parcels,
                    "settled": settled,
                    "ledgers": part.ledgers(),
                    "resent": sum(u.copies_sent_again for u in part.uplinks),
                    "latencies_ms": part.latencies_ms(),
                    "failovers": sum(u.mqtt.failovers for u in part.uplinks),
                    "acks_refused": sum(sum(u.acks_refused.values()) for u in part.uplinks),
                },
            )
        )
    finally:
        part.stop()
