"""``prescreen demo``: a whole packing station on this machine, no hardware, no set-up.

Simulated scanner and scale on pty pairs (read by the real drivers through pyserial), bundled
sample orders in a file export, real screening, the SQLite outbox, a local broker (mosquitto or the
embedded amqtt) and the reference receiver. The simulated operator places each parcel, scans its
label, waits for the verdict and takes the parcel off, exactly as at the bench.
"""

from __future__ import annotations

import collections
import io
import json
import logging
import queue
import statistics
import subprocess
import tempfile
import time
from collections.abc import Callable
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

from prescreen.core.errors import ConfigError
from prescreen.core.signing import DeviceKey, TrustStore
from prescreen.drivers.registry import scale_protocol
from prescreen.drivers.sim import ScaleSimulator, ScannerSimulator
from prescreen.ops import config as cfg
from prescreen.packing.app import Agent
from prescreen.packing.station import StationEvent
from prescreen.sim.demo_loop import learning_round, truth
from prescreen.sim.samples import ACCOUNT_CHANNELS, DEMO_RATES, Step, generate
from prescreen.sim.syncbench import enrol, start_receiver, stop_process
from prescreen.sync.broker import LocalBroker
from prescreen.sync.customs import new_message, send_downlink
from prescreen.sync.delivery import check_delivery, ledger_of
from prescreen.sync.receiver import Receiver
from prescreen.sync.store import open_store
from prescreen.trade.compliance import correct, record_outcome
from prescreen.trade.exports import MAPPED, write_records
from prescreen.trade.scorecard import scorecard
from prescreen.web.server import api_headers, check_listen

log = logging.getLogger("prescreen.demo")
DEMO_HTTP_PORT = cfg.HttpConfig().port
Progress = Callable[[int, int, Step, StationEvent], None]


def percentile(values: list[float], q: float) -> float:
    """The q-th percentile (0-100) by linear interpolation; 0 for no values."""
    if not values:
        return 0.0
    if len(values) == 1:
        return values[0]
    return statistics.quantiles(values, n=100, method="inclusive")[min(98, max(0, int(q) - 1))]


def demo_config(
    workdir: Path,
    scale_port: str,
    scanner_port: str,
    broker: LocalBroker,
    *,
    customs: DeviceKey | None = None,
    receiver: DeviceKey | None = None,
    update: DeviceKey | None = None,
    http_port: int = 0,
) -> cfg.Config:
    """The station config the demo runs with: fast polling, everything under ``workdir`` (where the
    demo's USD rate table is written), the demo's customs and receiver keys trusted, and a broker
    on loopback without TLS or a login (``allow_insecure``: the demo says so when it starts)."""
    config = cfg.Config()
    config = cfg.replace(
        config,
        "scale",
        url=scale_port,
        protocol="mt-sics",
        poll_interval_ms=10,
        settle_readings=3,
        settle_ms=20,
    )
    config = cfg.replace(config, "scanner", url=scanner_port)
    config = cfg.replace(config, "orders", path=str(workdir / "orders.ndjson"))
    config = cfg.replace(config, "outbox", path=str(workdir / "outbox.db"))
    config = cfg.replace(config, "http", port=http_port)
    rates = workdir / "usd-rates.json"  # the demo's illustrative rate table, written with the config
    rates.write_text(json.dumps(DEMO_RATES))
    config = cfg.replace(config, "entry", account_channels=ACCOUNT_CHANNELS, usd_rates_path=str(rates))
    return cfg.replace(
        config,
        "sync",
        host=broker.host,
        port=broker.port,
        batch_age_ms=20,
        customs_keys=(customs.public_b64,) if customs else (),
        receiver_keys=(receiver.public_b64,) if receiver else (),
        update_key=update.public_b64 if update else "",
        allow_insecure=True,
    )


_SIDE_EVENTS = frozenset(
    {"downlink", "late_hold", "shelf_outcome", "correction", "outcome", "rfi_response", "screening"}
)


