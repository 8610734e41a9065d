"""Prometheus metrics for one agent: what site IT graphs and alerts on.

Why a registry per agent rather than the global default: tests and the demo run several agents
(and a receiver) in one process; each must report only its own figures. Gauges that describe
state (backlog, device up, broker connected) are computed when scraped, so they can never go stale.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from typing import Any

from prescreen.core.records import epoch_s
from prescreen.ops.health import LEVELS
from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

LATENCY_BUCKETS = (0.001, 0.002, 0.003, 0.005, 0.0075, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1.0)


def _age_s(timestamp: str | None) -> float:
    if not timestamp:
        return 0.0
    return max(0.0, time.time() - epoch_s(timestamp))


class _StateCollector(Collector):
    """Reads the agent's status at scrape time."""

    def __init__(self, status: Callable[[], dict[str, Any]]) -> None:
        self._status = status

    def collect(self) -> Any:
        """Every state metric, from one status read (so they agree with each other)."""
        status = self._status()
        yield from _backlog(status["backlog"])
        yield from _devices(status["devices"])
        yield from _broker(status["broker"])
        yield from _health(status)
        yield from _outbox(status["outbox"])


def _backlog(backlog: dict[str, Any]) -> Iterator[Metric]:
    yield GaugeMetricFamily(
        "prescreen_outbox_backlog_records",
        "Committed records not yet acked by the receiver",
        backlog["pending"],
    )
    yield GaugeMetricFamily(
        "prescreen_sync_lag_seconds",
        "Age of the oldest record not yet acked (0 when caught up)",
        _age_s(backlog["oldest_pending_at"]),
    )


def _devices(devices: dict[str, Any]) -> Iterator[Metric]:
    up = GaugeMetricFamily("prescreen_device_up", "1 while the device answers", labels=["device"])
    reconnects = GaugeMetricFamily(
        "prescreen_device_reconnects", "Times the device came back after being lost", labels=["device"]
    )
    for name, device in devices.items():
        up.add_metric([name], 1.0 if device["up"] else 0.0)
        reconnects.add_metric([name], device["reconnects"])
    yield up
    yield reconnects


def _broker(broker: dict[str, Any]) -> Iterator[Metric]:
    yield GaugeMetricFamily(
        "prescreen_broker_connected", "1 while connected", 1.0 if broker["connected"] else 0
    )
    yield GaugeMetricFamily(
        "prescreen_broker_reconnects",
        "MQTT connections made since start, minus the first",
        broker["reconnects"],
    )
    for name, what in (("downlink_refused", "downlink messages"), ("acks_refused", "acks")):
        refused = CounterMetricFamily(
            f"prescreen_{name}",
            f"{what} refused: not signed by a trusted key, stale or misdirected",
            labels=["why"],
        )
        for why, count in sorted(broker[name].items()):
            refused.add_metric([why], count)
        yield refused


def _health(status: dict[str, Any]) -> Iterator[Metric]:
    yield GaugeMetricFamily(
        "prescreen_healthy", "1 while every health condition is ok", 1.0 if status["healthy"] else 0
    )
    conditions = GaugeMetricFamily(
        "prescreen_health_condition",
        "Each health condition's level: 0 ok, 1 degraded, 2 down",
        labels=["condition"],
    )
    for condition in status["conditions"]:
        conditions.add_metric([condition["name"]], float(LEVELS.index(condition["level"])))
    yield conditions


def _outbox(outbox: dict[str, Any]) -> Iterator[Metric]:
    yield GaugeMetricFamily("prescreen_outbox_rows", "Records in the outbox (any state)", outbox["rows"])
    yield GaugeMetricFamily("prescreen_outbox_megabytes", "Size of the outbox's records", outbox["mb"])
    yield GaugeMetricFamily(
        "prescreen_disk_free_megabytes", "Free space where the outbox lives", outbox["free_mb"]
    )
    yield GaugeMetricFamily(
        "prescreen_outbox_shedding",
        "1 while the disk is at its floor and low-priority records are refused",
        1.0 if outbox["shedding"] else 0,
    )


class AgentMetrics:
    """The counters the station updates, plus state read at scrape time."""

    def __init__(self, status: Callable[[], dict[str, Any]]) -> None:
        self.registry = CollectorRegistry()
        self.verdicts = Counter(
            "prescreen_verdicts", "Verdicts committed, by kind", ["verdict"], registry=self.registry
        )
        self.rule_hits = Counter(
            "prescreen_rule_hits", "Findings in committed verdicts, by code", ["code"], registry=self.registry
        )
        self.latency = Histogram(
            "prescreen_scan_to_verdict_seconds",
            "Scan and stable weight in, committed verdict out (agent's own time)",
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.not_recorded = Counter(
            "prescreen_verdicts_not_recorded", "Verdicts that could not be committed", registry=self.registry
        )
        self.registry.register(_StateCollector(status))

    def observe(self, record: dict[str, Any] | None, latency_ms: float | None) -> None:
        """Count one station event (``record`` None means it was not recorded)."""
        if record is None:
            self.not_recorded.inc()
            return
        screening = record["screening"]
        self.verdicts.labels(screening["verdict"]).inc()
        for reason in screening["reasons"]:
            self.rule_hits.labels(reason["code"]).inc()
        if latency_ms is not None:
            self.latency.observe(latency_ms / 1000)

    def exposition(self) -> bytes:
        """The Prometheus text format."""
        return generate_latest(self.registry)
