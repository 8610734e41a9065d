"""Assemble a running agent from a :class:`Config`: devices, orders, outbox, screening, uplink.

The agent owns everything it opens and closes it in reverse order. Start-up problems with the
model only degrade it to rules-only (logged once); problems with config, outbox or order source
stop it with a clear error, because running without them would lose records or mislead operators.
"""

from __future__ import annotations

import contextlib
import gc
import json
import logging
import sys
import threading
import time
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING, Any

from prescreen.core.errors import ConfigError, ModelError, SyncError
from prescreen.core.signing import DeviceKey
from prescreen.drivers.registry import open_scale, open_scanner
from prescreen.drivers.scales.reader import ScaleReader
from prescreen.drivers.scanners.base import ScannerBase
from prescreen.ops.config import Config
from prescreen.ops.health import Health
from prescreen.packing.agent_status import healthz, livez, status_of, watch_conditions
from prescreen.packing.downlink_journal import attach
from prescreen.packing.events import NotTaken, StationEvent, wait_for_task
from prescreen.packing.housekeeping import Report, housekeep
from prescreen.packing.identity import check_identity, seq_file_of
from prescreen.packing.orders import FileOrderSource, OrderSource
from prescreen.packing.outbox import Outbox
from prescreen.packing.station import Station
from prescreen.risk import model_monitor
from prescreen.risk.entry import EntrySettings
from prescreen.risk.screening import RiskModel, Screener
from prescreen.sync.topics import health_topic
from prescreen.sync.uplink import Uplink
from prescreen.trade.compliance import ComplianceApi
from prescreen.web.display import StationDisplay
from prescreen.web.metrics import AgentMetrics
from prescreen.web.server import (
    LocalServer,
    PostRoute,
    Route,
    check_listen,
    json_response,
    load_or_create_token,
)
from prometheus_client import CONTENT_TYPE_LATEST

if TYPE_CHECKING:  # the simulated devices' controls: imported only when a device is simulated
    from prescreen.sim.simbench import SimBench, Step

log = logging.getLogger("prescreen.agent")
HEARTBEAT_STALE_S = 5.0
HEALTH_TICK_S = 1.0  # how often conditions are evaluated (and their changes logged)
SWITCH_INTERVAL_S = 0.0005
SIM_ANSWER_SLACK_S = 5.0  # POST /sim/scan waits up to weight_timeout_s + this for the verdict


def load_model(config: Config) -> RiskModel | None:
    """The risk model, or None (rules-only) when disabled or unusable."""
    if not config.screening.use_model:
        return None
    from prescreen.models.runner import load_risk_model

    try:
        return load_risk_model(config.screening.model_path or None)
    except ModelError as exc:
        log.error("model not loaded, screening rules-only", extra={"reason": str(exc)})
        return None


def device_key_path(config: Config) -> Path:
    """Where the station's signing key lives (``[station] key_path`` or next to the outbox)."""
    return Path(config.station.key_path or Path(config.outbox.path).parent / "device.key")


def order_source(config: Config) -> OrderSource:
    """The configured order source: a file export, or the WMS (cache beside the outbox)."""
    orders = config.orders
    if orders.source == "file":
        return FileOrderSource(orders.path)
    if orders.source == "wms":
        from prescreen.packing.wms import WmsOrderSource  # httpx only where a WMS is used (~11 MB)

        cache = orders.cache_path or str(Path(config.outbox.path).with_name("orders-cache.db"))
        return WmsOrderSource(orders, cache)
    raise ConfigError(f"orders.source must be 'file' or 'wms', got {orders.source!r}")


def open_devices(config: Config) -> tuple[ScannerBase, ScaleReader]:
    """The scanner and the scale of ``[scanner]`` and ``[scale]``, started (the caller closes them)."""
    scale_cfg, scanner_cfg = config.scale, config.scanner
    scale = open_scale(
        scale_cfg.url,
        scale_cfg.protocol,
        baudrate=scale_cfg.baudrate,
        poll_s=scale_cfg.poll_interval_ms / 1000,
        settle_readings=scale_cfg.settle_readings,
        settle_tolerance_kg=Decimal(scale_cfg.settle_tolerance_g) / 1000,
        settle_s=scale_cfg.settle_ms / 1000,
    )
    try:
        scanner = open_scanner(
            scanner_cfg.url,
            protocol=scanner_cfg.protocol,
            baudrate=scanner_cfg.baudrate,
            suffix=scanner_cfg.suffix,
        )
    except BaseException:
        scale.close()  # its reader thread and port (a simulator's pty) would outlive the error
        raise
    return scanner, scale