class DemoStation:
    """One simulated station with its broker and receiver, for the demo and the browser tests.

    ``run(step)`` is the simulated operator: place the parcel, scan its label, wait for the
    verdict, take the parcel off; a HOLD is then put on the shelf and confirmed with a scan of the
    shelf label, as at a real bench.
    """

    def __init__(
        self,
        workdir: Path,
        orders: list[dict[str, Any]],
        broker_kind: str = "mosquitto",
        *,
        receiver_process: bool = False,
        http_port: int = 0,
        models: bool = False,
    ) -> None:
        workdir.mkdir(parents=True, exist_ok=True)
        (workdir / "orders.ndjson").write_text("".join(json.dumps(o) + "\n" for o in orders))
        self.workdir = workdir
        self.broker = LocalBroker.start(prefer=broker_kind)
        # The station's key is made before the agent's first start (as `prescreen key show` does
        # at enrolment), so the receiver trusts exactly this station and verifies every record.
        _, trust = enrol(workdir, cfg.StationConfig(), workdir / "device.key")
        # The customs side's keys: one signs downlink messages, one the receiver's acks.
        self.customs_key = DeviceKey.load_or_create(workdir / "customs.key")
        self.receiver_key = DeviceKey.load_or_create(workdir / "receiver.key")
        # With ``models``, the station trusts the demo's model update key (the learning loop).
        self.update_key = DeviceKey.load_or_create(workdir / "update.key") if models else None
        shared = self.broker.kind == "mosquitto"
        # In-process for tests that look inside the receiver; its own process (as deployed, on
        # another machine) for the demo and the benchmark, so it does not share the agent's GIL.
        self.receiver: Receiver | None = None
        self._receiver_process: subprocess.Popen[bytes] | None = None
        if receiver_process:
            extra = (
                "--key",
                str(workdir / "receiver.key"),
                *(("--prefix", "prescreen/v1") if shared else ("--no-share",)),
            )
            self._receiver_process = start_receiver(
                workdir / "receiver.db", self.broker, workdir / "receiver.sock", trust, *extra
            )
        else:
            self.receiver = Receiver(
                workdir / "receiver.db",
                trust=TrustStore.load(trust),
                host=self.broker.host,
                port=self.broker.port,
                shared=shared,
                signer=self.receiver_key,
            ).start()
            self.receiver.mqtt.wait_connected(10)
        self.scale = ScaleSimulator(scale_protocol("mt-sics"))
        self.scanner = ScannerSimulator()
        self.events: queue.Queue[StationEvent] = queue.Queue()
        self.agent: Agent | None = None
        try:
            config = demo_config(
                workdir,
                self.scale.port,
                self.scanner.port,
                self.broker,
                http_port=http_port,
                customs=self.customs_key,
                receiver=self.receiver_key,
                update=self.update_key,
            )
            try:
                self.agent = Agent(config).start()
            except ConfigError:
                if http_port == 0:
                    raise
                # The documented port was taken between the check and the start (another demo,
                # a test run): the page on any free port rather than no demo.
                self.agent = Agent(cfg.replace(config, "http", port=0)).start()
        except BaseException:
            self.close()
            raise
        self.agent.station.listeners.append(self.events.put)

    @property
    def url(self) -> str:
        """The station page."""
        if self.agent is None or self.agent.http is None:
            raise RuntimeError("the demo station has no HTTP server")
        return self.agent.http.url + "/station"

    def page_url(self, query: str = "") -> str:
        """The station page with the local API's token, as ``prescreen page-url`` prints it."""
        if self.agent is None or self.agent.http is None:
            raise RuntimeError("the demo station has no HTTP server")
        return f"{self.url}{query}#token={self.agent.http.token}"

    def api_headers(self) -> dict[str, str]:
        """What a local client of this station's API sends with a POST (token from the 0600 file)."""
        assert self.agent is not None
        return api_headers(self.agent.config.api_token_path())

    def api_config(self, path: Path) -> Path:
        """A TOML config with which ``prescreen correct|outcome|rfi|rfs`` on this machine reach this
        station's local API (its port and the 0600 token file), written to ``path``."""
        assert self.agent is not None
        assert self.agent.http is not None
        port = self.agent.http.url.rsplit(":", 1)[1]
        token = self.agent.config.api_token_path()
        path.write_text(f'[http]\nhost = "127.0.0.1"\nport = {port}\ntoken_file = "{token}"\n')
        return path

    def run(self, step: Step, *, shelf: str | None = "SHELF-A1") -> tuple[StationEvent, StationEvent | None]:
        """One parcel at the bench; returns its verdict event and, for a HOLD, its confirmation
        (``shelf`` None leaves the HOLD waiting for the operator, e.g. a touch on the page)."""
        if step.weight_kg is not None:
            self.scale.place(step.weight_kg, motion=2)
        self.scanner.scan(step.payload, aim=step.aim)
        event = self._next_scan_event()
        if step.weight_kg is not None:
            self.scale.place("0", motion=1)
        confirmation = None
        if shelf is not None and event.record is not None and event.record["screening"]["verdict"] == "HOLD":
            self.scanner.scan(shelf)
            confirmation = self._next_scan_event()
        return event, confirmation

    def shelve(self, shelf: str = "SHELF-A1") -> StationEvent:
        """The operator puts a fetched-back parcel on the hold shelf and scans the shelf label."""
        self.scanner.scan(shelf)
        return self._next_scan_event()

    def _next_scan_event(self) -> StationEvent:
        # Events of other sources (downlink messages, corrections, outcomes) may come in between.
        while True:
            event = self.events.get(timeout=30)
            if event.kind not in _SIDE_EVENTS:
                return event

    def send(
        self, message: dict[str, Any], *, sealed: bool = False, wait_s: float = 10.0
    ) -> dict[str, Any] | None:
        """Send the station a downlink message as the customs side (signed with the demo's customs
        key unless ``sealed`` already); returns its ack, or None if none came in ``wait_s``."""
        station = cfg.StationConfig()
        return send_downlink(
            message,
            site=station.site_id,
            device=station.device_id,
            host=self.broker.host,
            port=self.broker.port,
            key=None if sealed else self.customs_key,
            wait_s=wait_s,
        )

    def delivery(self) -> dict[str, Any]:
        """Whether every committed record reached the receiver's store exactly once
        (:func:`prescreen.sync.delivery.check_delivery`), with its counts."""
        assert self.agent is not None
        uplink = self.agent.uplink
        committed = ledger_of(
            self.agent.config.station.site_id,
            self.agent.config.station.device_id,
            self.agent.outbox.sequence(),
        )
        store = self.receiver.store if self.receiver is not None else open_store(self.workdir / "receiver.db")
        try:
            report = check_delivery(store, [committed], resent=lambda: uplink.copies_sent_again)
        finally:
            if self.receiver is None:
                store.close()
        return {
            "received": report.stored,
            "duplicates": report.deduplicated,
            "resent": report.resent,
            "rejected": report.rejected,
            "exactly_once": report.ok,
            "delivery_problems": report.problems,
        }

    def drain(self, timeout_s: float = 30) -> None:
        """Wait until the receiver acked every committed record."""
        assert self.agent is not None
        deadline = time.monotonic() + timeout_s
        while self.agent.outbox.counts().get("pending", 0) and time.monotonic() < deadline:
            time.sleep(0.05)

    def close(self) -> None:
        """Stop everything, agent first."""
        if self.agent is not None:
            self.agent.stop()
        if self.receiver is not None:
            self.receiver.stop()
        if self._receiver_process is not None:
            stop_process(self._receiver_process)
        self.scale.close()
        self.scanner.close()
        self.broker.stop()


