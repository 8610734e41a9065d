"""The packing-station pipeline: scan + stable weight + order → screening → commit → tell.

One thread runs :meth:`Station.run`; the scanner and the scale have their own reader threads, and
the uplink drains the outbox beside it, so nothing on this path waits for the network. The order
is strict: the record is committed to the outbox *before* listeners (the display, the scanner's
beeper) hear the verdict, so a verdict an operator acted on is never lost.
"""

from __future__ import annotations

import collections
import dataclasses
import logging
import queue
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future
from decimal import Decimal
from typing import Any, Protocol

from prescreen.core.errors import OrderError, OutboxError
from prescreen.core.records import Record
from prescreen.drivers.barcodes import Barcode, decode
from prescreen.drivers.base import Scan
from prescreen.drivers.scales.settle import StableWeight
from prescreen.ops.config import Config
from prescreen.packing.cartons import OpenCarton, RecentConsignees, carton_order_of
from prescreen.packing.events import StationEvent
from prescreen.packing.model_guard import ModelGuard
from prescreen.packing.orders import ORDER_UNAVAILABLE, Order, OrderSource
from prescreen.packing.outbox import Outbox
from prescreen.packing.shelf import HoldShelf
from prescreen.packing.verdicts import internal_error, verdict_record
from prescreen.risk.rules import CartonFacts, ParcelFacts
from prescreen.risk.screening import Screener, Screening

log = logging.getLogger("prescreen.station")

HEARTBEAT_SLICE_S = 0.2  # the longest the station loop goes without a heartbeat
_MAX_INCOMPLETE = 1000  # parcels remembered while their late order is awaited


class Scanner(Protocol):
    """The part of a scanner driver the station uses."""

    def read_code(self, timeout: float | None = None) -> Scan | None:
        """Next scan or None."""


class Scale(Protocol):
    """The part of a scale driver the station uses."""

    def read_weight(
        self, timeout: float, *, after: int | None = None, min_kg: Decimal = ...
    ) -> tuple[StableWeight, int] | None:
        """Next settled weight newer than settle number ``after``."""


