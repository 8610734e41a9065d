"""Training on what customs found: outcome labels in, a model for the fleet out (issue 17).

Input is the table of ``prescreen records labels`` (the ``model eval`` columns plus ``time``).
The split is by **time**: the model is trained on the older parcels and judged on the newer
ones, as it will be used (a random split would let it see the future of a seller or a seizure
campaign). Optionally the synthetic generators are mixed into the training part, so risks that
customs has not labelled yet are not forgotten. The card compares, on the same newer rows, the
new model with the model the fleet runs now, each at its own review-budget threshold.

The network, features (spec features-v2), logit output, int8 conversion and calibration are those
of :mod:`prescreen.models.train`, so an outcome-trained model is shaped exactly like the shipped
one. Two trainers fit it: TensorFlow (the training virtualenv, ``make train-venv``) and numpy with
a TFLite writer on the schema's own bindings (:mod:`prescreen.models.tiny_train`, seconds, no
TensorFlow; the ``learn`` extra), which the demo and CI use; ``auto`` takes TensorFlow where it
is installed. The card says which one ran.
"""

from __future__ import annotations

import csv
import importlib.util
import json
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from prescreen.core.errors import ModelError
from prescreen.models import features, generators, train
from prescreen.models.evaluation import metrics, read_labelled_rows

TEST_SHARE = 0.3
TRAINERS = ("auto", "tensorflow", "numpy")
TRAINED_BY = {
    "tensorflow": "TensorFlow (Keras, TFLite converter)",
    "numpy": "numpy and the TFLite writer of `prescreen.models.tiny_train` (no TensorFlow)",
}
Row = Mapping[str, Any]
Scorer = Callable[[list[float]], float]


def read_label_table(path: str | Path) -> list[dict[str, Any]]:
    """The rows of a labels CSV (``prescreen records labels``), each with a ``time``.

    Raises:
        ModelError: unreadable, a bad label, or a row without a time.
    """
    rows = read_labelled_rows(path)
    for number, row in enumerate(rows, start=2):
        if not str(row.get("time") or "").strip():
            raise ModelError(f"{path}:{number}: no time (a labels table from `prescreen records labels`)")
    return rows


def time_split(rows: Sequence[Row], test_share: float = TEST_SHARE) -> tuple[list[Row], list[Row]]:
    """(older, newer) by ``time``; the newer ``test_share`` of parcels is the test part.

    Raises:
        ModelError: a part without both labels (nothing to learn from, or nothing to measure).
    """
    if not 0.05 <= test_share <= 0.8:
        raise ModelError(f"test share must be between 0.05 and 0.8, got {test_share}")
    ordered = sorted(rows, key=lambda r: str(r["time"]))
    cut = int(len(ordered) * (1 - test_share))
    older, newer = ordered[:cut], ordered[cut:]
    for name, part in (("older (training)", older), ("newer (test)", newer)):
        labels = {int(str(r["label"])) for r in part}
        if labels != {0, 1}:
            raise ModelError(
                f"the {name} part has {len(part)} parcels and labels {sorted(labels)}: it needs both "
                "seized-like (1) and released (0) outcomes; wait for more outcomes or widen --since"
            )
    return older, newer


def synthetic_rows(per_generator: int, seed: int = train.SEED) -> list[Row]:
    """``per_generator`` rows of each synthetic generator (their own labels)."""
    return [r for name in generators.GENERATORS for r in generators.rows(name, per_generator, seed)]


def compare(newer: Sequence[Row], models: Mapping[str, tuple[Scorer, float]]) -> dict[str, Any]:
    """Metrics of each model (score function, its review threshold) on the same ``newer`` rows."""
    vectors = [features.vectorize_row(r) for r in newer]
    labels = [int(str(r["label"])) for r in newer]
    return {
        name: metrics(labels, [score(v) for v in vectors], review=threshold)
        for name, (score, threshold) in models.items()
    }


def fit_int8(x: Any, y: Any, trainer: str = "auto") -> tuple[bytes, str]:
    """(the int8 TFLite model fitted to ``x``, ``y``; the trainer that fitted it).

    Raises:
        ModelError: an unknown trainer, TensorFlow asked for where it is not installed, or the numpy
            trainer without the ``learn`` extra (its TFLite writer).
    """
    if trainer not in TRAINERS:
        raise ModelError(f"trainer must be one of {', '.join(TRAINERS)}, got {trainer!r}")
    has_tensorflow = importlib.util.find_spec("tensorflow") is not None
    if trainer == "tensorflow" and not has_tensorflow:
        raise ModelError(
            "--trainer tensorflow needs TensorFlow, which is never installed on a station: run it in "
            "the training virtualenv (make train-venv; .venv-train/bin/prescreen model train ...)"
        )
    if trainer == "numpy" or not has_tensorflow:
        from prescreen.models import tflite_write, tiny_train

        tflite_write.schema_modules()  # without the learn extra, say so before the fit, not after
        return tiny_train.to_int8_tflite(tiny_train.fit(x, y), x), "numpy"
    return train.to_int8_tflite(train._fit(x, y), x), "tensorflow"  # pragma: no cover - TensorFlow