def compliance_round(station: DemoStation) -> dict[str, Any]:
    """The compliance loop on the demo's own parcels, through the real interfaces.

    1. Compliance corrects a parcel held for its weight (the seller declared the item, not the
       packed parcel): the agent re-screens it and sends the new version, which supersedes the old.
    2. Compliance records the outcome: released after correction if it now clears, else returned
       to the seller.
    3. Customs sends a request for screening on a parcel that was already cleared (a late hold:
       the ack reports the parcel's state) and feedback to the seller of the corrected parcel.
    """
    agent = station.agent
    assert agent is not None
    verdicts = [r for r in agent.outbox.records() if r["kind"] == "verdict"]
    held = [
        r
        for r in verdicts
        if r["screening"]["verdict"] == "HOLD"
        and r["order"] is not None
        and any(f["code"] == "WEIGHT_MISMATCH" for f in r["screening"]["reasons"])
    ]
    summary: dict[str, Any] = {}
    if held:
        old = held[0]
        measured = old["parcel"]["measured_weight_kg"]
        corrected = agent.station.submit(
            lambda: correct(
                agent.station, old["record_id"], {"declared_weight_kg": str(measured)}, by="demo-compliance"
            )
        ).result(10)
        assert corrected.record is not None
        new_id, after = corrected.record["record_id"], corrected.record["screening"]["verdict"]
        outcome = "released_after_correction" if after == "CLEAR" else "returned_to_seller"
        agent.station.submit(lambda: record_outcome(agent.station, new_id, outcome, note="demo")).result(10)
        summary["correction"] = {
            "tracking_number": old["parcel"]["tracking_number"],
            "seller": (old["order"]["seller"] or {}).get("name"),
            "changed": {"declared_weight_kg": [old["order"]["declared_weight_kg"], measured]},
            "verdict_before": "HOLD",
            "verdict_after": after,
            "outcome": outcome,
        }
    cleared = [r for r in verdicts if r["screening"]["verdict"] == "CLEAR"]
    if cleared:
        target = cleared[0]["parcel"]["tracking_number"]
        ack = station.send(new_message("rfs", tracking_number=target, reason="demo: request for screening"))
        summary["late_hold"] = None if ack is None else {"tracking_number": target, **ack}
        if ack is not None and ack["status"] == "applied":  # fetched back from the cart, onto the shelf
            summary["late_hold"]["shelved"] = station.shelve().kind == "hold_confirmed"
    if held:
        seller = summary["correction"]["seller"]
        text = (
            f"declared weights on {seller}'s parcels are far below what they weigh: declare the packed weight"
        )
        ack = station.send(new_message("feedback", seller=seller, text=text))
        summary["feedback"] = None if ack is None else ack["status"]
    return summary


