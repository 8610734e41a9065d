"""Training on customs outcomes (issue 17): a time-ordered split, and a model that learns the
fleet's real risk where it differs from the synthetic generators.

The split, the errors, the card and the numpy trainer run everywhere (CI included): the test that
trains and compares runs the real ``prescreen model train --trainer numpy``. The TensorFlow
trainer exists only in the training virtualenv (``make train-venv``); the same test runs it there,
and is skipped with that reason where it does not exist.
"""

from __future__ import annotations

import importlib.util
import json
import subprocess
from pathlib import Path

import pytest
from fleet_history import fleet_rows, write
from prescreen.core.errors import ModelError
from prescreen.models import features
from prescreen.models.evaluation import average_precision, evaluate
from prescreen.models.outcome_train import compare, outcome_card, read_label_table, time_split
from prescreen.models.runner import load_risk_model

ROOT = Path(__file__).resolve().parents[2]
TRAIN_PRESCREEN = ROOT / ".venv-train" / "bin" / "prescreen"


@pytest.mark.slow
def test_the_split_trains_on_older_parcels_and_tests_on_newer_ones() -> None:
    rows = list(reversed(fleet_rows(120)))  # any order in, time order out
    older, newer = time_split(rows, 0.25)
    assert len(newer) == len(rows) - int(len(rows) * 0.75)
    assert max(str(r["time"]) for r in older) <= min(str(r["time"]) for r in newer)


@pytest.mark.slow
def test_a_part_without_both_labels_is_refused_with_what_to_do() -> None:
    rows = fleet_rows(120)  # sorted by time
    quarter = len(rows) // 4
    only_released = [*rows[:-quarter], *({**r, "label": 0} for r in rows[-quarter:])]
    with pytest.raises(ModelError, match=r"newer \(test\) part .* labels \[0\].*wait for more outcomes"):
        time_split(only_released, 0.1)
    with pytest.raises(ModelError, match="test share"):
        time_split(rows, 0.95)


def test_a_labels_table_needs_times(tmp_path: Path) -> None:
    rows = fleet_rows(20)
    rows[3]["time"] = ""
    with pytest.raises(ModelError, match=":5: no time"):
        read_label_table(write(tmp_path / "labels.csv", rows))


@pytest.mark.slow
def test_the_card_shows_both_models_on_the_same_newer_rows() -> None:
    _, newer = time_split(fleet_rows(200))
    shipped = load_risk_model(None)
    report = {
        "version": "risk-outcomes-test",
        "shipped_version": shipped.version,
        "split": {
            "train_outcome_rows": 1,
            "train_synthetic_rows": 0,
            "test_rows": len(newer),
            "train_until": "a",
            "test_from": "b",
            "test_until": "c",
        },
        "budget": 0.03,
        "newer": compare(
            newer,
            {
                "outcome_trained": (lambda v: v[features.NAMES.index("chemical_chapter")], 0.5),
                "shipped": (shipped.score, shipped.threshold_for(0.03)),
            },
        ),
    }
    card = outcome_card(report)
    for model in ("outcome_trained", "shipped"):
        assert f"| {report['newer'][model]['pr_auc']} |" in card
    assert report["newer"]["shipped"]["n"] == len(newer)


@pytest.mark.skipif(
    importlib.util.find_spec("tensorflow") is not None, reason="TensorFlow is installed in this venv"
)
def test_the_tensorflow_trainer_without_tensorflow_says_where_it_runs(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from prescreen.commands.main import main

    labels = write(tmp_path / "labels.csv", fleet_rows(50))
    new = tmp_path / "new"
    assert (
        main(["model", "train", "--labels", str(labels), "--out", str(new), "--trainer", "tensorflow"]) == 1
    )
    assert "training virtualenv (make train-venv" in capsys.readouterr().err
    assert not new.exists()


def _train(trainer: str, labels: Path, out: Path) -> None:
    """``prescreen model train`` with this trainer: numpy in this venv, TensorFlow in .venv-train."""
    command = ["model", "train", "--labels", str(labels), "--out", str(out), "--trainer", trainer]
    if trainer == "numpy":
        from prescreen.commands.main import main

        assert main(command) == 0
        return
    if not TRAIN_PRESCREEN.exists():
        pytest.skip("needs TensorFlow: `make train-venv` creates .venv-train (not on CI)")
    done = subprocess.run(
        [str(TRAIN_PRESCREEN), *command], capture_output=True, text=True, timeout=600, check=False
    )
    assert done.returncode == 0, done.stderr[-2000:]


@pytest.mark.slow
@pytest.mark.parametrize("trainer", ["numpy", "tensorflow"])
def test_a_model_trained_on_outcomes_beats_the_shipped_one_on_newer_parcels(
    tmp_path: Path, trainer: str, capsys: pytest.CaptureFixture[str]
) -> None:
    rows = fleet_rows()
    labels = write(tmp_path / "labels.csv", rows)
    out = tmp_path / "new"
    _train(trainer, labels, out)
    # Loaded by the stations' runtime, judged here on the newer rows, independently of its card.
    new, shipped = load_risk_model(out), load_risk_model(None)
    manifest = json.loads((out / "model.json").read_text())
    assert manifest["feature_spec"]["version"] == "features-v2"
    assert manifest["output"] == "logit"
    assert len(manifest["thresholds"]["calibration"]) >= 5
    _, newer = time_split(rows)
    ours, theirs = evaluate(new.score, newer)["pr_auc"], evaluate(shipped.score, newer)["pr_auc"]
    assert ours > theirs + 0.1, (ours, theirs)
    # It learnt the two families where reality differs from the generators.
    earbuds = [r for r in newer if str(r["hts_code"]).startswith("8518")]
    chemicals = [r for r in newer if r["kind"] in ("precursor", "chemical_cover")]

    def mean(model: object, part: list[dict[str, object]]) -> float:
        return sum(model.score(features.vectorize_row(r)) for r in part) / len(part)  # type: ignore[attr-defined]

    assert mean(new, earbuds) > mean(shipped, earbuds)
    assert mean(new, chemicals) < mean(shipped, chemicals)
    card = (out / "MODEL_CARD.md").read_text()
    report = json.loads((out / "metrics.json").read_text())
    assert report["trainer"] == trainer
    metrics = report["newer"]
    assert metrics["outcome_trained"]["pr_auc"] == pytest.approx(ours, abs=0.002)
    assert f"| {metrics['shipped']['pr_auc']} |" in card
    labels_newer = [int(r["label"]) for r in newer]
    assert average_precision(labels_newer, [shipped.score(features.vectorize_row(r)) for r in newer]) == (
        pytest.approx(theirs, abs=1e-4)
    )
    with capsys.disabled():
        print(
            f"\n[{trainer}] PR-AUC on the newer {len(newer)} parcels: outcome-trained {ours}, fleet {theirs}"
        )
