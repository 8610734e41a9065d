"""What a running agent reports about itself: its health conditions, ``status`` (the page, ``prescreen
status``, the health message upstream) and the ``/healthz`` and ``/livez`` answers.

Kept apart from :mod:`prescreen.packing.app`, which assembles and runs the parts: this module only
reads them, so what is reported can change without touching how the station runs.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from prescreen._version import __version__
from prescreen.core.records import epoch_s
from prescreen.drivers.scales.reader import ScaleReader
from prescreen.drivers.scanners.base import ScannerBase
from prescreen.ops.health import Level, clock_condition, worst
from prescreen.web.server import json_response

if TYPE_CHECKING:
    from prescreen.packing.app import Agent


def model_condition(agent: Agent) -> tuple[Level, str]:
    screener, quarantine = agent.station.screener, agent.station.guard.quarantine
    if screener.quarantined and quarantine is not None:
        return "degraded", quarantine.detail()
    if screener.model is None:
        return "ok", "rules only (no model configured or loadable)"
    return "ok", f"model {screener.model.version}, review line {screener.threshold:.3f}"


def watch_conditions(agent: Agent) -> None:
    """The agent's own conditions, evaluated by its health set (others add theirs with
    ``agent.health.report``)."""
    grace = agent.config.health

    def pipeline() -> tuple[Level, str]:
        dead = agent.liveness()
        return ("down", "; ".join(dead)) if dead else ("ok", "screening")

    def broker() -> tuple[Level, str]:
        mqtt = agent.uplink.mqtt
        if mqtt.connected.is_set():
            return "ok", f"connected to {mqtt.broker}"
        why = f"refused: {mqtt.refused}" if mqtt.refused else "unreachable"
        tried = "" if len(mqtt.endpoints) == 1 else f" (trying each of {len(mqtt.endpoints)} nodes)"
        pending = agent.outbox.backlog()["pending"]
        return "degraded", f"broker {mqtt.broker} {why}{tried}; {pending} record(s) waiting, none lost"

    def device(name: str, driver: ScaleReader | ScannerBase) -> Callable[[], tuple[Level, str]]:
        def probe() -> tuple[Level, str]:
            if driver.up:
                return "ok", f"{driver.url} up"
            state = driver.status()
            return "degraded", f"{name} missing: {state['last_error'] or driver.url + ' silent'}"

        return probe

    def outbox() -> tuple[Level, str]:
        report = agent.housekeeping
        if report.alarm:
            return "degraded", report.alarm
        if report.shed:
            return (
                "degraded",
                f"disk at its floor ({report.free_mb:.0f} MB free): refusing {', '.join(report.shed)}",
            )
        return "ok", f"{report.rows} rows, {report.free_mb:.0f} MB free"

    (newest_at,) = agent.outbox.rows("SELECT MAX(created_at) FROM records")[0]
    newest = epoch_s(newest_at) if newest_at else None  # the clock must not be behind it
    agent.health.watch("pipeline", pipeline)
    agent.health.watch("broker", broker, grace_s=grace.broker_grace_s)
    agent.health.watch("scanner", device("scanner", agent.scanner), grace_s=grace.device_grace_s)
    agent.health.watch("scale", device("scale", agent.scale), grace_s=grace.device_grace_s)
    agent.health.watch("outbox", outbox)
    agent.health.watch("clock", lambda: clock_condition(time.time(), newest))
    agent.health.watch("model", lambda: model_condition(agent))


def status_of(agent: Agent) -> dict[str, Any]:
    """Devices, broker, backlog, last ack, model and uptime: ``prescreen status --json``."""
    model = agent.screener.model
    quarantine = agent.station.guard.quarantine if agent.screener.quarantined else None
    conditions = agent.health.conditions()
    level = worst([c.level for c in conditions])
    return {
        "device_id": agent.config.station.device_id,
        "site_id": agent.config.station.site_id,
        "version": __version__,
        "uptime_s": round(time.monotonic() - agent.started_at, 1),
        "health": level,
        "healthy": level == "ok",
        "problems": [f"{c.name}: {c.detail}" for c in conditions if c.level != "ok"],
        "conditions": [c.as_json() for c in conditions],
        "devices": {"scanner": agent.scanner.status(), "scale": agent.scale.status()},
        "broker": {
            # The node connected to (or tried next): one of [sync] hosts when a cluster is set.
            "host": agent.uplink.mqtt.host,
            "port": agent.uplink.mqtt.port,
            "nodes": [f"{host}:{port}" for host, port in agent.uplink.mqtt.endpoints],
            "connected": agent.uplink.mqtt.connected.is_set(),
            "reconnects": max(0, agent.uplink.mqtt.connects - 1),
            "failovers": agent.uplink.mqtt.failovers,
            # Messages and acks refused as not from customs or a trusted receiver, by why.
            "downlink_refused": dict(agent.downlink.refused),
            "acks_refused": dict(agent.uplink.acks_refused),
        },
        "backlog": agent.outbox.backlog(),
        "outbox": {
            "rows": agent.housekeeping.rows,
            "mb": round(agent.housekeeping.mb, 1),
            "free_mb": round(agent.housekeeping.free_mb),
            "shedding": list(agent.housekeeping.shed),
        },
        "model": {
            "version": getattr(model, "version", None),
            "runtime": getattr(model, "runtime", None),
            "mode": "rules+model" if model is not None and quarantine is None else "rules-only",
            "review_threshold": round(agent.screener.threshold, 4),
            "quarantined": quarantine.detail() if quarantine is not None else None,
            "shadow": getattr(agent.screener.shadow, "version", None),
        },
    }


def healthz(agent: Agent) -> tuple[int, str, bytes]:
    """200 when every condition is ok, 503 otherwise (a monitoring probe alerts on both
    degraded and down; the body says which and why)."""
    conditions = agent.health.conditions()
    level = worst([c.level for c in conditions])
    body = {
        "health": level,
        "healthy": level == "ok",
        "problems": [f"{c.name}: {c.detail}" for c in conditions if c.level != "ok"],
        "conditions": [c.as_json() for c in conditions],
    }
    return json_response(body, 200 if level == "ok" else 503)


def livez(agent: Agent) -> tuple[int, str, bytes]:
    """200 while the pipeline is alive (what the watchdog goes by), 503 when it is not."""
    dead = agent.liveness()
    return json_response({"alive": not dead, "problems": dead}, 503 if dead else 200)
