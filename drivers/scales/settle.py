"""Stable-weight detection on top of the scale's own stable flag.

A scale's flag alone lets a bouncing parcel through (some indicators clear motion after one quiet
reading). The settle rule also asks for ``readings`` consecutive stable readings within
``tolerance`` spanning at least ``window_s``. It emits once per settled run, so one parcel yields one
weight however long it stays on the pan.
"""

from __future__ import annotations

import dataclasses
from decimal import Decimal

from prescreen.drivers.base import WeightReading


@dataclasses.dataclass(frozen=True)
class StableWeight:
    """A weight that passed the settle rule; ``at`` is the monotonic time it settled."""

    weight_kg: Decimal
    at: float


class Settler:
    """Feed every reading; get a :class:`StableWeight` when a run of readings settles."""

    def __init__(
        self, readings: int = 3, tolerance_kg: Decimal = Decimal("0.005"), window_s: float = 0.1
    ) -> None:
        if readings < 1:
            raise ValueError("settle rule needs at least one reading")
        self.readings = readings
        self.tolerance_kg = tolerance_kg
        self.window_s = window_s
        self._start: tuple[float, Decimal] | None = None  # first reading of the current run
        self._count = 0
        self._emitted = False

    def update(self, reading: WeightReading, at: float) -> StableWeight | None:
        """Account for ``reading`` taken at monotonic time ``at``."""
        if not reading.stable or reading.weight_kg is None:
            self._start, self._count, self._emitted = None, 0, False
            return None
        weight = reading.weight_kg
        if self._start is None or abs(weight - self._start[1]) > self.tolerance_kg:
            self._start, self._count, self._emitted = (at, weight), 0, False
        self._count += 1
        if not self._emitted and self._count >= self.readings and at - self._start[0] >= self.window_s:
            self._emitted = True
            return StableWeight(weight, at)
        return None
