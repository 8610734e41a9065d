"""The learning loop end to end (issue 17), with a real broker, receiver, station and HTTP server
and the real CLI: customs outcomes down, labels built, a model trained from them (the numpy trainer,
so this runs in CI), delivered in shadow, reported, promoted and used. Forged, replayed and
malformed outcomes, models and RFI answers are refused with one log line each and change nothing
(an RFI answer without the local API's token: tests/sync/test_referrals.py).
"""

from __future__ import annotations

import csv
import functools
import http.server
import json
import logging
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from prescreen.commands.main import main
from prescreen.core.records import dumps, envelope
from prescreen.core.signing import DeviceKey
from prescreen.core.wire import encode_batch
from prescreen.ops.config import StationConfig
from prescreen.sim.demo import DemoStation
from prescreen.sim.samples import Step, generate
from prescreen.sync.customs import model_message, new_message, seal
from prescreen.sync.store import Filters

VERSION = "risk-loop-1"
SITE, DEVICE = StationConfig().site_id, StationConfig().device_id


@pytest.fixture
def models_http(tmp_path: Path) -> Iterator[tuple[Path, str]]:
    """A real HTTP server for the models customs publishes."""
    root = tmp_path / "published"
    root.mkdir()
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(root))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield root, f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()


def _outcome(record: dict[str, Any], step: Step) -> dict[str, Any]:
    return new_message(
        "outcome",
        tracking_number=record["parcel"]["tracking_number"],
        outcome="released" if step.label == "clean" else "seized",
        reason_code="LOOP",
        customs_reference=f"C-{record['seq']}",
    )


def _scan_and_decide(bench: DemoStation, steps: list[Step]) -> int:
    decided = 0
    for step in steps:
        record = bench.run(step)[0].record
        if record is None or not record.get("order") or not record["parcel"]["tracking_number"]:
            continue
        assert (bench.send(_outcome(record, step)) or {}).get("status") == "applied"
        decided += 1
    return decided


def _effects(bench: DemoStation) -> int:
    assert bench.agent is not None
    return sum(r["kind"] == "downlink" for r in bench.agent.outbox.records())


def _refused_outcomes(bench: DemoStation, caplog: pytest.LogCaptureFixture, tmp_path: Path) -> None:
    """A forged, a replayed and a malformed outcome: refused (or rejected), nothing else changes."""
    assert bench.agent is not None
    downlink = bench.agent.downlink
    verdict = next(r for r in bench.agent.outbox.records() if r["kind"] == "verdict" and r.get("order"))
    holds, effects = dict(bench.agent.station.holds), _effects(bench)
    good = _outcome(verdict, Step("parcel", "", "", None, "risk"))
    forger = DeviceKey.load_or_create(tmp_path / "forger.key")
    with caplog.at_level(logging.INFO):
        assert bench.send(seal(good, forger, site=SITE, device=DEVICE), sealed=True, wait_s=2) is None
        assert (bench.send(good) or {}).get("status") == "applied"
        replay = seal({**good, "outcome": "released"}, bench.customs_key, site=SITE, device=DEVICE)
        assert bench.send(replay, sealed=True, wait_s=2) is None
        malformed = {**_outcome(verdict, Step("parcel", "", "", None, "risk")), "outcome": "confiscated"}
        ack = bench.send(malformed)
    assert ack is not None
    assert ack["status"] == "rejected"
    assert "outcome must be one of" in ack["detail"]
    assert (downlink.refused["forged"], downlink.refused["replayed"]) == (1, 1)
    refused = [
        getattr(r, "why", None) for r in caplog.records if r.getMessage() == "downlink message refused"
    ]
    assert sorted(refused) == ["forged", "replayed"]
    assert bench.agent.station.holds == holds
    assert _effects(bench) == effects + 2  # the good one and the rejected one, each with its record


def _forged_rfi_answer_is_refused_by_the_receiver(bench: DemoStation, tmp_path: Path) -> None:
    """An rfi_response record signed by a key the receiver does not trust is stored nowhere."""
    assert bench.receiver is not None
    rogue = DeviceKey.load_or_create(tmp_path / "rogue.key")
    record = envelope("rfi_response", 10**9, StationConfig())
    record["rfi_response"] = {
        "message_id": "m-1",
        "tracking_number": "1ZFORGED000000001",
        "refers_to": None,
        "requested_fields": ["invoice"],
        "fields": {"invoice": "INV-FAKE"},
        "answered_by": "station",
        "note": None,
    }
    before = bench.receiver.store.stats().get("rejected_forged", 0)
    topic = f"prescreen/v1/{SITE}/{DEVICE}/records"
    bench.receiver.handle(topic, encode_batch("forged-1", DEVICE, [dumps(rogue.sign(record))]))
    assert bench.receiver.store.stats()["rejected_forged"] == before + 1
    assert not bench.receiver.store.query(Filters(tracking_number="1ZFORGED000000001"))


