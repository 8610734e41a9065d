"""Broker failover at the station: an ordered list of nodes, tried in turn with the backoff."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import httpx
import pytest
from prescreen.core.errors import ConfigError, SyncError
from prescreen.ops import config as cfg
from prescreen.packing.app import Agent
from prescreen.packing.service import status_line
from prescreen.sim.demo_station import demo_config
from prescreen.sync.broker import LocalBroker, free_port
from prescreen.sync.mqtt import MqttConnection, parse_endpoints


def test_broker_list_entries_take_the_default_port_where_none_is_given() -> None:
    expected = (("a", 8883), ("b", 1883), ("c.example", 1))
    assert parse_endpoints(("a:8883", "b", "c.example:1"), 1883) == expected
    for bad in ("a:x", ":8883", "a:0", "a:70000"):
        with pytest.raises(SyncError, match="broker"):
            parse_endpoints((bad,), 1883)


def test_config_takes_a_list_of_nodes_and_names_a_bad_one() -> None:
    sync = cfg.check_value(cfg.SyncConfig, "hosts", ["a:8883", "b:8883", "c"])
    assert sync == ("a:8883", "b:8883", "c")
    with pytest.raises(ConfigError, match=r"sync\.hosts"):
        cfg.check_value(cfg.SyncConfig, "hosts", ["a:8883", "not a host"])


@pytest.mark.slow
def test_a_dead_node_is_skipped_and_a_lost_node_hands_over_to_the_next(
    wait_until: Callable[..., bool],
) -> None:
    first, second = LocalBroker.start(), LocalBroker.start()
    dead = free_port()  # nothing listens there
    connection = MqttConnection(
        client_id="failover-test",
        host="unused",
        port=1,
        endpoints=(("127.0.0.1", dead), (first.host, first.port), (second.host, second.port)),
    ).start()
    try:
        assert connection.wait_connected(10)
        assert connection.broker == f"127.0.0.1:{first.port}"  # the dead node cost one attempt
        first.stop()
        assert wait_until(lambda: connection.connected.is_set() and connection.port == second.port, 10)
        assert connection.failovers == 1
    finally:
        connection.stop()
        first.stop()
        second.stop()


@pytest.mark.slow
def test_status_and_the_station_page_say_which_node_the_station_is_on(
    tmp_path: Path, broker: LocalBroker, wait_until: Callable[..., bool]
) -> None:
    (tmp_path / "orders.ndjson").write_text("")
    config = demo_config(tmp_path, "sim://mt-sics", "sim://scanner", broker)
    dead = f"127.0.0.1:{free_port()}"
    config = cfg.replace(config, "sync", hosts=(dead, f"{broker.host}:{broker.port}"))
    agent = Agent(config).start()
    try:
        assert wait_until(lambda: agent.status()["broker"]["connected"], 10)
        status = agent.status()
        assert status["broker"]["nodes"] == [dead, f"{broker.host}:{broker.port}"]
        assert (status["broker"]["host"], status["broker"]["port"]) == (broker.host, broker.port)
        assert f"broker {broker.host}:{broker.port} connected" in status_line(status)
        view = httpx.get(agent.http.url + "/station/snapshot", timeout=5).json()
        assert view["status"]["broker_node"] == f"{broker.host}:{broker.port}"
    finally:
        agent.stop()


def test_a_station_leaves_a_node_that_answers_but_acks_nothing(wait_until: Callable[..., bool]) -> None:
    """fail_over (the uplink calls it when acks are overdue): the next node, or nothing to do
    without one."""
    first, second = LocalBroker.start(), LocalBroker.start()
    cluster = MqttConnection(
        client_id="failover-acks",
        host="unused",
        port=1,
        endpoints=((first.host, first.port), (second.host, second.port)),
    ).start()
    alone = MqttConnection(client_id="failover-alone", host=first.host, port=first.port).start()
    try:
        assert cluster.wait_connected(10)
        assert alone.wait_connected(10)
        assert cluster.fail_over("acks overdue")
        assert wait_until(lambda: cluster.connected.is_set() and cluster.port == second.port, 10)
        assert cluster.failovers == 1
        assert not alone.fail_over("acks overdue")  # one broker: it stays
        assert alone.connected.is_set()
    finally:
        cluster.stop()
        alone.stop()
        first.stop()
        second.stop()
