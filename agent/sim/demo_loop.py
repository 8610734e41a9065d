"""The learning loop in the demo (issue 17), through the real interfaces, after the parcels.

1. Customs decides the parcels the station held or sent to review (``outcome`` downlink messages):
   seized where the demo's sample made the parcel a risk (precursors, presses), released otherwise
   (a vague description or a missing tariff code is fixed, not seized).
2. The receiver's store gives the training labels (``prescreen records labels``).
3. A model is trained on them, mixed with synthetic rows, in seconds (``prescreen model train``;
   without TensorFlow, which the demo's virtualenv never has, by the numpy trainer, and the summary
   says which one ran). Too few outcomes (a short demo) is said, and the loop stops there.
4. It is published over HTTP on loopback and shipped to the station in shadow, signed by the
   demo's model update key; a second shift of parcels is screened with it beside the live model
   and customs decides those too.
5. The receiver's shadow report compares the two models, then the model is promoted (the same
   manifest, a newer serial) and screens the last parcel.
"""

from __future__ import annotations

import functools
import http.server
import json
import logging
import random
import shutil
import threading
from collections import Counter
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

from prescreen.core.errors import ModelError
from prescreen.core.signing import DeviceKey
from prescreen.drivers.barcodes import decode
from prescreen.ops import config as cfg
from prescreen.sim.samples import Step
from prescreen.sync.customs import model_manifest, model_message, new_message
from prescreen.sync.labels import label_rows, screened_rows, write_csv
from prescreen.sync.shadow import promotion_refusal, shadow_report
from prescreen.sync.store import Filters, open_store

if TYPE_CHECKING:
    from prescreen.sim.demo_station import DemoStation

log = logging.getLogger("prescreen.demo")
VERSION = "risk-demo-outcomes"
SYNTHETIC_ROWS = 300  # per generator, mixed into the few outcome labels a demo has
# Customs examines a random share of the parcels the station cleared (random compliance
# examinations, as customs do to measure what targeting misses), besides every held or reviewed one.
EXAMINED_SHARE = 0.25
SEIZED = frozenset({"risk", "counterfeit"})  # what the sample's parcels really are, when examined


def truth(steps: list[Step]) -> dict[str, str]:
    """What each parcel of the sample really is (its tracking number -> the sample's label)."""
    found = {}
    for step in steps:
        tracking = decode(step.payload).tracking_number if step.kind == "parcel" else None
        if tracking:
            found[tracking] = step.label
    return found


def examined(tracking: str, share: float = EXAMINED_SHARE) -> bool:
    """Whether customs' random compliance examination picks this cleared parcel: a seeded draw per
    tracking number, so the same parcel is picked in every run and whatever order it comes in."""
    return random.Random(f"demo-examination:{tracking}").random() < share


def _picked(record: Mapping[str, Any]) -> str | None:
    """Why customs examines this parcel, if it does: raised (held or reviewed), the shadow model
    would raise it (customs checks a model on trial, as it checks every live raise), or picked at
    random among the cleared ones."""
    screening = record["screening"]
    if screening["verdict"] != "CLEAR":
        return "raised"
    if (screening.get("shadow") or {}).get("would_raise") is True:
        return "shadow"
    return "examined" if examined(str(record["parcel"]["tracking_number"])) else None


def customs_decides(station: DemoStation, truths: Mapping[str, str], decided: set[str]) -> Counter[str]:
    """Customs sends an outcome for every parcel it examines (:func:`_picked`) and has not decided
    yet; returns how many were applied by why they were picked, and how many were seized."""
    assert station.agent is not None
    picked: list[tuple[str, str]] = []
    messages = []
    for record in station.agent.outbox.records():
        tracking = str((record.get("parcel") or {}).get("tracking_number"))
        if record["kind"] != "verdict" or tracking not in truths or tracking in decided:
            continue
        why = _picked(record) if record.get("order") is not None else None
        if why is None:
            continue
        outcome = "seized" if truths[tracking] in SEIZED else "released"
        messages.append(
            new_message(
                "outcome",
                tracking_number=tracking,
                outcome=outcome,
                reason_code="DEMO-" + outcome.upper(),
                customs_reference=f"DEMO-{record['seq']}",
            )
        )
        decided.add(tracking)
        picked.append((why, outcome))
    applied: Counter[str] = Counter()
    for (why, outcome), ack in zip(picked, station.send_all(messages), strict=True):
        if (ack or {}).get("status") == "applied":
            applied[why] += 1
            applied["seized"] += outcome == "seized"
    return applied


def _stored(workdir: Path, since: str | None = None) -> list[dict[str, Any]]:
    store = open_store(workdir / "receiver.db")
    try:
        return [json.loads(row["body"]) for row in store.query(Filters(since=since))]
    finally:
        store.close()


class _Files(http.server.SimpleHTTPRequestHandler):
    """Serves the published model; each request is a debug line, not the handler's stderr print."""

    def log_message(self, format: str, *args: Any) -> None:
        log.debug("model file served", extra={"request": format % args})


@contextmanager
def _published(folder: Path) -> Iterator[str]:
    """``folder`` served over HTTP on loopback (where customs would publish a model over HTTPS)."""
    handler = functools.partial(_Files, directory=str(folder))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, name="demo-models", daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def _train(workdir: Path) -> tuple[dict[str, Any], Path]:
    """Labels from the receiver's store, and a model trained on them (ModelError: too few)."""
    from prescreen.models.outcome_train import train_on_outcomes

    records = _stored(workdir)
    rows = label_rows(records)
    labels = workdir / "labels.csv"
    with labels.open("w") as handle:
        write_csv(rows, handle)
    trained = workdir / "trained"
    report = train_on_outcomes(
        labels, trained, synthetic=SYNTHETIC_ROWS, version=VERSION, stream=screened_rows(records)
    )
    published = workdir / "published" / VERSION  # the model and its manifest; the card stays here
    published.mkdir(parents=True, exist_ok=True)
    for name in (f"{VERSION}.tflite", "model.json"):
        shutil.copy(trained / name, published / name)
    return {**report, "labels": len(rows), "positives": sum(int(r["label"]) for r in rows)}, published


