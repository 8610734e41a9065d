"""The live model's guardrail on the station: watch its raise rate, quarantine it when it trips.

A quarantined model is not used (rules only) until an operator reinstates it or a new version
arrives; the quarantine is stored in the outbox's settings so a restart keeps it. The monitor itself
(what counts as tripping) is :mod:`prescreen.risk.model_monitor`; this is its owner at the station.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from prescreen.packing.outbox import Outbox
from prescreen.risk import model_monitor
from prescreen.risk.screening import Screener, Screening

log = logging.getLogger("prescreen.station")


class ModelGuard:
    """The monitor of the live model and the quarantine it tripped, if any (station thread only)."""

    def __init__(self, outbox: Outbox, window: int) -> None:
        self.outbox = outbox
        self.window = window
        self.monitor: model_monitor.ModelMonitor | None = None  # made for each model version seen
        self.quarantine: model_monitor.Quarantine | None = None
        # Called when the monitor trips (the downlink rolls a promoted model back).
        self.on_quarantine: list[Callable[[model_monitor.Quarantine], None]] = []

    def observe(self, screener: Screener, screening: Screening) -> None:
        """Feed one screening; on a trip, ``screener`` screens rules-only from the next parcel on."""
        model = screener.model
        if model is None or screener.quarantined:
            return
        if self.monitor is None or self.monitor.version != model.version:  # a new model starts afresh
            self.monitor = model_monitor.ModelMonitor(
                model.version, self.window, model.expected_raise_rate(screener.threshold)
            )
        quarantine = self.monitor.observe(screening)
        if quarantine is not None:
            self.quarantine = quarantine
            self.outbox.put_setting(model_monitor.SETTING, model_monitor.encode(quarantine))
            screener.quarantined = True
            for react in self.on_quarantine:
                react(quarantine)

    def reinstate(self, screener: Screener) -> model_monitor.Quarantine | None:
        """Lift the quarantine (None: there was none); the monitor starts a fresh window so the old
        raises do not trip it again at once."""
        quarantine = self.quarantine
        if quarantine is None or not screener.quarantined:
            return None
        self.outbox.put_setting(model_monitor.SETTING, None)
        screener.quarantined = False
        self.reset()
        log.warning("quarantined model reinstated by an operator", extra={"model": quarantine.version})
        return quarantine

    def restore(self, screener: Screener, quarantine: model_monitor.Quarantine) -> None:
        """A model quarantined before a restart stays quarantined (the agent's start-up)."""
        self.quarantine = quarantine
        screener.quarantined = True

    def reset(self) -> None:
        """Forget the quarantine and the monitor's window (a model rolled back or reinstated)."""
        self.quarantine = None
        self.monitor = None
