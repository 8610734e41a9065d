"""A NATS cluster on this machine (JetStream + its MQTT gateway) for the fleet bench and the tests.

Why NATS: Mosquitto has no clustering, so one dead broker node stops every record and every hold.
NATS (Debian's ``nats-server``) replicates JetStream streams by Raft and speaks MQTT 3.1.1 with
QoS 1 on top of them, so stations keep their MQTT uplink and receivers read a replicated stream.
Each node here gets free loopback ports for clients, routes, MQTT and monitoring; a node can be
killed (SIGKILL) and started again on the same ports and store, as an operator's node would.
"""

from __future__ import annotations

import contextlib
import json
import logging
import shutil
import signal
import subprocess
import tempfile
import time
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from prescreen.core.errors import BrokerUnavailable
from prescreen.sync.broker import end_process, free_port, wait_listening

log = logging.getLogger("prescreen.sync")
RoutePort = Callable[["Node", "Node"], int]

# One node's configuration. {placeholders} are filled per node; the tests keep theirs in
# tests/nats/node.conf. The MQTT gateway needs a server name and JetStream. Its own streams
# (sessions, QoS 1 messages) get 3 replicas explicitly: left to NATS 2.9 they are sized by the
# peers it knows when the first MQTT client connects, and a stream made with 2 replicas stops
# every MQTT connect when one of its two nodes dies (measured: no station reconnected for 60 s).
NODE_TEMPLATE = """\
server_name: {name}
listen: 127.0.0.1:{client_port}
http: 127.0.0.1:{http_port}
max_payload: 8MB
jetstream {{
  store_dir: "{store_dir}"
  max_memory_store: 256MB
  max_file_store: 4GB
}}
cluster {{
  name: prescreen
  listen: 127.0.0.1:{cluster_port}
  routes: [{routes}]
  no_advertise: true
}}
mqtt {{
  listen: 127.0.0.1:{mqtt_port}
  stream_replicas: 3
  ack_wait: "10s"
}}
"""


@dataclass
class Node:
    """One cluster node: its ports, its store and, while it runs, its process."""

    name: str
    client_port: int
    cluster_port: int
    mqtt_port: int
    http_port: int
    config: Path
    process: subprocess.Popen[bytes] | None = field(default=None, repr=False)

    @property
    def url(self) -> str:
        """The node's NATS client URL."""
        return f"nats://127.0.0.1:{self.client_port}"

    @property
    def mqtt(self) -> str:
        """The node's MQTT listener as ``host:port`` (a ``[sync] hosts`` entry)."""
        return f"127.0.0.1:{self.mqtt_port}"