class Agent:
    """A whole packing station: call :meth:`start`, later :meth:`stop`."""

    def __init__(self, config: Config) -> None:
        self.config = config
        http = config.http
        if http.enabled and http.port and (busy := check_listen(http.host, http.port)):
            raise ConfigError(busy)  # before any device or file is opened
        # A step that raises (a device missing, a model that does not load, a bad script) closes
        # what the steps before it opened: the outbox and its seq file, the devices, the socket.
        with contextlib.ExitStack() as opened:
            self.orders = order_source(config)
            opened.callback(self.orders.close)
            key_path = device_key_path(config)
            check_identity(key_path, Path(config.outbox.path))
            self.key = DeviceKey.load_or_create(key_path)
            self.outbox = Outbox(config.outbox.path, signer=self.key, seq_file=seq_file_of(key_path))
            opened.callback(self.outbox.close)
            screener = Screener(
                config.screening, load_model(config), entry=EntrySettings.from_config(config.entry)
            )
            self.scanner, self.scale = open_devices(config)
            opened.callback(self.scale.close)
            opened.callback(self.scanner.close)
            self._assemble(screener)
            self.http = self._local_server() if config.http.enabled else None
            if self.http is not None:
                opened.callback(self.http.stop)
            self._prepare_threads()
            opened.pop_all()

    def _assemble(self, screener: Screener) -> None:
        """The station, its sync (nothing connects before :meth:`start`) and its page."""
        config = self.config
        self.station = Station(
            config=config,
            scanner=self.scanner,
            scale=self.scale,
            orders=self.orders,
            outbox=self.outbox,
            screener=screener,
        )
        self._restore_quarantine()
        self.uplink = Uplink(self.outbox, config.sync, config.station, signer=self.key)
        self.station_downlink = attach(self.station, self.uplink.mqtt, config.sync, self.key)
        self.downlink = self.station_downlink.downlink
        self.uplink.on_downlink = self.downlink.on_message
        self.metrics = AgentMetrics(self.status)
        self.station.listeners.append(self._committed)
        self.display = StationDisplay(
            language=config.http.language,
            status=self.status,
            weight=lambda: self.scale.latest,
            confirm=self.station.request_hold_confirmation,
        )
        self.station.listeners.append(self.display.on_event)
        self._sim_script: tuple[list[Step], str] | None = None
        self.sim = self._sim_bench()

    def _prepare_threads(self) -> None:
        """The station, housekeeping and health threads (started by :meth:`start`)."""
        config = self.config
        self.started_at = time.monotonic()
        self._stop = threading.Event()
        self.housekeeping = Report()  # the first pass runs in its thread, not in the start-up path
        self._housekeeper = threading.Thread(target=self._housekeep, name="housekeeping", daemon=True)
        self._health_topic = health_topic(
            config.sync.topic_prefix, config.station.site_id, config.station.device_id
        )
        self._thread = threading.Thread(
            target=self.station.run, args=(self._stop,), name="station", daemon=True
        )
        self.health = Health(log_every_s=config.health.log_every_s)
        self._recording_ok = True
        watch_conditions(self)
        self._health_thread = threading.Thread(target=self._tick_health, name="health", daemon=True)

    def _local_server(self) -> LocalServer:
        """The station page, the local API and the probes on ``[http]`` (token-protected posts)."""
        config = self.config
        sim_get, sim_post = self._sim_routes()
        return LocalServer(
            config.http.host,
            config.http.port,
            {
                "/metrics": lambda: (200, CONTENT_TYPE_LATEST, self.metrics.exposition()),
                "/healthz": lambda: healthz(self),
                "/livez": lambda: livez(self),
                "/status": lambda: json_response(self.status()),
                **self.display.routes(),
                **sim_get,
            },
            {
                **self.display.post_routes(),
                **ComplianceApi(self.station).post_routes(),
                "/api/model/reinstate": self._reinstate_model,
                **sim_post,
            },
            token=load_or_create_token(config.api_token_path()),
            timeout_s=config.http.timeout_s,
            max_connections=config.http.max_connections,
        )

    def _sim_bench(self) -> SimBench | None:
        """The simulated devices' controls (None with real devices); reads a ``?script=`` now, so a
        bad script stops the start like any bad config."""
        if self.scanner.simulator is None and self.scale.simulator is None:
            return None
        from prescreen.sim.simbench import SimBench, load_script, script_of

        bench = SimBench(self.scanner.simulator, self.scale.simulator)
        self.station.listeners.append(bench.on_event)
        for url in (self.config.scanner.url, self.config.scale.url):
            path = script_of(url)
            if path is not None:
                self._sim_script = (load_script(path), str(path))
        return bench

    def _sim_routes(self) -> tuple[dict[str, Route], dict[str, PostRoute]]:
        if self.sim is None:
            return {}, {}
        wait_s = self.config.station.weight_timeout_s + SIM_ANSWER_SLACK_S
        return self.sim.routes(), self.sim.post_routes(lambda: wait_s)

    @property
    def screener(self) -> Screener:
        """The station's current screener (a config or model update from customs replaces it)."""
        return self.station.screener

    def _housekeep(self) -> None:
        """Every ``housekeeping_s``: outbox housekeeping, then a health message upstream.

        Health telemetry is never queued in the outbox: it is sent at QoS 0 when the broker is
        there and dropped when not, so it is the first thing shed and never competes with records.
        """
        while True:
            self.housekeeping = housekeep(self.outbox, self.config.outbox)
            if self.uplink.mqtt.connected.is_set():
                try:
                    self.uplink.mqtt.publish(self._health_topic, json.dumps(self.status()).encode(), qos=0)
                except SyncError as exc:
                    log.debug("health not sent", extra={"reason": str(exc)})
            if self._stop.wait(self.config.outbox.housekeeping_s):
                return

    def _committed(self, event: StationEvent) -> None:
        if event.kind == "verdict" and event.record is not None:
            self.scanner.signal(event.record["screening"]["verdict"])
        if event.kind in ("verdict", "verdict_update", "not_recorded"):
            self.metrics.observe(event.record, event.latency_ms if event.kind == "verdict" else None)
        if event.record is not None:
            self.uplink.notify()
        self._note_recording(event)

    def _note_recording(self, event: StationEvent) -> None:
        """Condition ``recording``: down while verdicts cannot be committed (the operator sees NOT
        RECORDED: a full disk, a broken outbox), back to ok with the next committed verdict. Told to
        the health set only when it changes, so the verdict path pays nothing for it."""
        if event.kind == "not_recorded" and self._recording_ok:
            self._recording_ok = False
            self.health.report("recording", "down", f"verdicts are not being recorded: {event.message}")
        elif event.kind == "verdict" and event.record is not None and not self._recording_ok:
            self._recording_ok = True
            self.health.report("recording", "ok", "verdicts are committed again")

    def liveness(self) -> list[str]:
        """Why the pipeline is not alive (empty when it is): the station loop or the uplink thread
        died or hangs. Only this withholds the systemd watchdog, because only this a restart fixes;
        waiting for an operator or a weight never stalls the loop (see ``Station._weigh``)."""
        found = []
        if not self._thread.is_alive():
            found.append("station thread is not running")
        elif time.monotonic() - self.station.heartbeat > HEARTBEAT_STALE_S:
            found.append(f"station loop stalled for more than {HEARTBEAT_STALE_S:.0f} s")
        if not self.uplink.alive:
            found.append("uplink thread is not running")
        return found

    def _restore_quarantine(self) -> None:
        """A model quarantined before a restart stays quarantined; a new model version lifts it."""
        stored = self.outbox.setting(model_monitor.SETTING)
        quarantine = model_monitor.decode(stored) if stored else None
        model = self.station.screener.model
        if quarantine is not None and model is not None and quarantine.version == model.version:
            self.station.guard.restore(self.station.screener, quarantine)
            log.warning("model still quarantined", extra={"detail": quarantine.detail()})

    def _tick_health(self) -> None:
        """Evaluate health every second, so a change is logged when it happens, not when asked."""
        while not self._stop.wait(HEALTH_TICK_S):
            self.health.conditions()

    def status(self) -> dict[str, Any]:
        """Devices, broker, backlog, last ack, model and uptime: ``prescreen status --json``."""
        return status_of(self)

    def _reinstate_model(self, data: bytes) -> tuple[int, str, bytes]:
        """``prescreen model reinstate``: lift the model's quarantine (200), or say there is none (409)."""
        try:
            event = wait_for_task(self.station.submit(self.station.reinstate_model), 10.0)
        except NotTaken as exc:
            return json_response({"error": f"{exc}: nothing changed"}, 503)
        if event is None:
            return json_response({"status": "pending", "detail": "the station is reinstating it"}, 202)
        status = 200 if event.kind == "model_reinstated" else 409
        return json_response({"result": event.message}, status)

    def start(self) -> Agent:
        """Start the uplink, the station thread and the local HTTP server."""
        # A thread that wants the GIL waits up to the switch interval (5 ms by default) while
        # another runs Python code: a verdict would wait on the uplink's or the page's JSON work.
        weak = self.config.sync.insecurities()
        if weak and self.config.sync.allow_insecure:
            log.warning("broker link not secure: allow_insecure is set", extra={"why": "; ".join(weak)})
        sys.setswitchinterval(SWITCH_INTERVAL_S)
        # Everything loaded so far (model, rules, reference tables, libraries) lives as long as the
        # process: keep it out of the cyclic collector, whose full passes over it paused verdicts.
        gc.collect()
        gc.freeze()
        self.uplink.start()
        self._thread.start()
        self._housekeeper.start()
        self._health_thread.start()
        if self.http is not None:
            self.display.start()
            self.http.start()
        if self.sim is not None and self._sim_script is not None:
            self.sim.play(*self._sim_script)
        log.info(
            "agent started",
            extra={
                "device": self.config.station.device_id,
                "key_id": self.key.key_id,
                "model": getattr(self.screener.model, "version", None),
            },
        )
        return self

    def stop(self) -> None:
        """Stop scanning, then sync, then close devices and the outbox."""
        self._stop.set()
        if self.sim is not None:
            self.sim.stop()
        self._thread.join(timeout=5)
        for thread in (self._housekeeper, self._health_thread):
            if thread.is_alive():
                thread.join(timeout=5)
        self.display.stop()
        if self.http is not None:
            self.http.stop()
        self.uplink.stop()
        self.scanner.close()
        self.scale.close()
        self.orders.close()
        self.outbox.close()
        log.info("agent stopped")
