"""The model's input is quantised with the ufuncs themselves (issue 20): it must be the int8 vector
``np.clip(np.round(v / scale) + zero, -128, 127)`` gives, on both runtimes' numpy, for feature
vectors of bench parcels and for values at every rounding boundary, beyond the range, -0.0 and NaN."""

from __future__ import annotations

import random

import numpy as np
from prescreen.models import features, lexicon
from prescreen.models.runner import load_risk_model
from prescreen.models.signals import measure
from prescreen.sim.samples import generate


def test_quantize_is_clip_of_round() -> None:
    model = load_risk_model()
    scale, zero, width = model._in_scale, model._in_zero, len(features.NAMES)

    def reference(vector: list[float]) -> np.ndarray:
        scaled = np.round(np.asarray(vector, dtype=np.float32) / scale) + zero
        return np.clip(scaled, -128, 127).astype(model._dtype).reshape(1, -1)

    orders, _ = generate(200, seed=4)
    vectors = [features.vectorize(measure(lexicon.load(), o, 0.75)) for o in orders]
    rng = random.Random(8)
    edges = [(k + 0.5) * scale for k in range(-300, 300)] + [k * scale for k in range(-300, 300)]
    edges += [np.nextafter(e, d) for e in edges[:600] for d in (-np.inf, np.inf)]
    edges += [0.0, -0.0, 1e30, -1e30, float("nan")]
    vectors += [[float(rng.choice(edges)) for _ in range(width)] for _ in range(3000)]
    for vector in vectors:
        with np.errstate(invalid="ignore"):  # NaN to int8: whatever the cast gives, both alike
            found, expected = model.quantize(vector), reference(vector)
        assert found.dtype == np.int8
        assert found.shape == (1, width)
        assert found.tobytes() == expected.tobytes(), vector
