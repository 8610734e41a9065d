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
from dataclasses import dataclass, field
from pathlib import Path

from prescreen.core.errors import BrokerUnavailable
from prescreen.sync.broker import free_port, wait_listening

log = logging.getLogger("prescreen.sync")

# One node's configuration. {placeholders} are filled per node; the tests keep theirs in
# tests/nats/node.conf. The MQTT gateway needs a server name and JetStream; its own streams
# (sessions, QoS 1 messages) are replicated like ours.
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
}}
mqtt {{
  listen: 127.0.0.1:{mqtt_port}
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

    def __init__(self, size: int = 3, *, workdir: Path | None = None, template: str = NODE_TEMPLATE) -> None:
        self._tmp = None if workdir else tempfile.TemporaryDirectory(prefix="prescreen-nats-")
        self.workdir = Path(workdir or self._tmp.name)  # type: ignore[union-attr]
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.nodes = [self._node(i) for i in range(1, size + 1)]
        routes = ", ".join(f"nats-route://127.0.0.1:{n.cluster_port}" for n in self.nodes)
        for node in self.nodes:
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
        why = cls.available()
        if why:
            raise BrokerUnavailable(why)
        cluster = cls(size, workdir=workdir, template=template)
        try:
            for node in cluster.nodes:
                cluster.start_node(node, wait=False)
            cluster.wait_ready(30)
        except BaseException:
            cluster.stop()
            raise
        return cluster

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
        """Until every running node listens and reports a JetStream meta leader.

        Raises:
            BrokerUnavailable: not within ``timeout`` seconds.
        """
        deadline = time.monotonic() + timeout
        for node in self.nodes:
            if node.process is None:
                continue
            while not (wait_listening("127.0.0.1", node.mqtt_port, 0.2) and self._has_leader(node)):
                if time.monotonic() > deadline:
                    raise BrokerUnavailable(f"NATS cluster not ready within {timeout} s (see {self.workdir})")
                time.sleep(0.2)
        log.info("nats cluster ready", extra={"nodes": len(self.nodes), "mqtt": ",".join(self.mqtt_hosts)})

    @staticmethod
    def _has_leader(node: Node) -> bool:
        url = f"http://127.0.0.1:{node.http_port}/jsz"
        with contextlib.suppress(OSError, ValueError):
            with urllib.request.urlopen(url, timeout=1) as response:  # the node's own monitor port
                leader = json.load(response).get("meta_cluster", {}).get("leader")
            return bool(leader)
        return False

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
                node.process.terminate()
                with contextlib.suppress(subprocess.TimeoutExpired):
                    node.process.wait(timeout=10)
                if node.process.poll() is None:
                    node.process.kill()
                    node.process.wait()
                node.process = None
        if self._tmp is not None:
            self._tmp.cleanup()
            self._tmp = None