def test_the_learning_loop_end_to_end(
    tmp_path: Path,
    models_http: tuple[Path, str],
    capsys: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    root, base = models_http
    orders, steps = generate(80, seed=21)
    parcels = [s for s in steps if s.kind == "parcel"]
    bench = DemoStation(tmp_path / "loop", orders, models=True)
    try:
        assert bench.agent is not None
        assert bench.update_key is not None
        assert _scan_and_decide(bench, parcels[:50]) >= 30
        _refused_outcomes(bench, caplog, tmp_path)
        _forged_rfi_answer_is_refused_by_the_receiver(bench, tmp_path)
        bench.drain()

        db = str(bench.workdir / "receiver.db")
        assert main(["records", "labels", "--db", db]) == 0
        labels = tmp_path / "labels.csv"
        labels.write_text(capsys.readouterr().out)
        # Every screened parcel, labelled or not: the new model's review budget is measured on them.
        assert main(["records", "labels", "--db", db, "--screened"]) == 0
        screened = tmp_path / "screened.csv"
        screened.write_text(capsys.readouterr().out)
        with screened.open() as handle:
            stream = list(csv.DictReader(handle))
        assert {r["cleared"] for r in stream} == {"0", "1"}
        assert len({r["tracking_number"] for r in stream}) == len(stream) >= 45
        trained = tmp_path / "trained"
        train = ["model", "train", "--labels", str(labels), "--out", str(trained), "--version", VERSION]
        train += ["--calibrate-on", str(screened)]
        assert main([*train, "--synthetic", "300", "--trainer", "numpy"]) == 0
        assert "(numpy) written to" in capsys.readouterr().out  # said, not guessed
        metrics = json.loads((trained / "metrics.json").read_text())
        assert metrics["calibrated_on"] == f"{len(stream)} screened parcels"
        published = root / VERSION
        published.mkdir()
        for name in (f"{VERSION}.tflite", "model.json"):
            (published / name).write_bytes((trained / name).read_bytes())
        assert main(["model", "manifest", "--dir", str(published), "--base-url", f"{base}/{VERSION}"]) == 0
        manifest_file = tmp_path / "m.json"
        manifest_file.write_text(capsys.readouterr().out)
        manifest = json.loads(manifest_file.read_text())
        assert {f["name"] for f in manifest["files"]} == {"model.json", f"{VERSION}.tflite"}
        send = ["downlink", "send", "--type", "model", "--site", SITE, "--device", DEVICE, "--json"]
        send += ["--port", str(bench.broker.port), "--wait", "20"]
        send += ["--key", str(bench.workdir / "customs.key")]
        send += ["--manifest", str(manifest_file), "--signing-key", str(bench.workdir / "update.key")]

        # A manifest signed by a key the station does not trust for updates installs nothing.
        forger = DeviceKey.load_or_create(tmp_path / "update-forger.key")
        forged = model_message(manifest, forger, site=SITE, device=DEVICE, shadow=True)
        ack = bench.send(forged, wait_s=20)
        assert ack is not None
        assert ack["status"] == "rejected", ack
        assert bench.agent.station.screener.shadow is None

        assert main([*send, "--shadow"]) == 0
        assert json.loads(capsys.readouterr().out)["status"] == "applied"
        # An older manifest, validly signed, sent again (a replay) is not newer: refused.
        replay = model_message(manifest, bench.update_key, site=SITE, device=DEVICE, shadow=True, serial=10)
        ack = bench.send(replay, wait_s=20)
        assert ack is not None
        assert ack["status"] == "rejected"
        assert "is not newer than the installed" in ack["detail"]

        live = bench.agent.station.screener.model
        _scan_and_decide(bench, parcels[50:-1])
        bench.drain()
        assert main(["records", "shadow-report", "--db", db, "--json"]) == 0
        (row,) = json.loads(capsys.readouterr().out)["stations"]
        assert row["shadow_version"] == VERSION
        assert row["labelled"] == row["parcels"] > 0
        assert {"live_precision", "live_recall", "shadow_precision", "shadow_recall"} <= set(row)
        assert bench.agent.station.screener.model is live  # shadow changed no verdict's model

        assert row["promotion_refused"] is None  # as good as live on the decided parcels
        # Promotion is judged on the evidence: none asked for, or none in the period, sends nothing.
        assert main([*send, "--promote"]) == 1
        assert "--promote needs --evidence DB" in capsys.readouterr().err
        assert main([*send, "--promote", "--evidence", db, "--since", "2999-01-01T00:00:00Z"]) == 1
        assert f"not promoted: no shadow report for {VERSION}" in capsys.readouterr().err
        assert bench.agent.station.screener.model is live
        assert main([*send, "--promote", "--evidence", db]) == 0
        assert json.loads(capsys.readouterr().out)["status"] == "applied"
        # --force sends a promotion the evidence does not support (here: none left to promote).
        assert main([*send, "--promote", "--force"]) == 1
        err = capsys.readouterr()
        assert "promoting anyway (--force): no --evidence given" in err.err
        assert json.loads(err.out)["status"] == "rejected"
        used = bench.run(parcels[-1])[0].record
        assert used is not None
        assert used["screening"]["model_version"] == VERSION
        with capsys.disabled():
            print(f"\nshadow report: {json.dumps(row)}")
    finally:
        bench.close()