def train_on_outcomes(
    labels_path: str | Path,
    out: Path,
    *,
    synthetic: int = 0,
    test_share: float = TEST_SHARE,
    version: str | None = None,
    shipped: str | Path | None = None,
    trainer: str = "auto",
    stream: Sequence[Row] = (),
) -> dict[str, Any]:
    """Train, write the model, ``model.json``, ``metrics.json`` and ``MODEL_CARD.md`` into ``out``.

    ``stream``: the parcels the stations screened in the period, labelled or not, each with a
    ``cleared`` flag (the rules cleared it); when given, the review-budget thresholds are measured
    on them (:func:`calibrate_on_stream`) instead of on the training mix.
    """
    import numpy as np
    from prescreen.models.runner import load_risk_model

    rows = read_label_table(labels_path)
    older, newer = time_split(rows, test_share)
    mix = synthetic_rows(synthetic) if synthetic else []
    training = [*older, *mix]
    x = np.array([features.vectorize_row(r) for r in training], dtype=np.float32)
    y = np.array([int(str(r["label"])) for r in training], dtype=np.float32)
    content, used = fit_int8(x, y, trainer)
    version = version or "risk-outcomes-" + str(newer[-1]["time"])[:10].replace("-", "")
    train.write_model(out, version, content, x)
    if stream:
        calibrate_on_stream(out, stream)
    new, live = load_risk_model(out), load_risk_model(shipped)
    report = {
        "version": version,
        "shipped_version": live.version,
        "trainer": used,
        "split": {
            "train_outcome_rows": len(older),
            "train_synthetic_rows": len(mix),
            "test_rows": len(newer),
            "train_until": str(older[-1]["time"]),
            "test_from": str(newer[0]["time"]),
            "test_until": str(newer[-1]["time"]),
        },
        "budget": train.BUDGET,
        "calibrated_on": f"{len(stream)} screened parcels" if stream else "the training mix",
        "newer": compare(
            newer,
            {
                "outcome_trained": (new.score, new.threshold_for(train.BUDGET)),
                "shipped": (live.score, live.threshold_for(train.BUDGET)),
            },
        ),
    }
    (out / "metrics.json").write_text(json.dumps(report, indent=1) + "\n")
    (out / "MODEL_CARD.md").write_text(outcome_card(report))
    return report


def calibrate_on_stream(out: Path, stream: Sequence[Row]) -> None:
    """Measure the model's budget thresholds in ``out`` on the parcels stations screened.

    Why: the training mix is rich in positives (outcomes exist mostly for raised parcels, the
    generators are 14 % risky), so its top 3 % are parcels the rules hold anyway and a threshold set
    there raises nothing the rules cleared. The budget is a share of the parcels a station
    screens, and the model raises only parcels the rules cleared: each cleared parcel counts with
    its score, every other one as 0 (never raised by the model).
    """
    from prescreen.models.runner import load_risk_model

    runner = load_risk_model(out)
    scores = [runner.score(features.vectorize_row(r)) if _cleared(r) else 0.0 for r in stream]
    manifest = json.loads((out / "model.json").read_text())
    manifest["thresholds"]["calibration"] = [
        [budget, round(train.threshold_at(scores, budget), 8)] for budget in train.BUDGETS
    ]
    (out / "model.json").write_text(json.dumps(manifest, indent=1) + "\n")


def _cleared(row: Row) -> bool:
    return str(row.get("cleared")).strip().lower() in ("1", "true")


def read_screened(path: str | Path) -> list[dict[str, Any]]:
    """The rows of ``prescreen records labels --screened`` (every parcel, a ``cleared`` column).

    Raises:
        ModelError: unreadable, or without the ``cleared`` column.
    """
    try:
        with Path(path).open(newline="") as handle:
            rows = list(csv.DictReader(handle))
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise ModelError(f"{path}: not a readable CSV: {exc}") from exc
    if rows and "cleared" not in rows[0]:
        raise ModelError(f"{path}: no cleared column (a table from `prescreen records labels --screened`)")
    return rows


def outcome_card(report: Mapping[str, Any]) -> str:
    """The card of an outcome-trained model: how it did on the newer parcels against the fleet's."""
    split, newer = report["split"], report["newer"]
    rows = "\n".join(
        f"| {name} | {m['pr_auc']} | {m['precision_at_5pct']} | {m['recall_at_review']} | "
        f"{m['clean_raised_share']:.2%} | {m['review_threshold']} |"
        for name, m in (
            (f"{report['version']} (trained on outcomes)", newer["outcome_trained"]),
            (f"{report['shipped_version']} (in the fleet now)", newer["shipped"]),
        )
    )
    gain = newer["outcome_trained"]["pr_auc"] - newer["shipped"]["pr_auc"]
    return f"""# Model card: {report["version"]}

**Trained on customs outcomes** (`prescreen records labels`: seized, denied entry, penalty,
destroyed = 1; released, assessment complete = 0), the older {split["train_outcome_rows"]} parcels
(until {split["train_until"]}), mixed with {split["train_synthetic_rows"]} synthetic rows. Same
model shape, features (`{features.SPEC_VERSION}`), int8 conversion and calibration as the shipped
model (`prescreen.models.train`); fitted by {TRAINED_BY[report.get("trainer", "tensorflow")]}.

**Tested on the newer {split["test_rows"]} parcels** ({split["test_from"]} to {split["test_until"]}),
never seen in training, against the model in the fleet on the same rows; each at the threshold
of its own {report["budget"]:.0%} review budget (this model's measured on
{report.get("calibrated_on", "the training mix")}):

| model | PR-AUC | precision in top 5 % | recall at review | clean parcels raised | threshold |
|---|---|---|---|---|---|
{rows}

PR-AUC {"+" if gain >= 0 else ""}{gain:.4f} against the fleet's model.

**Before it goes live:** ship it in shadow (`prescreen downlink send --type model --shadow`),
read `prescreen records shadow-report`, then promote. Outcomes exist only for parcels customs
looked at, so the labels over-represent what was raised before: a model trained on them alone
can miss risks nobody inspected (mix the generators with `--synthetic`).
"""
