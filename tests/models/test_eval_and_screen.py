"""``prescreen model eval`` and ``prescreen screen``: the interfaces compliance uses for checking."""

from __future__ import annotations

import csv
import json
import random
import subprocess
import sys
from pathlib import Path

import pytest
from order_fixtures import clean_order

HOLDOUT = Path(__file__).parents[2] / "models" / "holdout.csv"


def run(*args: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "prescreen", *args],
        input=stdin,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


@pytest.mark.slow
def test_eval_on_the_held_out_set_reports_the_model_card_figures() -> None:
    result = run("model", "eval", "--data", str(HOLDOUT), "--json")
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    card = json.loads((HOLDOUT.parent / "metrics.json").read_text())["int8"]
    # holdout.csv is the test split behind the card, scored by the same int8 model and threshold
    assert report["n"] == card["n"]
    assert abs(report["pr_auc"] - card["pr_auc"]) < 0.005
    assert abs(report["clean_raised_share"] - card["clean_raised_share"]) < 0.005
    assert report["precision_at_5pct"] >= 0.9
    # the CSV has a kind column: every kind gets its own raise share
    assert set(report["raised_share_by_kind"]) >= {"clean", "precursor", "vague", "tariff_mismatch"}


@pytest.mark.slow
def test_eval_with_shuffled_labels_collapses_to_chance(tmp_path: Path) -> None:
    rows = list(csv.DictReader(HOLDOUT.open()))
    labels = [r["label"] for r in rows]
    random.Random(1).shuffle(labels)
    shuffled = tmp_path / "shuffled.csv"
    with shuffled.open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows({**r, "label": label} for r, label in zip(rows, labels, strict=True))
    report = json.loads(run("model", "eval", "--data", str(shuffled), "--json").stdout)
    base_rate = report["positives"] / report["n"]
    assert report["pr_auc"] < base_rate + 0.1


@pytest.mark.slow
def test_eval_ignores_extra_columns_and_allows_missing_optional_ones(tmp_path: Path) -> None:
    data = tmp_path / "site.csv"
    data.write_text(
        "order_ref,description,declared_value_usd,label,warehouse\n"
        "A1,Cotton t-shirt,12.5,0,W1\n"
        "A2,4-ANPP powder,3,1,W1\n"
        "A3,gift,1,1,W2\n"
        "A4,Stainless steel spoon set,9,0,W2\n"
    )
    result = run("model", "eval", "--data", str(data), "--json")
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["n"] == 4
    assert report["positives"] == 2
    assert set(report) >= {"n", "pr_auc", "precision_at_5pct", "recall_at_hold"}


@pytest.mark.slow
def test_eval_rejects_a_bad_label_naming_the_line(tmp_path: Path) -> None:
    data = tmp_path / "bad.csv"
    data.write_text("description,label\nshirt,0\nspoon,yes\n")
    result = run("model", "eval", "--data", str(data), "--json")
    assert result.returncode == 1
    assert f"{data}:3: label must be 0 or 1" in result.stderr


@pytest.mark.slow
def test_screen_prints_one_verdict_per_parcel_in_every_shape() -> None:
    order = clean_order()
    lines = [
        json.dumps({**order, "measured_weight_kg": 0.5}),
        json.dumps({"order": order, "measured_weight_kg": 2.4, "tracking_number": order["tracking_number"]}),
        json.dumps({"description": "N-phenethyl-4-piperidone", "hts_code": "2933399000", "quantity": 1}),
        "",
        "{not json",
    ]
    result = run("screen", stdin="\n".join(lines) + "\n")
    assert result.returncode == 1  # one bad line
    out = [json.loads(line) for line in result.stdout.splitlines()]
    assert [o.get("verdict") for o in out] == ["CLEAR", "HOLD", "HOLD", None]
    assert out[1]["tracking_number"] == "1Z5R89390357567127"
    assert "WEIGHT_MISMATCH" in {r["code"] for r in out[1]["reasons"]}
    assert "PRECURSOR_CHEMICAL" in {r["code"] for r in out[2]["reasons"]}
    assert 0 <= out[0]["score"] <= 1
    assert out[3] == {
        "line": 5,
        "error": "not JSON: Expecting property name enclosed in double quotes at column 2",
    }


@pytest.mark.slow
def test_screen_rules_only_says_so() -> None:
    result = run("screen", "--rules-only", stdin=json.dumps({"description": "gift"}) + "\n")
    out = json.loads(result.stdout)
    assert out["mode"] == "rules-only"
    assert out["score"] is None
