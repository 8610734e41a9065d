"""The TFLite writer (flatbuffers + the schema's ``tflite`` bindings): the file read back through the
same bindings says what was written, the stations' runtime computes the integer arithmetic the
layers ask for, and without the ``learn`` extra training stops with one line saying what to install.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from fleet_history import fleet_rows, write
from prescreen.models import features, generators, tiny_train
from prescreen.models.runner import _interpreter_class
from prescreen.models.tflite_write import QuantizedLayer, int8_dense_model

tflite = pytest.importorskip("tflite", reason="the learn extra (make test installs it)")

HIDDEN = QuantizedLayer(
    weights=[[1, -2, 3], [-4, 5, -6]], weight_scale=0.02, bias=[10, -20], bias_scale=0.002,
    out_scale=0.05, out_zero=-128, relu=True,
)  # fmt: skip
LOGIT = QuantizedLayer(
    weights=[[7, -8]], weight_scale=0.03, bias=[-5], bias_scale=0.0015, out_scale=0.04, out_zero=3, relu=False
)
IN_SCALE, IN_ZERO = 0.1, -5


def _layers(content: bytes) -> tuple[object, object]:
    model = tflite.Model.GetRootAsModel(content, 0)
    return model, model.Subgraphs(0)


def test_the_file_reads_back_through_the_schema_bindings() -> None:
    content = int8_dense_model(3, IN_SCALE, IN_ZERO, [HIDDEN, LOGIT], "two layers")
    assert tflite.Model.ModelBufferHasIdentifier(content, 0)
    model, graph = _layers(content)
    assert (model.Version(), model.Description(), model.OperatorCodesLength()) == (3, b"two layers", 1)
    code = model.OperatorCodes(0)
    assert (code.BuiltinCode(), code.Version()) == (tflite.BuiltinOperator.FULLY_CONNECTED, 4)
    assert graph.OperatorsLength() == 2
    base = np.frombuffer(content, np.uint8).ctypes.data
    for op, layer, activation in zip(
        (graph.Operators(0), graph.Operators(1)),
        (HIDDEN, LOGIT),
        (tflite.ActivationFunctionType.RELU, tflite.ActivationFunctionType.NONE),
        strict=True,
    ):
        assert op.BuiltinOptionsType() == tflite.BuiltinOptions.FullyConnectedOptions
        options = tflite.FullyConnectedOptions()
        options.Init(op.BuiltinOptions().Bytes, op.BuiltinOptions().Pos)
        assert options.FusedActivationFunction() == activation
        source, weights, bias = (graph.Tensors(int(i)) for i in op.InputsAsNumpy())
        output = graph.Tensors(int(op.Outputs(0)))
        assert [t.Type() for t in (source, weights, bias, output)] == [tflite.TensorType.INT8] * 2 + [
            tflite.TensorType.INT32,
            tflite.TensorType.INT8,
        ]
        assert weights.ShapeAsNumpy().tolist() == [len(layer.bias), len(layer.weights[0])]
        for tensor, scale, zero in (
            (weights, layer.weight_scale, 0),
            (bias, layer.bias_scale, 0),
            (output, layer.out_scale, layer.out_zero),
        ):
            quantization = tensor.Quantization()
            assert quantization is not None
            assert quantization.ScaleAsNumpy().tolist() == [pytest.approx(scale)]
            assert quantization.ZeroPointAsNumpy().tolist() == [zero]
        data = model.Buffers(weights.Buffer()).DataAsNumpy()
        assert data.view(np.int8).reshape(len(layer.bias), -1).tolist() == [list(r) for r in layer.weights]
        assert model.Buffers(bias.Buffer()).DataAsNumpy().view("<i4").tolist() == list(layer.bias)
        assert (data.ctypes.data - base) % 16 == 0  # constant data 16-aligned, as the schema asks
    assert [graph.Inputs(0), graph.Outputs(0)] == [0, graph.Operators(1).Outputs(0)]
    assert model.Buffers(0).DataLength() == 0  # the empty sentinel activations point to


def _reference(x: list[int]) -> int:
    """The int8 arithmetic of the two layers, in floats rounded where the runtime rounds."""

    def layer(values: list[int], zero: int, scale: float, dense: QuantizedLayer) -> list[int]:
        out = []
        for row, bias in zip(dense.weights, dense.bias, strict=True):
            total = sum((v - zero) * w for v, w in zip(values, row, strict=True)) * dense.weight_scale * scale
            out.append(round((total + bias * dense.bias_scale) / dense.out_scale) + dense.out_zero)
        low = dense.out_zero if dense.relu else -128  # a fused ReLU clamps at the output's zero
        return [min(127, max(low, v)) for v in out]

    hidden = layer(x, IN_ZERO, IN_SCALE, HIDDEN)
    return layer(hidden, HIDDEN.out_zero, HIDDEN.out_scale, LOGIT)[0]


def test_the_stations_runtime_computes_the_layers_written() -> None:
    interpreter = _interpreter_class()(
        model_content=int8_dense_model(3, IN_SCALE, IN_ZERO, [HIDDEN, LOGIT], "two layers")
    )
    interpreter.allocate_tensors()
    source, target = interpreter.get_input_details()[0], interpreter.get_output_details()[0]
    assert source["dtype"] == np.int8
    assert target["quantization"] == (pytest.approx(LOGIT.out_scale), LOGIT.out_zero)
    rng = np.random.default_rng(5)
    got, want = [], []
    for x in rng.integers(-128, 128, (200, 3)).tolist():
        interpreter.set_tensor(source["index"], np.array([x], dtype=np.int8))
        interpreter.invoke()
        got.append(int(interpreter.get_tensor(target["index"])[0][0]))
        want.append(_reference(x))
    assert max(abs(g - w) for g, w in zip(got, want, strict=True)) <= 1  # fixed-point vs float rounding
    assert len(set(got)) > 20  # the inputs really moved the output


def test_tiny_train_writes_its_layers_through_the_bindings() -> None:
    rows = generators.rows("shop", 200, 5)
    x = np.array([features.vectorize_row(r) for r in rows], dtype=np.float32)
    y = np.array([r["label"] for r in rows], dtype=np.float32)
    _, graph = _layers(tiny_train.to_int8_tflite(tiny_train.fit(x, y, epochs=2), x))
    assert graph.OperatorsLength() == len(tiny_train.HIDDEN) + 1
    assert graph.Tensors(graph.Inputs(0)).ShapeAsNumpy().tolist() == [1, len(features.NAMES)]
    assert graph.Tensors(graph.Outputs(0)).ShapeAsNumpy().tolist() == [1, 1]
    assert all(graph.Tensors(i).Quantization().ScaleLength() == 1 for i in range(graph.TensorsLength()))


def test_training_without_the_learn_extra_says_what_to_install(tmp_path: Path) -> None:
    """The extra hidden from a real ``prescreen model train --trainer numpy`` (None in sys.modules
    is how Python itself says a module cannot be imported)."""
    labels = write(tmp_path / "labels.csv", fleet_rows(200))
    code = (
        "import sys; sys.modules['tflite'] = None; from prescreen.commands.main import main; "
        f"sys.exit(main(['model', 'train', '--labels', {str(labels)!r}, '--out', {str(tmp_path / 'new')!r}, "
        "'--trainer', 'numpy']))"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=False, cwd=tmp_path
    )
    assert done.returncode == 1, done.stderr[-2000:]
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, lines
    assert "pip install 'prescreen-agent[learn]'" in lines[0]
    assert "tflite is missing" in lines[0]
    assert not (tmp_path / "new").exists()
