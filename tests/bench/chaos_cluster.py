"""``make chaos``, cluster part: faults of a 3-node NATS cluster under a draining fleet.

Each scenario starts its own cluster (JetStream + MQTT, on free loopback ports), a PostgreSQL
database of its own, two receiver processes on the replicated stream (``prescreen receiver
--jetstream``), and six stations (own outbox and key, the real uplink), two starting on each node:

- ``cluster_node_kill9``: one node killed with SIGKILL mid-drain; its stations fail over;
- ``cluster_receiver_kill9``: one receiver killed with SIGKILL mid-drain, holding batches it has
  not acked to the stream; they go to the other receiver after the ack wait;
- ``cluster_partition``: one node cut off from everyone (its peers and its clients) through TCP
  proxies that black-hole traffic, then healed;
- ``cluster_split``: one node cut off from its peers only; its stations still reach it, and
  leave it when their acks are overdue (``ack_timeout_s`` 10 s here);
- ``cluster_downlink_hold``: a station (``prescreen run``'s Agent, sim devices) on the node that is
  killed, and a customs hold sent right after: it reaches the station through another node.

Each prints one JSON line: the delivery check per device by seq (rows = distinct seqs =
committed, no gaps), and the scenario's timings. Exits 1 on any loss or double store.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import sqlite3
import sys
import tempfile
import time
import types
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from chaos import BlackHoleProxy
from chaos import _wait as wait
from prescreen.core.signing import DeviceKey
from prescreen.ops import config as cfg
from prescreen.ops.config import StationConfig, SyncConfig
from prescreen.ops.logs import configure
from prescreen.packing.app import Agent
from prescreen.packing.outbox import Outbox
from prescreen.sim.demo_station import demo_config
from prescreen.sim.fleet import scratch_database
from prescreen.sim.syncbench import fill, spawn_receiver, stop_process, synthetic_record
from prescreen.sync.cluster import NODE_TEMPLATE, NatsCluster, Node
from prescreen.sync.customs import new_message, send_downlink
from prescreen.sync.delivery import check_delivery, ledger_of
from prescreen.sync.mqtt import parse_endpoints
from prescreen.sync.store import open_store
from prescreen.sync.uplink import Uplink

STATIONS = 6
# Implicit routes (a node dialling a peer it heard of from another) would bypass the proxies:
# every node advertises a closed port, so only the configured, proxied routes form.
CUT_TEMPLATE = NODE_TEMPLATE.replace(
    "  no_advertise: true\n", '  no_advertise: true\n  advertise: "127.0.0.1:9"\n'
)


class Rig:
    """One scenario's cluster, database, receivers and stations."""

    def __init__(self, workdir: Path, records: int, *, cut_node: bool = False) -> None:
        self.workdir, self.records = workdir, records
        self.stack = contextlib.ExitStack()
        self.cluster = NatsCluster(3, workdir=workdir / "nats")
        self.stack.callback(self.cluster.stop)
        self.proxies: dict[str, BlackHoleProxy] = {}
        if cut_node:
            self._proxy_last_node()
        else:
            self.cluster.configure()
        self.cluster.launch()
        self.db = self.stack.enter_context(scratch_database())
        self.stations = [StationConfig(device_id=f"chaos-{i}", site_id="chaos") for i in range(STATIONS)]
        self.keys = [DeviceKey.load_or_create(workdir / f"{s.device_id}.key") for s in self.stations]
        self.receiver_key = DeviceKey.load_or_create(workdir / "receiver.key")
        self.receivers: list[Any] = []
        self.uplinks: list[Uplink] = []
        self.extra_trust: list[dict[str, Any]] = []
        self.extra_ledgers: list[Callable[[], Any]] = []

    def _proxy_last_node(self) -> None:
        """Every link of the last node through a proxy: routes both ways, its MQTT and client ports."""
        cut = self.cluster.nodes[-1]
        routes: dict[tuple[str, str], BlackHoleProxy] = {}
        for node in self.cluster.nodes:
            for peer in self.cluster.nodes:
                if peer is not node and cut in (node, peer):
                    routes[node.name, peer.name] = BlackHoleProxy(peer.cluster_port)

        def route_port(node: Node, peer: Node) -> int:
            proxy = routes.get((node.name, peer.name))
            return proxy.port if proxy else peer.cluster_port

        self.cluster.configure(CUT_TEMPLATE, route_port=route_port)
        self.proxies = {f"route-{a}-{b}": p for (a, b), p in routes.items()}
        self.proxies["mqtt"] = BlackHoleProxy(cut.mqtt_port)
        self.proxies["client"] = BlackHoleProxy(cut.client_port)

    @property
    def mqtt_hosts(self) -> tuple[str, ...]:
        """The nodes' MQTT listeners as clients reach them (the cut node through its proxy)."""
        hosts = list(self.cluster.mqtt_hosts)
        if "mqtt" in self.proxies:
            hosts[-1] = f"127.0.0.1:{self.proxies['mqtt'].port}"
        return tuple(hosts)

    @property
    def nats_urls(self) -> list[str]:
        urls = self.cluster.urls
        if "client" in self.proxies:
            urls[-1] = f"nats://127.0.0.1:{self.proxies['client'].port}"
        return urls

    def start(self) -> None:
        """Fill the outboxes, start both receivers, then the stations (two on each node)."""
        for station, key in zip(self.stations, self.keys, strict=True):
            outbox = Outbox(self.workdir / f"{station.device_id}.db", signer=key)
            fill(outbox, self.records, station)
            outbox.close()
        entries = [
            k.trust_entry(s.site_id, s.device_id) for s, k in zip(self.stations, self.keys, strict=True)
        ]
        trust = self.workdir / "trust.json"
        trust.write_text(json.dumps({"keys": entries + self.extra_trust}))
        for n in range(2):
            self.receivers.append(self.start_receiver(trust, n))
        hosts = self.mqtt_hosts
        for index, (station, key) in enumerate(zip(self.stations, self.keys, strict=True)):
            at = index % 3
            sync = SyncConfig(
                hosts=hosts[at:] + hosts[:at],
                batch_size=100,
                keepalive_s=3,
                ack_timeout_s=10,
                subscribe_qos=0,
                receiver_keys=(self.receiver_key.public_b64,),
            )
            outbox = Outbox(self.workdir / f"{station.device_id}.db")
            self.stack.callback(outbox.close)
            self.uplinks.append(Uplink(outbox, sync, station, signer=key).start())
            self.stack.callback(self.uplinks[-1].stop)

    def start_receiver(self, trust: Path, n: int) -> Any:
        urls = self.nats_urls
        options = (
            "--db", self.db, "--trust", str(trust), "--key", str(self.receiver_key.path),
            "--jetstream", ",".join(urls[n % 3 :] + urls[: n % 3]), "--hosts", ",".join(self.mqtt_hosts),
            "--ack-wait", "3",
        )  # fmt: skip
        return spawn_receiver(options, self.workdir / f"receiver-{n}-{time.monotonic_ns()}.ready")

    def drain_a_third(self) -> float:
        """Start everything and let a third of the backlog through; returns when it started."""
        started = time.monotonic()
        self.start()
        wait(lambda: self.acked() >= self.records * STATIONS // 3, 120)
        return started

    def pending(self) -> int:
        """Records the stations hold that no receiver has acked yet."""
        return sum(u.outbox.backlog()["pending"] for u in self.uplinks)

    def commit_one(self, uplink: Uplink) -> Callable[[], bool]:
        """A parcel committed at this station now (as the station would, while its uplink runs);
        returns whether the receivers have acked it yet."""
        key = self.keys[self.stations.index(uplink.station)]
        path = self.workdir / f"{uplink.station.device_id}.db"
        outbox = Outbox(path, signer=key)
        try:
            seq = outbox.append(lambda seq: synthetic_record(seq, uplink.station))["seq"]
        finally:
            outbox.close()
        uplink.notify()

        def acked() -> bool:
            with sqlite3.connect(path) as conn:
                found = conn.execute("SELECT state FROM acks WHERE seq = ?", (seq,)).fetchone()
            return found is not None and found[0] == "acked"

        return acked

    def acked(self, uplinks: list[Uplink] | None = None) -> int:
        return sum(u.records_acked for u in (self.uplinks if uplinks is None else uplinks))

    def on_node(self, index: int) -> list[Uplink]:
        """The stations connected to node ``index`` now."""
        host = self.mqtt_hosts[index]
        return [u for u in self.uplinks if u.mqtt.broker == host and u.mqtt.connected.is_set()]

    def finish(self, name: str, started: float, **figures: Any) -> dict[str, Any]:
        """Wait for every record to be acked, stop everything, check delivery per device."""
        done = wait(lambda: self.pending() == 0, 180)
        resent = sum(u.copies_sent_again for u in self.uplinks)
        seconds = time.monotonic() - started
        for uplink in self.uplinks:
            uplink.stop()
        for receiver in self.receivers:
            stop_process(receiver)
        ledgers = []
        for station in self.stations:
            outbox = Outbox(self.workdir / f"{station.device_id}.db")
            ledgers.append(ledger_of(station.site_id, station.device_id, outbox.sequence()))
            outbox.close()
        ledgers += [make() for make in self.extra_ledgers]
        store = open_store(self.db)
        try:
            # The stream's redeliveries (a receiver killed, an ack lost with a node) are copies too.
            redelivered = store.stats().get("redelivered", 0)
            report = check_delivery(store, ledgers, resent=resent, injected=redelivered)
        finally:
            store.close()
        figures |= {"all_acked": done, "seconds": round(seconds, 2)}
        return {"scenario": name, **report.as_json(), "redelivered": redelivered, **figures}

    def close(self) -> None:
        for receiver in self.receivers:
            if receiver.poll() is None:
                receiver.kill()
        for proxy in self.proxies.values():
            proxy.close()
        self.stack.close()


def _first_ack_after(rig: Rig, moved: list[Uplink], fault_at: float) -> float | None:
    """Seconds from the fault to the first ack of a parcel committed just after it, at a station
    that had to move (what an operator waits for before the customs link shows OK again)."""
    committed = [rig.commit_one(uplink) for uplink in moved]
    if not wait(lambda: any(acked() for acked in committed), 120):
        return None
    return round(time.monotonic() - fault_at, 2)


def node_kill9(rig: Rig) -> dict[str, Any]:
    started = rig.drain_a_third()
    moved = rig.on_node(0)
    fault_at = time.monotonic()
    rig.cluster.kill(rig.cluster.nodes[0])
    first_ack_s = _first_ack_after(rig, moved, fault_at)
    return rig.finish(
        "cluster_node_kill9", started, stations_moved=len(moved), first_ack_after_failover_s=first_ack_s
    )


def receiver_kill9(rig: Rig) -> dict[str, Any]:
    started = rig.drain_a_third()
    victim = rig.receivers[0]
    victim.kill()  # SIGKILL: the batches it pulled and did not ack stay in the stream
    victim.wait()
    return rig.finish("cluster_receiver_kill9", started)


def partition(rig: Rig) -> dict[str, Any]:
    started = rig.drain_a_third()
    moved = rig.on_node(2)
    fault_at = time.monotonic()
    for proxy in rig.proxies.values():
        proxy.partitioned.set()
    first_ack_s = _first_ack_after(rig, moved, fault_at)
    time.sleep(max(0.0, fault_at + 10 - time.monotonic()))  # cut off for 10 s, then healed
    for proxy in rig.proxies.values():
        proxy.heal()
    return rig.finish(
        "cluster_partition", started, stations_moved=len(moved), first_ack_after_failover_s=first_ack_s
    )


def split(rig: Rig) -> dict[str, Any]:
    """The last node cut off from its peers only: its stations still reach it, but nothing they
    publish there is stored and no ack comes back; their overdue acks move them on."""
    started = rig.drain_a_third()
    moved = rig.on_node(2)
    fault_at = time.monotonic()
    routes = [proxy for name, proxy in rig.proxies.items() if name.startswith("route-")]
    for proxy in routes:
        proxy.partitioned.set()
    first_ack_s = _first_ack_after(rig, moved, fault_at)
    time.sleep(max(0.0, fault_at + 15 - time.monotonic()))
    for proxy in routes:
        proxy.heal()
    return rig.finish(
        "cluster_split", started, stations_moved=len(moved), first_ack_after_failover_s=first_ack_s
    )


def downlink_hold(rig: Rig) -> dict[str, Any]:
    """A real station on node 1; node 1 dies; a hold sent at once reaches it through another node."""
    started = time.monotonic()
    with agent_station(rig) as agent:
        rig.start()
        assert wait(agent.uplink.mqtt.connected.is_set, 30), "station never connected"
        customs = DeviceKey.load_or_create(rig.workdir / "customs.key")
        rig.cluster.kill(rig.cluster.nodes[0])
        sent_at = time.monotonic()
        tracking = "1Z5R89390357567127"
        ack = send_downlink(
            new_message("hold", tracking_number=tracking, reason="chaos: sent while a node is down"),
            site=agent.config.station.site_id,
            device=agent.config.station.device_id,
            endpoints=parse_endpoints(rig.mqtt_hosts, 1883),
            wait_s=60,
            key=customs,
            subscribe_qos=0,
        )
        hold_s = round(time.monotonic() - sent_at, 2)
        held = ack is not None and tracking in {h.tracking_number for h in agent.outbox.holds()}
        node_after = agent.uplink.mqtt.broker
        wait(lambda: agent.outbox.backlog()["pending"] == 0, 120)  # its downlink record too
    return rig.finish(
        "cluster_downlink_hold",
        started,
        hold_acked=ack is not None,
        hold_in_force=held,
        hold_reached_station_s=hold_s,
        station_node_before=rig.cluster.nodes[0].mqtt,
        station_node_after=node_after,
    )


@contextlib.contextmanager
def agent_station(rig: Rig) -> Iterator[Agent]:
    """``prescreen run``'s Agent with sim devices, listing the cluster's nodes from node 1."""
    work = rig.workdir / "agent"
    work.mkdir()
    (work / "orders.ndjson").write_text("")
    customs = DeviceKey.load_or_create(rig.workdir / "customs.key")
    where = types.SimpleNamespace(host="127.0.0.1", port=1883)
    config = demo_config(
        work, "sim://mt-sics", "sim://scanner", where, customs=customs, receiver=rig.receiver_key
    )  # type: ignore[arg-type]
    config = cfg.replace(config, "station", device_id="chaos-agent", site_id="chaos")
    config = cfg.replace(config, "sync", hosts=rig.mqtt_hosts, keepalive_s=3, subscribe_qos=0)
    key = DeviceKey.load_or_create(work / "device.key")
    rig.extra_trust.append(key.trust_entry("chaos", "chaos-agent"))

    def ledger() -> Any:
        outbox = Outbox(work / "outbox.db")
        try:
            return ledger_of("chaos", "chaos-agent", outbox.sequence())
        finally:
            outbox.close()

    agent = Agent(config).start()
    try:
        yield agent
    finally:
        agent.stop()
        rig.extra_ledgers.append(ledger)


SCENARIOS: dict[str, tuple[Callable[[Rig], dict[str, Any]], bool]] = {
    "cluster_node_kill9": (node_kill9, False),
    "cluster_receiver_kill9": (receiver_kill9, False),
    "cluster_partition": (partition, True),
    "cluster_split": (split, True),
    "cluster_downlink_hold": (downlink_hold, False),
}


def run(records: int, only: list[str] | None = None) -> list[dict[str, Any]]:
    results = []
    with tempfile.TemporaryDirectory(prefix="prescreen-chaos-cluster-") as tmp:
        for name, (scenario, cut) in SCENARIOS.items():
            if only and name not in only:
                continue
            workdir = Path(tmp) / name
            workdir.mkdir()
            rig = Rig(workdir, records, cut_node=cut)
            try:
                results.append(scenario(rig))
            finally:
                rig.close()
            print(json.dumps(results[-1]), flush=True)
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=3000, help="committed records per station")
    parser.add_argument("--smoke", action="store_true", help="300 records per station")
    parser.add_argument("--log-level", default="error", help="the scenario's own log lines (stations, agent)")
    parser.add_argument("--only", action="append", choices=list(SCENARIOS), help="run this scenario only")
    args = parser.parse_args()
    if (why := NatsCluster.available()) is not None:
        print(f"chaos_cluster: skipped: {why}", file=sys.stderr)
        return
    configure(args.log_level)
    results = run(300 if args.smoke else args.records, args.only)
    bad = [
        f"{r['scenario']}: {'; '.join(r['problems']) or 'not all acked'}"
        for r in results
        if not (r["exactly_once"] and r["all_acked"])
    ]
    if bad:
        print(f"chaos_cluster: delivery check failed in {' | '.join(bad)}", file=sys.stderr)
        sys.exit(1)


if __name__ == "__main__":
    main()
