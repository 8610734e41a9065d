"""The TF-free trainer: a numpy fit of the shipped network, written as int8 TFLite by hand, must
load in the stations' runtime and score like the float model it was quantized from."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from prescreen.models import features, generators, tiny_train, train
from prescreen.models.evaluation import average_precision
from prescreen.models.runner import load_risk_model


def test_the_handwritten_int8_model_loads_and_scores_like_its_float_model(tmp_path: Path) -> None:
    rows = [r for name in generators.GENERATORS for r in generators.rows(name, 250, 3)]
    x = np.array([features.vectorize_row(r) for r in rows], dtype=np.float32)
    y = np.array([r["label"] for r in rows], dtype=np.float32)
    layers = tiny_train.fit(x, y)
    content = tiny_train.to_int8_tflite(layers, x)
    assert content[4:8] == b"TFL3"
    train.write_model(tmp_path, "tiny-test", content, x)
    model = load_risk_model(tmp_path)  # the runtime's own checks: int8 in [1, N], int8 out [1, 1]
    int8 = np.array([model.score(list(map(float, v))) for v in x])
    float_ = 1 / (1 + np.exp(-tiny_train.logits(layers, x)))
    assert np.corrcoef(int8, float_)[0, 1] > 0.999
    assert float(np.max(np.abs(int8 - float_))) < 0.1
    labels = [int(v) for v in y]
    assert average_precision(labels, list(int8)) > 0.8  # it learnt the generators' risks
    assert abs(average_precision(labels, list(int8)) - average_precision(labels, list(float_))) < 0.02
    calibration = model.manifest["thresholds"]["calibration"]
    assert [share for share, _ in calibration] == list(train.BUDGETS)


def test_the_fit_is_seeded(tmp_path: Path) -> None:
    rows = generators.rows("shop", 200, 5)
    x = np.array([features.vectorize_row(r) for r in rows], dtype=np.float32)
    y = np.array([r["label"] for r in rows], dtype=np.float32)

    def model(seed: int) -> bytes:
        return tiny_train.to_int8_tflite(tiny_train.fit(x, y, seed=seed), x)

    assert model(7) == model(7)
    assert model(7) != model(8)