class NatsCluster:
    """``size`` nats-server processes forming one JetStream cluster on 127.0.0.1.

    :meth:`start` returns once every node listens and JetStream has a meta leader; :meth:`stop`
    ends them and removes the stores unless they live in a ``workdir`` the caller keeps.
    """

    def __init__(self, size: int = 3, *, workdir: Path | None = None) -> None:
        self._tmp = None if workdir else tempfile.TemporaryDirectory(prefix="prescreen-nats-")
        self.workdir = Path(workdir or self._tmp.name)  # type: ignore[union-attr]
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.nodes = [self._node(i) for i in range(1, size + 1)]

    def configure(self, template: str = NODE_TEMPLATE, route_port: RoutePort | None = None) -> None:
        """Write each node's configuration. ``route_port(a, b)`` is the port node ``a`` dials to
        reach node ``b`` (default: b's own cluster port; a test puts a TCP proxy there to cut
        the links of one node)."""
        for node in self.nodes:
            routes = ", ".join(
                f"nats-route://127.0.0.1:{route_port(node, peer) if route_port else peer.cluster_port}"
                for peer in self.nodes
                if peer is not node
            )
            node.config.write_text(
                template.format(
                    name=node.name,
                    client_port=node.client_port,
                    cluster_port=node.cluster_port,
                    mqtt_port=node.mqtt_port,
                    http_port=node.http_port,
                    store_dir=self.workdir / node.name,
                    routes=routes,
                )
            )

    def _node(self, index: int) -> Node:
        name = f"n{index}"
        client, cluster, mqtt, http = (free_port() for _ in range(4))
        return Node(name, client, cluster, mqtt, http, config=self.workdir / f"{name}.conf")

    @staticmethod
    def available() -> str | None:
        """None when ``nats-server`` can run here, else why not (for a test's skip reason)."""
        if shutil.which("nats-server") or Path("/usr/sbin/nats-server").exists():
            return None
        return "nats-server is not installed (apt-get install nats-server; .ci/system-deps.sh does it)"

    @classmethod
    def start(
        cls, size: int = 3, *, workdir: Path | None = None, template: str = NODE_TEMPLATE
    ) -> NatsCluster:
        """Start every node and wait until the cluster serves JetStream.

        Raises:
            BrokerUnavailable: nats-server is missing, or the cluster did not form in 30 s.
        """
        cluster = cls(size, workdir=workdir)
        cluster.configure(template)
        return cluster.launch()

    def launch(self) -> NatsCluster:
        """Start every configured node and wait until the cluster serves JetStream.

        Raises:
            BrokerUnavailable: nats-server is missing, or the cluster did not form in 30 s.
        """
        why = self.available()
        if why:
            raise BrokerUnavailable(why)
        try:
            for node in self.nodes:
                self.start_node(node, wait=False)
            self.wait_ready(30)
        except BaseException:
            self.stop()
            raise
        return self

    def start_node(self, node: Node, *, wait: bool = True) -> None:
        """Start (or start again) one node on its ports and store."""
        binary = shutil.which("nats-server") or "/usr/sbin/nats-server"
        logfile = (self.workdir / f"{node.name}.log").open("ab")
        node.process = subprocess.Popen(
            [binary, "-c", str(node.config)], stdout=logfile, stderr=subprocess.STDOUT
        )
        logfile.close()
        if wait and not wait_listening("127.0.0.1", node.mqtt_port, 15):
            raise BrokerUnavailable(f"NATS node {node.name} did not listen again within 15 s")

    def kill(self, node: Node) -> None:
        """SIGKILL one node (no goodbye to clients or peers: a crash or a pulled power cord)."""
        if node.process is not None:
            node.process.send_signal(signal.SIGKILL)
            node.process.wait()
            node.process = None

    def wait_ready(self, timeout: float) -> None:
        """Until every running node listens for MQTT, all agree on a JetStream meta leader, and
        the leader sees every running peer current: only then are streams created with all their
        replicas.

        Raises:
            BrokerUnavailable: not within ``timeout`` seconds.
        """
        deadline = time.monotonic() + timeout
        while not self._formed():
            if time.monotonic() > deadline:
                raise BrokerUnavailable(f"NATS cluster not ready within {timeout} s (see {self.workdir})")
            time.sleep(0.2)
        log.info("nats cluster ready", extra={"nodes": len(self.nodes), "mqtt": ",".join(self.mqtt_hosts)})

    def _formed(self) -> bool:
        running = [n for n in self.nodes if n.process is not None]
        metas = {n.name: self._meta(n) for n in running}
        leaders = {m.get("leader") for m in metas.values()}
        if len(leaders) != 1 or not all(wait_listening("127.0.0.1", n.mqtt_port, 0.2) for n in running):
            return False
        leader = metas.get(str(leaders.pop()), {})
        current = [p for p in leader.get("replicas") or () if p.get("current")]
        return len(current) + 1 >= len(running)

    @staticmethod
    def _meta(node: Node) -> dict[str, Any]:
        url = f"http://127.0.0.1:{node.http_port}/jsz"
        # The node's own monitor port on loopback.
        with contextlib.suppress(OSError, ValueError), urllib.request.urlopen(url, timeout=1) as response:
            meta: dict[str, Any] = json.load(response).get("meta_cluster", {})
            return meta
        return {}

    @property
    def urls(self) -> list[str]:
        """Every node's NATS client URL (what a JetStream receiver is given)."""
        return [n.url for n in self.nodes]

    @property
    def mqtt_hosts(self) -> tuple[str, ...]:
        """Every node's MQTT listener, ``host:port``: a station's ``[sync] hosts``."""
        return tuple(n.mqtt for n in self.nodes)

    def stop(self) -> None:
        """Stop every node (idempotent) and remove a temporary store."""
        for node in self.nodes:
            if node.process is not None:
                end_process(node.process, 10)
                node.process = None
        if self._tmp is not None:
            self._tmp.cleanup()
            self._tmp = None
