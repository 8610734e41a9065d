"""Health telemetry: sent at QoS 0 while the broker is there, never queued in the outbox."""

from __future__ import annotations

import json
import queue
from pathlib import Path

from prescreen.ops import config as cfg
from prescreen.packing.app import Agent
from prescreen.sim.demo_station import demo_config
from prescreen.sync.broker import LocalBroker
from prescreen.sync.mqtt import MqttConnection
from prescreen.sync.topics import health_topic


def test_the_agent_reports_its_health_without_touching_the_outbox(
    tmp_path: Path, broker: LocalBroker
) -> None:
    (tmp_path / "orders.ndjson").write_text("")
    config = demo_config(tmp_path, "sim://mt-sics", "sim://scanner", broker)
    config = cfg.replace(config, "outbox", path=str(tmp_path / "outbox.db"), housekeeping_s=0.2)
    topic = health_topic(config.sync.topic_prefix, config.station.site_id, config.station.device_id)
    got: queue.Queue[bytes] = queue.Queue()
    listener = MqttConnection(
        client_id="health-listener",
        host=broker.host,
        port=broker.port,
        on_message=lambda t, p: got.put(p),
        subscriptions=(topic,),
    ).start()
    assert listener.subscribed.wait(5)
    agent = Agent(config).start()
    try:
        health = json.loads(got.get(timeout=10))
        assert health["device_id"] == config.station.device_id
        assert health["model"]["version"] == "risk-v2"
        assert set(health["outbox"]) == {"rows", "mb", "free_mb", "shedding"}
        assert agent.outbox.counts() == {}  # nothing of it was committed
    finally:
        agent.stop()
        listener.stop()