class Station:
    """Turns scans into committed, screened records. Owns none of the devices it is given."""

    def __init__(
        self,
        *,
        config: Config,
        scanner: Scanner,
        scale: Scale,
        orders: OrderSource,
        outbox: Outbox,
        screener: Screener,
    ) -> None:
        self.config = config
        self.scanner = scanner
        self.scale = scale
        self.orders = orders
        self.outbox = outbox
        self.screener = screener
        self.listeners: list[Callable[[StationEvent], None]] = []
        # The live model's guardrail: trips a quarantine when it raises far more than it should.
        self.guard = ModelGuard(outbox, config.screening.model_monitor_window)
        self.holds: dict[str, str] = {}  # tracking number -> reason (filled by the downlink)
        self.heartbeat = time.monotonic()
        self._last_settle: int | None = None
        self.shelf = HoldShelf(_MAX_INCOMPLETE)  # HOLDs the operator has not yet put on the shelf
        self._tasks: queue.Queue[tuple[Callable[[], StationEvent], Future[StationEvent]]] = queue.Queue()
        self._carton: OpenCarton | None = None
        self._recent = RecentConsignees(config.screening.split_window_s)
        # Parcels screened without their order (WMS too slow), waiting for it to arrive.
        self._incomplete: collections.OrderedDict[str, tuple[ParcelFacts, Record, OpenCarton | None]] = (
            collections.OrderedDict()
        )

    def run(self, stop: threading.Event) -> None:
        """Process scans until ``stop`` is set; complete late orders between scans.

        ``heartbeat`` is refreshed on every turn (at least every 0.2 s): the systemd watchdog is
        petted only while it is fresh, so a wedged pipeline gets the service restarted.
        """
        while not stop.is_set():
            self.heartbeat = time.monotonic()
            scan = self.scanner.read_code(timeout=0.1)
            try:
                if scan is not None:
                    self.handle(scan)
                self.complete_late_orders()
            except Exception:  # the last guard: one bad parcel never stops the station (or the downlink)
                log.exception("station turn failed, going on", extra={"scan": scan.raw if scan else None})
            self._run_tasks()

    def submit(self, task: Callable[[], StationEvent]) -> Future[StationEvent]:
        """Run ``task`` on the station thread (the outbox's only writer) between scans.

        Corrections, outcomes and downlink messages come from other threads (HTTP, MQTT); each is
        queued here, so records are committed in one order and never race a verdict. The task's
        event goes to the listeners like a scan's; its exception goes to the future.
        """
        future: Future[StationEvent] = Future()
        self._tasks.put((task, future))
        return future

    def _run_tasks(self) -> None:
        while True:
            try:
                task, future = self._tasks.get_nowait()
            except queue.Empty:
                return
            if not future.set_running_or_notify_cancel():
                continue
            try:
                event = task()
            except Exception as exc:  # the caller gets it; the station goes on
                future.set_exception(exc)
                continue
            self._notify(event)
            future.set_result(event)

    def request_hold_confirmation(
        self, record_id: str | None, shelf: str | None = None
    ) -> Future[StationEvent]:
        """Record, on the station thread, that a HOLD went onto the shelf (the page's touch);
        ``record_id`` None confirms the oldest HOLD still waiting."""
        return self.submit(lambda: self._confirm_hold(record_id, shelf, raw=shelf or "touch"))

    def _confirm_hold(self, record_id: str | None, shelf: str | None, *, raw: str) -> StationEvent:
        return self.shelf.confirm(self.outbox, self.config.station, record_id, shelf, raw=raw)

    # --- changes decided elsewhere (customs, compliance), applied on the station thread -------

    def set_holds(self, holds: dict[str, str]) -> None:
        """Replace the tracking numbers held by customs (tracking number -> what the operator reads)."""
        self.holds.clear()
        self.holds.update(holds)

    def await_shelf(self, record_id: str, tracking: str | None) -> None:
        """A parcel held after it left the bench is fetched back: its shelf scan is awaited like a HOLD's."""
        self.shelf.wait_for(record_id, tracking)

    def shelf_settled(self, record_id: str) -> None:
        """An outcome was recorded for this verdict: the shelf no longer waits for it."""
        self.shelf.settle(record_id)

    def use_screener(self, screener: Screener) -> None:
        """Screen with ``screener`` from the next parcel on (a new model, shadow or settings)."""
        self.screener = screener

    def roll_back_model(self, model: Any) -> None:
        """Go back to ``model`` after the one that replaced it tripped the quarantine: a fresh start."""
        self.screener = self.screener.with_model(model)
        self.guard.reset()

    def _notify(self, event: StationEvent) -> None:
        for listener in self.listeners:
            try:
                listener(event)
            except Exception:  # a broken display must not stop screening; the record is committed
                log.exception("station listener failed", extra={"event": event.kind, "scan": event.scan})

    def _screen(self, facts: ParcelFacts) -> Screening:
        """Screen one parcel; a failure inside screening (a bug, a broken model) sends this parcel
        to REVIEW with an internal-error finding instead of stopping the station for every parcel."""
        try:
            return self.screener.screen(facts)
        except Exception as exc:
            log.exception(
                "screening failed, parcel sent to review",
                extra={"tracking": facts.barcode.tracking_number, "error": type(exc).__name__},
            )
            return internal_error(exc)

    def complete_late_orders(self) -> list[StationEvent]:
        """Re-screen parcels whose order arrived after the budget and commit completed records.

        The completed record is a new record (new id and seq) whose ``supersedes`` names the first
        one, so customs keeps both and sees what the operator was shown at the time.
        """
        events = []
        for key, order in self.orders.late_orders():
            pending = self._incomplete.pop(key, None)
            if pending is None:
                continue
            facts, first, inside = pending
            facts = dataclasses.replace(facts, order=order, order_problem=None)
            screening = self._screen(facts)
            supersedes = {"record_id": first["record_id"], "reason": "order_arrived"}
            event = self._commit(
                first["parcel"]["barcode"]["raw"],
                facts,
                screening,
                inside,
                start=time.monotonic(),
                supersedes=supersedes,
            )
            event = dataclasses.replace(event, kind="verdict_update") if event.record else event
            self._notify(event)
            events.append(event)
        return events

    def handle(self, scan: Scan) -> StationEvent:
        """Process one scan end to end and notify listeners; returns the event."""
        prefix = self.config.station.shelf_label_prefix
        if prefix and scan.raw.startswith(prefix):
            event = self._confirm_hold(None, scan.raw, raw=scan.raw)
            self._notify(event)
            return event
        barcode = decode(scan.raw)
        try:
            carton_order = carton_order_of(self.orders, barcode)
            if carton_order is not None and (self._carton is None or self._carton.carton_id != barcode.sscc):
                event = self._open_carton(scan, barcode, carton_order)
            else:
                event = self._screen_parcel(scan, barcode, closing=carton_order is not None)
        except Exception as exc:  # e.g. an order source that fails in a way nobody foresaw
            log.exception("parcel not screened, sent to review", extra={"scan": scan.raw})
            facts = ParcelFacts(barcode=barcode, weight_kg=None, order=None, order_problem=None)
            event = self._commit(scan.raw, facts, internal_error(exc), None, start=scan.at)
        self._notify(event)
        return event

    # --- master cartons ---------------------------------------------------------------------

    def _open_carton(self, scan: Scan, barcode: Barcode, order: Order) -> StationEvent:
        if self._carton is not None:
            log.warning("master carton left open", extra={"carton": self._carton.carton_id})
        self._carton = OpenCarton.of(barcode, order)
        log.info(
            "master carton open",
            extra={"carton": self._carton.carton_id, "manifest": len(self._carton.manifest)},
        )
        return StationEvent(
            "carton_open",
            scan.raw,
            message=f"Master carton open: scan the {len(self._carton.manifest)} parcels inside, "
            "then the master label again.",
        )

    # --- parcels ----------------------------------------------------------------------------

    def _weigh(self) -> StableWeight | None:
        """The parcel's settled weight, or None after ``weight_timeout_s``.

        Waited for in slices of :data:`HEARTBEAT_SLICE_S`, refreshing ``heartbeat`` between them:
        an operator who takes their time is not a wedged pipeline (the watchdog must not fire).
        """
        deadline = time.monotonic() + self.config.station.weight_timeout_s
        while (remaining := deadline - time.monotonic()) > 0:
            self.heartbeat = time.monotonic()
            result = self.scale.read_weight(min(remaining, HEARTBEAT_SLICE_S), after=self._last_settle)
            if result is not None:
                weight, self._last_settle = result
                return weight
        return None

    def _order_for(self, barcode: Barcode) -> tuple[Order | None, str | None]:
        key = barcode.tracking_number
        if key is None:
            return None, "ORDER_NOT_FOUND"
        try:
            return self.orders.lookup(key), None
        except OrderError as exc:
            return None, exc.reason

    def _screen_parcel(self, scan: Scan, barcode: Barcode, *, closing: bool) -> StationEvent:
        # A label nobody recognises (no tracking number, no SSCC) waits for no weight: it is
        # REVIEW anyway, and the weight that comes next belongs to the next real parcel.
        known = barcode.tracking_number is not None or barcode.sscc is not None
        weight = self._weigh() if known else None
        start = max(scan.at, weight.at if weight else scan.at)
        weight_kg = weight.weight_kg if weight else None
        carton_facts: CartonFacts | None = None
        order: Order | None = None
        problem: str | None = None
        inside: OpenCarton | None = None
        closed: OpenCarton | None = None
        if closing and self._carton is not None:
            carton = closed = self._carton
            self._carton = None
            carton_facts = CartonFacts(
                carton.carton_id, carton.manifest, tuple(carton.scanned), carton.weight_kg, carton.tare_kg
            )
        else:
            order, problem = self._order_for(barcode)
            inside = self._carton
        tracking = barcode.tracking_number
        facts = ParcelFacts(
            barcode=barcode,
            weight_kg=weight_kg,
            order=order,
            order_problem=problem,
            carton=carton_facts,
            inside_carton=inside.carton_id if inside else None,
            inside_manifest=inside is None or tracking in inside.manifest,
            consignee_recent=self._recent.count_then_add(order, time.monotonic()),
            watchlisted=self.holds.get(tracking) if tracking else None,
        )
        screening = self._screen(facts)
        event = self._commit(scan.raw, facts, screening, inside, start=start, closed=closed)
        self.guard.observe(self.screener, screening)
        if event.record is not None and screening.verdict == "HOLD":
            self.shelf.wait_for(event.record["record_id"], tracking)
        if event.record is not None and tracking is not None:
            if inside is not None:
                inside.scanned.append(tracking)
                inside.weight_kg += weight_kg or 0
            if problem == ORDER_UNAVAILABLE:
                self._incomplete[tracking] = (facts, event.record, inside)
                while len(self._incomplete) > _MAX_INCOMPLETE:
                    self._incomplete.popitem(last=False)
        return event

    def reinstate_model(self) -> StationEvent:
        """Lift a quarantine (an operator's decision after looking at the model's raises); runs on
        the station thread like any change to the screener."""
        lifted = self.guard.reinstate(self.screener)
        if lifted is None:
            return StationEvent("ignored", "", message="no model is quarantined")
        return StationEvent("model_reinstated", "", message=f"model {lifted.version} reinstated")

    def _commit(
        self,
        raw: str,
        facts: ParcelFacts,
        screening: Screening,
        inside: OpenCarton | None,
        *,
        start: float,
        supersedes: dict[str, str] | None = None,
        closed: OpenCarton | None = None,
    ) -> StationEvent:
        carton = inside or closed
        try:
            record = self.outbox.append(
                lambda seq: verdict_record(
                    seq,
                    self.config.station,
                    facts,
                    screening,
                    carton_id=inside.carton_id if inside else None,
                    supersedes=supersedes,
                    entry=self.screener.entry,
                    carton_order=carton.order if carton else None,
                )
            )
        except OutboxError as exc:
            log.error("verdict not recorded", extra={"scan": raw, "reason": str(exc)})
            return StationEvent("not_recorded", raw, message=f"NOT RECORDED: {exc}")
        latency_ms = (time.monotonic() - start) * 1000
        tracking = facts.barcode.tracking_number
        log.info(
            "verdict",
            extra={
                "seq": record["seq"],
                "tracking": tracking,
                "verdict": screening.verdict,
                "reasons": ",".join(f.code for f in screening.findings),
                "latency_ms": round(latency_ms, 3),
                "supersedes": supersedes["record_id"] if supersedes else None,
            },
        )
        return StationEvent("verdict", raw, record, latency_ms)
