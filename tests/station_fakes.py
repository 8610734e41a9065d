"""Fake devices at the edge of the world for `Station` tests, and a station built with them: a real
outbox, real order files (or a WMS that is late) and the real rules."""

from __future__ import annotations

import collections
import json
import time
from decimal import Decimal
from pathlib import Path
from typing import Any

from prescreen.core.errors import OrderError
from prescreen.drivers.barcodes import gs1_mod10
from prescreen.drivers.base import Scan
from prescreen.drivers.scales.settle import StableWeight
from prescreen.ops import config as cfg
from prescreen.packing.orders import ORDER_UNAVAILABLE, FileOrderSource, Order, OrderSource
from prescreen.packing.outbox import Outbox
from prescreen.packing.station import Station
from prescreen.risk.entry import EntrySettings
from prescreen.risk.screening import Screener


def ups(serial: int) -> str:
    """A UPS tracking number with a valid check digit (the station only trusts checked labels)."""
    body = f"5R8939{serial:09d}"
    total = sum(
        (int(c) if c.isdigit() else (ord(c) - 63) % 10) * (2 if i % 2 else 1) for i, c in enumerate(body)
    )
    return f"1Z{body}{(10 - total % 10) % 10}"


def sscc(serial: int) -> str:
    body = f"10614141{serial:09d}"
    return body + str(gs1_mod10(body))


class FakeScale:
    """A pan that settles at once on whatever was put on it; nothing on it means no weight."""

    def __init__(self) -> None:
        self.pan: collections.deque[Decimal] = collections.deque()
        self.settles = 0

    def place(self, kg: str) -> None:
        self.pan.append(Decimal(kg))

    def read_weight(
        self, timeout: float, *, after: int | None = None, min_kg: Decimal = Decimal(0)
    ) -> tuple[StableWeight, int] | None:
        if not self.pan:
            time.sleep(timeout)
            return None
        self.settles += 1
        return StableWeight(self.pan.popleft(), time.monotonic()), self.settles


class FakeScanner:
    """The station loop is not run here: scans are handed to Station.handle."""

    def read_code(self, timeout: float | None = None) -> Scan | None:
        return None


class LateWms:
    """A WMS that misses the operator's budget for some parcels and delivers their orders later."""

    def __init__(self, orders: dict[str, Order]) -> None:
        self.orders = orders
        self.late: set[str] = set()
        self.arrived: list[tuple[str, Order]] = []

    def lookup(self, key: str) -> Order:
        if key in self.late:
            raise OrderError("WMS too slow", reason=ORDER_UNAVAILABLE)
        if key not in self.orders:
            raise OrderError("no such order", reason="ORDER_NOT_FOUND")
        return self.orders[key]

    def arrive(self, key: str) -> None:
        self.late.discard(key)
        self.arrived.append((key, self.orders[key]))

    def late_orders(self) -> list[tuple[str, Order]]:
        arrived, self.arrived = self.arrived, []
        return arrived

    def close(self) -> None:
        pass


def make_station(
    tmp_path: Path, orders: list[Order] | OrderSource, *, weight_timeout_s: float = 0.3
) -> tuple[Station, FakeScale, list[Any]]:
    config = cfg.replace(cfg.Config(), "station", filer_code="TEST", weight_timeout_s=weight_timeout_s)
    if isinstance(orders, list):
        path = tmp_path / "orders.ndjson"
        path.write_text("".join(json.dumps(order) + "\n" for order in orders))
        orders = FileOrderSource(path)
    outbox = Outbox(tmp_path / "outbox.db")
    scale = FakeScale()
    station = Station(
        config=config,
        scanner=FakeScanner(),
        scale=scale,
        orders=orders,
        outbox=outbox,
        screener=Screener(config.screening, entry=EntrySettings.from_config(config.entry)),
    )
    heard: list[Any] = []
    # What a listener hears, and how many records the outbox held at that moment (commit before tell).
    station.listeners.append(lambda event: heard.append((event, sum(outbox.counts().values()))))
    return station, scale, heard