def learning_round(
    station: DemoStation, first: list[Step], second: list[Step], update_key: DeviceKey
) -> dict[str, Any]:
    """The loop on the demo station; ``second`` is the shift screened with the model in shadow."""
    truths = truth([*first, *second])
    decided: set[str] = set()
    outcomes = customs_decides(station, truths, decided)
    summary: dict[str, Any] = {"outcomes": dict(outcomes)}
    station.drain()
    try:
        report, published = _train(station.workdir)
    except ModelError as exc:
        return {**summary, "trained": False, "why": str(exc)}
    newer = report["newer"]
    summary.update(
        trained=True,
        trainer=report["trainer"],
        labels=report["labels"],
        positives=report["positives"],
        pr_auc={"trained": newer["outcome_trained"]["pr_auc"], "fleet": newer["shipped"]["pr_auc"]},
        test_rows=report["split"]["test_rows"],
    )
    site = cfg.StationConfig()
    with _published(published.parent) as base:
        manifest = model_manifest(published, f"{base}/{VERSION}", VERSION)
        shadow = model_message(manifest, update_key, site=site.site_id, device=site.device_id, shadow=True)
        summary["shadow"] = (station.send(shadow, wait_s=30) or {}).get("status")
    if summary["shadow"] != "applied":
        return summary
    since = shadow["issued_at"]
    summary.update(parcels=0, holds_on_shelf=0)
    for step in second:
        if step is second[-1]:  # the last parcel waits for the promotion
            break
        event, confirmation = station.run(step)
        summary["parcels"] += event.record is not None
        summary["holds_on_shelf"] += confirmation is not None and confirmation.kind == "hold_confirmed"
    summary["outcomes"] = dict(outcomes + customs_decides(station, truths, decided))
    station.drain()
    rows = shadow_report(_stored(station.workdir, since))
    summary["shadow_report"] = rows
    summary["refused"] = promotion_refusal(rows[0]) if rows else "no shadow report"
    if summary["refused"] is None:  # promoted only on the evidence (the same manifest, a newer serial)
        serial = int(shadow["manifest"]["serial"]) + 1
        promote = model_message(
            manifest, update_key, site=site.site_id, device=site.device_id, promote=True, serial=serial
        )
        summary["promoted"] = (station.send(promote, wait_s=30) or {}).get("status")
    used, confirmation = station.run(second[-1])
    summary["parcels"] += used.record is not None
    summary["holds_on_shelf"] += confirmation is not None and confirmation.kind == "hold_confirmed"
    summary["used_by"] = None if used.record is None else used.record["screening"]["model_version"]
    return summary


def summary_lines(learning: Mapping[str, Any]) -> list[str]:
    """The demo's text lines for the learning loop."""
    lines = [f"  customs outcomes   {_decided(learning['outcomes'])}"]
    if not learning.get("trained"):
        return [*lines, f"  model training     not done: {learning.get('why', 'no labels')}"]
    auc = learning["pr_auc"]
    lines.append(
        f"  trained on labels  {learning['labels']} parcels ({learning['positives']} seized) + "
        f"{SYNTHETIC_ROWS}/generator synthetic, by {learning['trainer']}: PR-AUC on the newer "
        f"{learning['test_rows']} {auc['trained']} (the fleet's model {auc['fleet']})"
    )
    lines.append(f"  shadow delivery    {learning['shadow']}")
    for row in learning.get("shadow_report") or []:
        lines.append(
            f"  shadow report      {row['parcels']} parcels: live {row['live_version']} raised "
            f"{row['live_raise_share']:.1%}, shadow {row['shadow_version']} would raise "
            f"{row['shadow_raise_share']:.1%}, agreement {row['agreement']:.1%}"
        )
        lines.append(
            f"                     on {row['labelled']} parcels customs decided ({row['found']} seized): "
            f"live raised {row['live_raised_labelled']}, precision {_share(row['live_precision'])}, recall "
            f"{_share(row['live_recall'])}; shadow raised {row['shadow_raised_labelled']}, precision "
            f"{_share(row['shadow_precision'])}, recall {_share(row['shadow_recall'])}"
        )
    if learning.get("refused"):
        lines.append(
            f"  promotion          not promoted: {learning['refused']}; next parcel screened by "
            f"{learning['used_by']}"
        )
    elif learning.get("promoted"):
        lines.append(
            f"  promotion          {learning['promoted']} (as good as live on the decided parcels); next "
            f"parcel screened by {learning['used_by']}"
        )
    return lines


def _share(value: float | None) -> str:
    return "-" if value is None else f"{value:.0%}"


def _decided(outcomes: Mapping[str, int]) -> str:
    decided = sum(v for k, v in outcomes.items() if k != "seized")
    return (
        f"{decided} parcels decided, {outcomes.get('seized', 0)} "
        f"seized: {outcomes.get('raised', 0)} held or reviewed, {outcomes.get('examined', 0)} cleared ones "
        f"examined at random ({EXAMINED_SHARE:.0%} of cleared), {outcomes.get('shadow', 0)} the shadow "
        "model would raise"
    )