def second_shift(first: list[Step], parcels: int, seed: int) -> tuple[list[dict[str, Any]], list[Step]]:
    """Orders and parcels of the shift screened with the trained model in shadow (none of them with
    a tracking number of the first shift)."""
    orders, steps = generate(parcels, seed=seed + 1)
    taken = set(truth(first))
    steps = [s for s in steps if s.kind == "parcel" and not taken & set(truth([s]))]
    return orders, steps


def export_counts(records: list[dict[str, Any]]) -> dict[str, dict[str, int]]:
    """Rows each filer export would write from ``records`` and the parcels it would refuse."""
    counts = {}
    for fmt in MAPPED:
        result = write_records(records, fmt, io.StringIO())
        counts[fmt] = {"rows": result.written, "refused": len(result.refused)}
    return counts


def run_demo(
    parcels: int = 100,
    *,
    workdir: Path | None = None,
    progress: Progress | None = None,
    broker_kind: str = "mosquitto",
    seed: int = 7,
    announce: Callable[[str], None] | None = None,
    pace_s: float = 0.0,
    learning: bool = True,
) -> dict[str, Any]:
    """Run the demo and return its summary (the ``--json`` object).

    ``announce`` is told the station page's URL once it is up; ``pace_s`` slows the simulated
    operator down so a person can watch the page; ``learning`` runs the learning loop after the
    compliance loop (the benchmark, which times only the parcels, leaves it out).
    """
    kept = workdir is not None
    with tempfile.TemporaryDirectory(prefix="prescreen-demo-") as tmp:
        workdir = Path(workdir or tmp)
        orders, steps = generate(parcels, seed=seed)
        later_orders, later = second_shift(steps, max(20, parcels // 2), seed) if learning else ([], [])
        # The page on the documented port when it is free (a bookmark keeps working), else any.
        port = DEMO_HTTP_PORT if check_listen("127.0.0.1", DEMO_HTTP_PORT) is None else 0
        station = DemoStation(
            workdir, [*orders, *later_orders], broker_kind, receiver_process=True, http_port=port, models=True
        )
        started = time.monotonic()
        try:
            if announce is not None:
                announce(station.page_url())
            latencies: list[float] = []
            verdicts: collections.Counter[str] = collections.Counter()
            confirmed = 0
            for number, step in enumerate(steps, start=1):
                event, confirmation = station.run(step)
                if event.record is not None:
                    verdicts[event.record["screening"]["verdict"]] += 1
                    latencies.append(event.latency_ms or 0.0)
                confirmed += confirmation is not None and confirmation.kind == "hold_confirmed"
                if progress is not None:
                    progress(number, len(steps), step, event)
                time.sleep(pace_s)
            compliance = compliance_round(station)
            assert station.update_key is not None
            loop = learning_round(station, steps, later, station.update_key) if learning else None
            station.drain()
            assert station.agent is not None
            counts = station.agent.outbox.counts()
            records, feedback = station.agent.outbox.records(), station.agent.outbox.feedback()
            now = datetime.now(timezone.utc)
            sellers = scorecard(records, since=now - timedelta(days=1), now=now, feedback=feedback)
            return {
                "parcels": sum(verdicts.values()),
                "verdicts": {k: verdicts.get(k, 0) for k in ("CLEAR", "REVIEW", "HOLD")},
                "holds_on_shelf": confirmed,
                "committed": sum(counts.values()),
                "acked": counts.get("acked", 0),
                **station.delivery(),
                "latency_ms": {
                    "p50": round(percentile(latencies, 50), 3),
                    "p99": round(percentile(latencies, 99), 3),
                    "max": round(max(latencies, default=0.0), 3),
                },
                "compliance": compliance,
                "learning": loop,
                "exports": export_counts(records),
                "sellers": [seller.as_json() for seller in sellers],
                "model": station.agent.screener.model.version if station.agent.screener.model else None,
                "broker": station.broker.kind,
                "seconds": round(time.monotonic() - started, 2),
                "workdir": str(workdir),
                "workdir_kept": kept,
            }
        finally:
            station.close()
