"""Train the risk network with numpy alone and write it as an int8 TFLite model, in seconds.

The same network as :mod:`prescreen.models.train` (features-v2 → 24 → 12 → 1 logit, ReLU), fitted
with the same loss, optimiser, learning rate, batch size and epochs (Adam, binary cross-entropy on
the logit), then quantized the way TensorFlow's converter does for full-integer models: the input
and each layer's output asymmetric int8 from the ranges seen on a representative sample, weights
symmetric int8, biases int32 at input scale times weight scale. :mod:`prescreen.models.tflite_write`
writes the flatbuffer (the ``learn`` extra: flatbuffers and the TFLite schema's bindings). Why:
customs can train on its outcome labels (``prescreen model train``), the demo can show the whole
learning loop and CI can test it, without TensorFlow; where TensorFlow is installed
(``make train-venv``) it is used unless ``--trainer numpy`` is asked for.
"""

from __future__ import annotations

import itertools
from typing import Any

import numpy as np
from prescreen.models import features
from prescreen.models.tflite_write import QuantizedLayer, int8_dense_model

SEED = 20261127
HIDDEN = (24, 12)
EPOCHS, BATCH, LEARNING_RATE = 30, 256, 0.005
CALIBRATION_ROWS = 480  # like train.to_int8_tflite: enough rows to set the int8 ranges
Layers = list[tuple[Any, Any]]  # (weights [in, out], bias [out]) per layer


def fit(x: Any, y: Any, *, seed: int = SEED, epochs: int = EPOCHS) -> Layers:
    """Fit the MLP to features ``x`` and labels ``y`` (0/1); returns its float layers."""
    rng = np.random.default_rng(seed)
    x, y = np.asarray(x, dtype=np.float64), np.asarray(y, dtype=np.float64).reshape(-1, 1)
    sizes = [x.shape[1], *HIDDEN, 1]
    layers: Layers = [
        (rng.normal(0.0, np.sqrt(2.0 / fan_in), (fan_in, fan_out)), np.zeros(fan_out))
        for fan_in, fan_out in itertools.pairwise(sizes)
    ]
    moments = [[np.zeros_like(p) for p in layer] for layer in layers]
    squares = [[np.zeros_like(p) for p in layer] for layer in layers]
    step = 0
    for _ in range(epochs):
        order = rng.permutation(len(x))
        for start in range(0, len(x), BATCH):
            rows = order[start : start + BATCH]
            step += 1
            for i, grads in enumerate(_gradients(layers, x[rows], y[rows])):
                for j, grad in enumerate(grads):  # Adam, as Keras does it
                    moments[i][j] = 0.9 * moments[i][j] + 0.1 * grad
                    squares[i][j] = 0.999 * squares[i][j] + 0.001 * grad * grad
                    rate = LEARNING_RATE * np.sqrt(1 - 0.999**step) / (1 - 0.9**step)
                    layers[i][j][...] -= rate * moments[i][j] / (np.sqrt(squares[i][j]) + 1e-7)
    return layers


def _forward(layers: Layers, x: Any) -> list[Any]:
    """The output of each layer (ReLU on all but the last, which is the logit)."""
    outputs = [x]
    for number, (weights, bias) in enumerate(layers):
        z = outputs[-1] @ weights + bias
        outputs.append(z if number == len(layers) - 1 else np.maximum(z, 0.0))
    return outputs


def _gradients(layers: Layers, x: Any, y: Any) -> list[tuple[Any, Any]]:
    outputs = _forward(layers, x)
    delta = (1.0 / (1.0 + np.exp(-outputs[-1])) - y) / len(x)  # d(BCE with logits)/d(logit)
    grads: list[tuple[Any, Any]] = []
    for number in range(len(layers) - 1, -1, -1):
        grads.append((outputs[number].T @ delta, delta.sum(axis=0)))
        if number:
            delta = (delta @ layers[number][0].T) * (outputs[number] > 0)
    return grads[::-1]


def logits(layers: Layers, x: Any) -> Any:
    """The float model's logits for rows ``x``."""
    return _forward(layers, np.asarray(x, dtype=np.float64))[-1][:, 0]


def _affine(low: float, high: float) -> tuple[float, int]:
    """int8 scale and zero point covering [low, high] (and 0, as TFLite requires)."""
    low, high = min(low, 0.0), max(high, 0.0)
    scale = (high - low) / 255.0 or 1e-8
    return float(np.float32(scale)), int(np.clip(round(-128 - low / scale), -128, 127))


def to_int8_tflite(layers: Layers, x: Any, description: str = "prescreen tiny_train") -> bytes:
    """The float ``layers`` as a full-integer int8 TFLite flatbuffer, ranges from rows of ``x``."""
    sample = np.asarray(x, dtype=np.float64)[:: max(1, len(x) // CALIBRATION_ROWS)]
    outputs = _forward(layers, sample)
    in_scale, in_zero = _affine(float(sample.min()), float(sample.max()))
    quantized, scale = [], in_scale
    for number, (weights, bias) in enumerate(layers):
        weight_scale = float(np.float32(max(float(np.abs(weights).max()), 1e-8) / 127.0))
        bias_scale = float(np.float32(np.float64(scale) * np.float64(weight_scale)))
        out = outputs[number + 1]
        out_scale, out_zero = _affine(float(out.min()), float(out.max()))
        quantized.append(
            QuantizedLayer(
                weights=np.clip(np.round(weights.T / weight_scale), -127, 127).astype(int).tolist(),
                weight_scale=weight_scale,
                bias=np.round(bias / bias_scale).astype(np.int64).tolist(),
                bias_scale=bias_scale,
                out_scale=out_scale,
                out_zero=out_zero,
                relu=number < len(layers) - 1,
            )
        )
        scale = out_scale
    return int8_dense_model(len(features.NAMES), in_scale, in_zero, quantized, description)
