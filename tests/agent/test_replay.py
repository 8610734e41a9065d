"""Replay across worker processes commits what one thread commits: same verdicts, findings, order
and sequence numbers (only record ids, times and so signatures differ), each record signed."""

from __future__ import annotations

import json
import sqlite3
from decimal import Decimal
from functools import partial
from pathlib import Path
from typing import Any

import pytest
from prescreen.core.db import CHECKPOINT_THREAD_PREFIX
from prescreen.core.records import dumps, envelope, validate
from prescreen.core.signing import DeviceKey, TrustStore
from prescreen.drivers.barcodes import decode
from prescreen.models.runner import load_risk_model
from prescreen.ops.config import Config, ScreeningConfig, StationConfig
from prescreen.packing import replay as replay_module
from prescreen.packing.outbox import Outbox
from prescreen.packing.replay import load_screener, replay, screen_lines
from prescreen.risk.rules import ParcelFacts
from prescreen.risk.screening import Screener
from prescreen.sim.samples import generate

STATION = StationConfig("replay-dev", "replay-site", "FILER1")
PARCELS = 450  # more than two worker chunks (200), and not a multiple of a commit group (100)


def _screener() -> Screener:
    return Screener(ScreeningConfig(), load_risk_model())


def _facts() -> list[ParcelFacts]:
    orders, _ = generate(PARCELS * 2, seed=11)
    parcels = [o for o in orders if "items" in o][:PARCELS]
    assert len(parcels) == PARCELS
    weights = ("0.75", "3.2", "12")  # some weights against the declared ones raise findings
    return [
        ParcelFacts(barcode=decode(o["tracking_number"]), weight_kg=Decimal(weights[i % 3]), order=o)
        for i, o in enumerate(parcels)
    ]


def _replayed(path: Path, key: DeviceKey, workers: int, facts: list[ParcelFacts]) -> list[dict[str, Any]]:
    outbox = Outbox(path, signer=key)
    outbox.append(lambda seq: envelope("heartbeat", seq, STATION))  # replay goes on after seq 1
    assert replay(outbox, STATION, facts, _screener, workers=workers, group=100) == PARCELS
    outbox.close()
    with sqlite3.connect(path) as conn:
        rows = conn.execute("SELECT seq, body FROM records WHERE kind = 'verdict' ORDER BY seq").fetchall()
    records = []
    for seq, body in rows:
        record = json.loads(body)
        assert record["seq"] == seq
        assert dumps(record) == body  # stored canonical, as the receiver re-reads it
        records.append(record)
    return records


@pytest.mark.slow
def test_two_workers_commit_what_one_thread_commits(tmp_path: Path) -> None:
    key = DeviceKey.load_or_create(tmp_path / "device.key")
    facts = _facts()
    one = _replayed(tmp_path / "one.db", key, 1, facts)
    two = _replayed(tmp_path / "two.db", key, 2, facts)
    assert [r["seq"] for r in one] == [r["seq"] for r in two] == list(range(2, PARCELS + 2))
    trust = TrustStore([key.trust_entry(STATION.site_id, STATION.device_id)])
    for record in two:
        validate(record)
        assert trust.check(record) is None  # signed over its own seq, id and time
    verdicts = {r["screening"]["verdict"] for r in one}
    assert len(verdicts) > 1, verdicts  # the parcels do not all screen alike: the comparison bites
    differ = ("record_id", "created_at", "signature")
    assert [{k: v for k, v in r.items() if k not in differ} for r in one] == [
        {k: v for k, v in r.items() if k not in differ} for r in two
    ]
    assert len({r["record_id"] for r in two}) == PARCELS


@pytest.mark.slow
def test_screen_lines_in_workers_answer_in_input_order(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(replay_module, "CHUNK", 50)
    lines = [json.dumps({"tracking_number": f.barcode.raw, "order": f.order}) for f in _facts()[:160]]
    lines[7] = "{not json"
    lines[60] = "   "
    lines[111] = json.dumps({"order": "no order", "measured_weight_kg": "heavy"})
    make = partial(load_screener, Config())
    here = list(screen_lines(lines, make, workers=1))
    there = list(screen_lines(lines, make, workers=2))
    assert here == there
    assert len(here) == 159  # the blank line has no answer
    assert [r["line"] for r in here] == [n for n in range(1, 161) if n != 61]
    assert "error" in here[7]
    assert "error" in here[110]  # line 112


def test_workers_fork_beside_an_outbox_checkpointer_but_not_beside_other_threads(tmp_path: Path) -> None:
    """An open outbox runs a WAL checkpointer thread: the replay's workers are still forked (a
    spawned worker starts an interpreter and loads the tables, ~0.6 s of CPU before its first
    parcel); any other thread makes them spawned, as before."""
    import threading

    outbox = Outbox(tmp_path / "outbox.db")
    try:
        assert any(t.name.startswith(CHECKPOINT_THREAD_PREFIX) for t in threading.enumerate())
        assert replay_module._fork_safe()
        stop = threading.Event()
        other = threading.Thread(target=stop.wait, name="uplink")
        other.start()
        try:
            assert not replay_module._fork_safe()
        finally:
            stop.set()
            other.join()
        assert replay_module._fork_safe()
    finally:
        outbox.close()
