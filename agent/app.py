"""Assemble a running agent from a :class:`Config`: devices, orders, outbox, screening, uplink.

The agent owns everything it opens and closes it in reverse order. Start-up problems with the
model only degrade it to rules-only (logged once); problems with config, outbox or order source
stop it with a clear error, because running without them would lose records or mislead operators.
"""

from __future__ import annotations

import logging
import threading
from decimal import Decimal
from pathlib import Path

from prescreen.config import Config
from prescreen.drivers import open_scale, open_scanner
from prescreen.drivers.scale import ScaleReader
from prescreen.drivers.scanner_line import LineScanner
from prescreen.errors import ConfigError, ModelError
from prescreen.orders import FileOrderSource, OrderSource
from prescreen.outbox import Outbox
from prescreen.screening import RiskModel, Screener
from prescreen.station import Station, StationEvent
from prescreen.sync.uplink import Uplink
from prescreen.wms import WmsOrderSource

log = logging.getLogger("prescreen.agent")


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


def order_source(config: Config) -> OrderSource:
    """The configured order source: a file export, or the WMS (cache beside the outbox)."""
    orders = config.orders
    if orders.source == "file":
        return FileOrderSource(orders.path)
    if orders.source == "wms":
        cache = orders.cache_path or str(Path(config.outbox.path).with_name("orders-cache.db"))
        return WmsOrderSource(orders, cache)
    raise ConfigError(f"orders.source must be 'file' or 'wms', got {orders.source!r}")


class Agent:
    """A whole packing station: call :meth:`start`, later :meth:`stop`."""

    def __init__(self, config: Config) -> None:
        self.config = config
        self.orders = order_source(config)
        self.outbox = Outbox(config.outbox.path)
        self.screener = Screener(config.screening, load_model(config))
        scale_cfg = config.scale
        self.scale: ScaleReader = open_scale(
            scale_cfg.url,
            scale_cfg.protocol,
            baudrate=scale_cfg.baudrate,
            poll_s=scale_cfg.poll_interval_ms / 1000,
            settle_readings=scale_cfg.settle_readings,
            settle_tolerance_kg=Decimal(scale_cfg.settle_tolerance_g) / 1000,
            settle_s=scale_cfg.settle_ms / 1000,
        )
        self.scanner: LineScanner = open_scanner(config.scanner.url, baudrate=config.scanner.baudrate)
        self.station = Station(
            config=config,
            scanner=self.scanner,
            scale=self.scale,
            orders=self.orders,
            outbox=self.outbox,
            screener=self.screener,
        )
        self.uplink = Uplink(config.outbox.path, config.sync, config.station)
        self.station.listeners.append(self._committed)
        self._stop = threading.Event()
        self._thread = threading.Thread(
            target=self.station.run, args=(self._stop,), name="station", daemon=True
        )

    def _committed(self, event: StationEvent) -> None:
        if event.record is not None:
            self.uplink.notify()

    def start(self) -> Agent:
        """Start the uplink and the station thread."""
        self.uplink.start()
        self._thread.start()
        log.info(
            "agent started",
            extra={
                "device": self.config.station.device_id,
                "model": getattr(self.screener.model, "version", None),
            },
        )
        return self

    def stop(self) -> None:
        """Stop scanning, then sync, then close devices and the outbox."""
        self._stop.set()
        self._thread.join(timeout=5)
        self.uplink.stop()
        self.scanner.close()
        self.scale.close()
        self.orders.close()
        self.outbox.close()
        log.info("agent stopped")
