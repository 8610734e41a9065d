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
from prescreen.core.records import Record, envelope, kg
from prescreen.drivers.barcodes import Barcode, decode
from prescreen.drivers.base import Scan
from prescreen.drivers.scales.settle import StableWeight
from prescreen.ops.config import Config, StationConfig
from prescreen.packing.orders import ORDER_UNAVAILABLE, Order, OrderSource, to_record
from prescreen.packing.outbox import Outbox
from prescreen.packing.outcomes import outcome_record
from prescreen.risk import model_monitor
from prescreen.risk.entry import NO_SETTINGS, PARCEL_FIELDS, EntrySettings, complete_order, parcel_fields
from prescreen.risk.rules import CartonFacts, Finding, ParcelFacts
from prescreen.risk.screening import Screener, Screening

log = logging.getLogger("prescreen.station")

HEARTBEAT_SLICE_S = 0.2  # the longest the station loop goes without a heartbeat
_MAX_INCOMPLETE = 1000  # parcels remembered while their late order is awaited
# The finding of a parcel the agent failed to screen (a bug, a broken model): a person looks at it.
INTERNAL_ERROR = "INTERNAL_ERROR"


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


@dataclasses.dataclass(frozen=True)
class StationEvent:
    """What the station tells its listeners after each scan."""

    kind: str  # "verdict", "verdict_update", "carton_open", "hold_confirmed", "not_recorded", "ignored"
    scan: str
    record: Record | None = None
    latency_ms: float | None = None
    message: str = ""


