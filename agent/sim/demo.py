"""``prescreen demo``: a whole packing station on this machine, no hardware, no set-up.

Simulated scanner and scale on pty pairs (read by the real drivers through pyserial), bundled
sample orders in a file export, real screening, the SQLite outbox, a local broker (mosquitto or the
embedded amqtt) and the reference receiver. The simulated operator places each parcel, scans its
label, waits for the verdict and takes the parcel off, exactly as at the bench.
"""

from __future__ import annotations

import collections
import io
import statistics
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

from prescreen.ops import config as cfg
from prescreen.packing.events import StationEvent
from prescreen.sim.demo_loop import learning_round, truth
from prescreen.sim.demo_station import DemoStation
from prescreen.sim.samples import Step, generate
from prescreen.sync.customs import new_message
from prescreen.trade.compliance import correct, record_outcome
from prescreen.trade.exports import MAPPED, write_records
from prescreen.trade.scorecard import scorecard
from prescreen.web.server import check_listen

DEMO_HTTP_PORT = cfg.HttpConfig().port
Progress = Callable[[int, int, Step, StationEvent], None]


def percentile(values: list[float], q: float) -> float:
    """The q-th percentile (0-100) by linear interpolation; 0 for no values."""
    if not values:
        return 0.0
    if len(values) == 1:
        return values[0]
    return statistics.quantiles(values, n=100, method="inclusive")[min(98, max(0, int(q) - 1))]


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


@dataclass
class Shift:
    """What the simulated operator's parcels came to: verdicts, latencies, holds put on the shelf."""

    verdicts: collections.Counter[str] = field(default_factory=collections.Counter)
    latencies: list[float] = field(default_factory=list)
    holds_on_shelf: int = 0

    def latency_ms(self) -> dict[str, float]:
        return {
            "p50": round(percentile(self.latencies, 50), 3),
            "p99": round(percentile(self.latencies, 99), 3),
            "max": round(max(self.latencies, default=0.0), 3),
        }


def work_shift(
    station: DemoStation, steps: list[Step], *, pace_s: float = 0.0, progress: Progress | None = None
) -> Shift:
    """The simulated operator works through ``steps``, ``pace_s`` apart."""
    shift = Shift()
    for number, step in enumerate(steps, start=1):
        event, confirmation = station.run(step)
        if event.record is not None:
            shift.verdicts[event.record["screening"]["verdict"]] += 1
            shift.latencies.append(event.latency_ms or 0.0)
        shift.holds_on_shelf += confirmation is not None and confirmation.kind == "hold_confirmed"
        if progress is not None:
            progress(number, len(steps), step, event)
        time.sleep(pace_s)
    return shift


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
    with tempfile.TemporaryDirectory(prefix="prescreen-demo-") as tmp:
        where = Path(workdir or tmp)
        orders, steps = generate(parcels, seed=seed)
        later_orders, later = second_shift(steps, max(20, parcels // 2), seed) if learning else ([], [])
        # The page on the documented port when it is free (a bookmark keeps working), else any.
        port = DEMO_HTTP_PORT if check_listen("127.0.0.1", DEMO_HTTP_PORT) is None else 0
        station = DemoStation(
            where, [*orders, *later_orders], broker_kind, receiver_process=True, http_port=port, models=True
        )
        started = time.monotonic()
        try:
            if announce is not None:
                announce(station.page_url())
            shift = work_shift(station, steps, pace_s=pace_s, progress=progress)
            compliance = compliance_round(station)
            assert station.update_key is not None
            loop = learning_round(station, steps, later, station.update_key) if learning else None
            station.drain()
            return {
                **summary(station, shift),
                "compliance": compliance,
                "learning": loop,
                "seconds": round(time.monotonic() - started, 2),
                "workdir": str(where),
                "workdir_kept": workdir is not None,
            }
        finally:
            station.close()


def summary(station: DemoStation, shift: Shift) -> dict[str, Any]:
    """The demo's figures after its parcels: verdicts, delivery, latency, exports, sellers, model."""
    assert station.agent is not None
    counts = station.agent.outbox.counts()
    records, feedback = station.agent.outbox.records(), station.agent.outbox.feedback()
    now = datetime.now(timezone.utc)
    sellers = scorecard(records, since=now - timedelta(days=1), now=now, feedback=feedback)
    model = station.agent.screener.model
    return {
        "parcels": sum(shift.verdicts.values()),
        "verdicts": {k: shift.verdicts.get(k, 0) for k in ("CLEAR", "REVIEW", "HOLD")},
        "holds_on_shelf": shift.holds_on_shelf,
        "committed": sum(counts.values()),
        "acked": counts.get("acked", 0),
        **station.delivery(),
        "latency_ms": shift.latency_ms(),
        "exports": export_counts(records),
        "sellers": [seller.as_json() for seller in sellers],
        "model": model.version if model else None,
        "broker": station.broker.kind,
    }