@dataclasses.dataclass
class _OpenCarton:
    carton_id: str
    manifest: frozenset[str]
    tare_kg: float
    order: Order  # the carton's own order: its master bill, port and mode hold for every parcel
    scanned: list[str] = dataclasses.field(default_factory=list)
    weight_kg: Decimal = Decimal(0)


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
        # The model's live guardrail (made for each model version it sees), see model_monitor.py.
        self.monitor: model_monitor.ModelMonitor | None = None
        self.quarantine: model_monitor.Quarantine | None = None
        # Called on the station thread when the monitor trips (the downlink rolls a promoted model back).
        self.on_quarantine: list[Callable[[model_monitor.Quarantine], None]] = []
        self.listeners: list[Callable[[StationEvent], None]] = []
        self.holds: dict[str, str] = {}  # tracking number -> reason (filled by the downlink)
        self.heartbeat = time.monotonic()
        self._last_settle: int | None = None
        # HOLD verdicts the operator has not yet confirmed on the hold shelf: record_id -> tracking.
        self.awaiting_shelf: collections.OrderedDict[str, str | None] = collections.OrderedDict()
        self._tasks: queue.Queue[tuple[Callable[[], StationEvent], Future[StationEvent]]] = queue.Queue()
        self._carton: _OpenCarton | None = None
        self._recent: collections.deque[tuple[float, str]] = collections.deque()
        # Parcels screened without their order (WMS too slow), waiting for it to arrive.
        self._incomplete: collections.OrderedDict[str, tuple[ParcelFacts, Record, _OpenCarton | None]] = (
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
        if record_id is None and self.awaiting_shelf:
            record_id = next(iter(self.awaiting_shelf))
        if record_id is None or record_id not in self.awaiting_shelf:
            return StationEvent("ignored", raw, message="No HOLD is waiting for the shelf.")
        tracking = self.awaiting_shelf[record_id]
        try:
            record = self.outbox.append(
                lambda seq: outcome_record(
                    seq,
                    self.config.station,
                    refers_to=record_id,
                    tracking_number=tracking,
                    outcome="held_on_shelf",
                    shelf=shelf,
                )
            )
        except OutboxError as exc:
            log.error("hold confirmation not recorded", extra={"record": record_id, "reason": str(exc)})
            return StationEvent("not_recorded", raw, message=f"NOT RECORDED: {exc}")
        del self.awaiting_shelf[record_id]
        log.info("hold on shelf", extra={"record": record_id, "tracking": tracking, "shelf": shelf})
        return StationEvent("hold_confirmed", raw, record)

    # --- changes decided elsewhere (customs, compliance), applied on the station thread -------

    def set_holds(self, holds: dict[str, str]) -> None:
        """Replace the tracking numbers held by customs (tracking number -> what the operator reads)."""
        self.holds.clear()
        self.holds.update(holds)

    def await_shelf(self, record_id: str, tracking: str | None) -> None:
        """A parcel held after it left the bench is fetched back: its shelf scan is awaited like a HOLD's."""
        self.awaiting_shelf[record_id] = tracking

    def shelf_settled(self, record_id: str) -> None:
        """An outcome was recorded for this verdict: the shelf no longer waits for it."""
        self.awaiting_shelf.pop(record_id, None)

    def use_screener(self, screener: Screener) -> None:
        """Screen with ``screener`` from the next parcel on (a new model, shadow or settings)."""
        self.screener = screener

    def roll_back_model(self, model: Any) -> None:
        """Go back to ``model`` after the one that replaced it tripped the quarantine: a fresh start."""
        self.screener = self.screener.with_model(model)
        self.quarantine = None
        self.monitor = None

    def restore_quarantine(self, quarantine: model_monitor.Quarantine) -> None:
        """A model quarantined before a restart stays quarantined (the agent's start-up)."""
        self.quarantine = quarantine
        self.screener.quarantined = True

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
            carton_order = self._carton_order(barcode)
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

    def _carton_order(self, barcode: Barcode) -> Order | None:
        if barcode.sscc is None:
            return None
        try:
            order = self.orders.lookup(barcode.sscc)
        except OrderError:
            return None
        return order if isinstance(order.get("master_carton"), dict) else None

    def _open_carton(self, scan: Scan, barcode: Barcode, order: Order) -> StationEvent:
        carton = order["master_carton"]
        manifest = frozenset(str(t) for t in carton.get("manifest") or [])
        assert barcode.sscc is not None
        if self._carton is not None:
            log.warning("master carton left open", extra={"carton": self._carton.carton_id})
        tare = carton.get("tare_kg")
        self._carton = _OpenCarton(
            barcode.sscc, manifest, float(tare) if isinstance(tare, (int, float)) else 0.0, order
        )
        log.info("master carton open", extra={"carton": barcode.sscc, "manifest": len(manifest)})
        return StationEvent(
            "carton_open",
            scan.raw,
            message=f"Master carton open: scan the {len(manifest)} parcels inside, "
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

    def _consignee_recent(self, order: Order | None, now: float) -> int:
        consignee = (order or {}).get("consignee") or {}
        if not isinstance(consignee, dict):
            return 0
        address = consignee.get("address") or {}
        key = f"{consignee.get('name')}|{address.get('line1') if isinstance(address, dict) else ''}"
        key = key.lower().strip()
        window = self.config.screening.split_window_s
        while self._recent and now - self._recent[0][0] > window:
            self._recent.popleft()
        count = sum(1 for _, k in self._recent if k == key)
        if key != "none|none":
            self._recent.append((now, key))
        return count

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
        inside: _OpenCarton | None = None
        closed: _OpenCarton | None = None
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
            consignee_recent=self._consignee_recent(order, time.monotonic()),
            watchlisted=self.holds.get(tracking) if tracking else None,
        )
        screening = self._screen(facts)
        event = self._commit(scan.raw, facts, screening, inside, start=start, closed=closed)
        self._watch_model(screening)
        if event.record is not None and screening.verdict == "HOLD":
            self.awaiting_shelf[event.record["record_id"]] = tracking
            while len(self.awaiting_shelf) > _MAX_INCOMPLETE:
                self.awaiting_shelf.popitem(last=False)
        if event.record is not None and tracking is not None:
            if inside is not None:
                inside.scanned.append(tracking)
                inside.weight_kg += weight_kg or 0
            if problem == ORDER_UNAVAILABLE:
                self._incomplete[tracking] = (facts, event.record, inside)
                while len(self._incomplete) > _MAX_INCOMPLETE:
                    self._incomplete.popitem(last=False)
        return event

    def _watch_model(self, screening: Screening) -> None:
        """Feed the quarantine monitor; on a trip, screen rules-only from the next parcel on."""
        model = self.screener.model
        if model is None or self.screener.quarantined:
            return
        if self.monitor is None or self.monitor.version != model.version:  # a new model starts afresh
            self.monitor = model_monitor.ModelMonitor(
                model.version,
                self.config.screening.model_monitor_window,
                model.expected_raise_rate(self.screener.threshold),
            )
        quarantine = self.monitor.observe(screening)
        if quarantine is not None:
            self.quarantine = quarantine
            self.outbox.put_setting(model_monitor.SETTING, model_monitor.encode(quarantine))
            self.screener.quarantined = True
            for react in self.on_quarantine:
                react(quarantine)

    def reinstate_model(self) -> StationEvent:
        """Lift a quarantine (an operator's decision after looking at the model's raises); runs on
        the station thread like any change to the screener."""
        quarantine = self.quarantine
        if quarantine is None or not self.screener.quarantined:
            return StationEvent("ignored", "", message="no model is quarantined")
        self.outbox.put_setting(model_monitor.SETTING, None)
        self.screener.quarantined = False
        self.quarantine = None
        self.monitor = None  # a fresh window: the old raises do not trip it again at once
        log.warning("quarantined model reinstated by an operator", extra={"model": quarantine.version})
        return StationEvent("model_reinstated", "", message=f"model {quarantine.version} reinstated")

    def _commit(
        self,
        raw: str,
        facts: ParcelFacts,
        screening: Screening,
        inside: _OpenCarton | None,
        *,
        start: float,
        supersedes: dict[str, str] | None = None,
        closed: _OpenCarton | None = None,
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


def internal_error(exc: BaseException) -> Screening:
    """The screening of a parcel the agent failed to screen: REVIEW, saying so (never CLEAR)."""
    finding = Finding(
        INTERNAL_ERROR,
        "review",
        f"The agent could not screen this parcel ({type(exc).__name__}): check it by hand.",
    )
    return Screening("REVIEW", None, None, (finding,))


def verdict_record(
    seq: int,
    station: StationConfig,
    facts: ParcelFacts,
    screening: Screening,
    *,
    carton_id: str | None = None,
    supersedes: dict[str, str] | None = None,
    entry: EntrySettings = NO_SETTINGS,
    carton_order: Order | None = None,
    parcel_entry: dict[str, Any] | None = None,
) -> Record:
    """The verdict record for one screened parcel (also used by replays, outside a station).

    ``carton_order`` is the master carton's order (for the carton and the parcels inside it);
    ``parcel_entry`` keeps a corrected record's entry-grade parcel fields as they were.
    """
    record = envelope("verdict", seq, station)
    barcode = facts.barcode
    parcel: dict[str, Any] = {
        "tracking_number": barcode.tracking_number,
        "carrier": barcode.carrier,
        "barcode": {
            "raw": barcode.raw,
            "symbology": barcode.symbology,
            "check_ok": barcode.check_ok,
            "reason": barcode.reason,
            "gs1": barcode.gs1,
        },
        "sscc": barcode.sscc,
        "postal_item_id": barcode.tracking_number if barcode.carrier == "upu" else None,
        "master_carton_id": carton_id,
        "measured_weight_kg": kg(facts.weight_kg),
    }
    if parcel_entry is None:
        parcel_entry = parcel_fields(barcode, facts.order, carton_order, entry)
    parcel.update({k: parcel_entry.get(k) for k in PARCEL_FIELDS})
    if facts.carton is not None:
        parcel["carton"] = {
            "manifest_count": len(facts.carton.manifest),
            "scanned_count": len(facts.carton.scanned),
            "unmanifested": facts.carton.unmanifested,
            "parcels_weight_kg": kg(facts.carton.parcels_weight_kg),
        }
    record["parcel"] = parcel
    record["order"] = None if facts.order is None else complete_order(to_record(facts.order), entry)
    record["screening"] = screening.as_json()
    if supersedes is not None:
        record["supersedes"] = supersedes
    return record
