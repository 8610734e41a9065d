"""Write a full-integer int8 TFLite model of dense layers without TensorFlow.

The station runs models through the TFLite interpreter; TensorFlow's converter is the usual way to
make one, but it is a 500 MB training dependency. A stack of fully connected layers in int8 is a
small flatbuffer (the TFLite schema, ``schema.fbs`` version 3): tensors, their quantization, the
constant buffers and one ``FULLY_CONNECTED`` operator per layer. This module builds exactly that with
Google's ``flatbuffers`` runtime and the ``tflite`` package (the flatc-generated bindings of that
schema: its builder functions, enums and field layout), so no field number or byte offset is kept
here. Both come with the ``learn`` extra and are imported only when a model is written, never on a
station's screening path; a model trained with numpy (:mod:`prescreen.models.tiny_train`) runs on a
station like the shipped one, through the same runner and the same checks.
"""

from __future__ import annotations

import dataclasses
import struct
from collections.abc import Callable, Sequence
from typing import Any

from prescreen.core.errors import ModelError

INSTALL_HINT = "pip install 'prescreen-agent[learn]'"
_FC_VERSION = 4  # the first version of FULLY_CONNECTED with int8 kernels
_DATA_ALIGN = 16  # schema.fbs: Buffer.data is force_align 16, which flatc's Python code leaves out


@dataclasses.dataclass(frozen=True)
class QuantizedLayer:
    """One dense layer in int8: ``weights`` [out][in] (symmetric, zero point 0), ``bias`` int32
    at scale input_scale * weight_scale, and the quantization of its output."""

    weights: Sequence[Sequence[int]]
    weight_scale: float
    bias: Sequence[int]
    bias_scale: float
    out_scale: float
    out_zero: int
    relu: bool


def schema_modules() -> tuple[Any, Any]:
    """``flatbuffers`` and ``tflite``, imported here only (the station never writes a model).

    Raises:
        ModelError: the ``learn`` extra is not installed; the message says what to install.
    """
    try:
        import flatbuffers
        import tflite
    except ImportError as exc:
        raise ModelError(
            f"writing a TFLite model needs the 'learn' extra ({exc.name} is missing): {INSTALL_HINT}"
        ) from None
    return flatbuffers, tflite


class _ModelBuilder:
    """One model under construction: the flatbuffer builder, the schema's functions and the
    tensors, buffers and operators written so far (a list index is the id the schema uses)."""

    def __init__(self) -> None:
        flatbuffers, self.schema = schema_modules()
        self.fb = flatbuffers.Builder(4096)
        self.tensors: list[int] = []
        self.buffers: list[int] = [self._buffer(b"")]  # buffer 0: the empty sentinel for activations
        self.operators: list[int] = []

    def vector(
        self, start: Callable[[Any, int], Any], prepend: Callable[[Any], Any], values: Sequence[Any]
    ) -> int:
        """A vector begun by the schema's ``start`` function, its items prepended last first."""
        start(self.fb, len(values))
        for value in reversed(values):
            prepend(value)
        return int(self.fb.EndVector())

    def table(self, kind: str, **fields: Any) -> int:
        """A ``kind`` table with ``fields`` by their schema names, through the bindings' own
        ``<kind>Start``, ``<kind>Add<Field>`` and ``<kind>End`` (a name not in the schema fails here)."""
        getattr(self.schema, f"{kind}Start")(self.fb)
        for field, value in fields.items():
            getattr(self.schema, f"{kind}Add{field}")(self.fb, value)
        return int(getattr(self.schema, f"{kind}End")(self.fb))

    def _buffer(self, data: bytes) -> int:
        """A Buffer table whose data starts 16-aligned, as the interpreter maps constant tensors."""
        fb = self.fb
        fb.StartVector(1, len(data), _DATA_ALIGN)
        for byte in reversed(data):
            fb.PrependUint8(byte)
        return self.table("Buffer", Data=fb.EndVector())

    def tensor(
        self, name: str, shape: list[int], dtype: int, quantized: tuple[float, int], data: bytes | None = None
    ) -> int:
        """Add a tensor (constant when ``data`` is given) with per-tensor (scale, zero point); its id."""
        s, fb = self.schema, self.fb
        scale, zero = quantized
        buffer = 0
        if data is not None:
            self.buffers.append(self._buffer(data))
            buffer = len(self.buffers) - 1
        scales = self.vector(s.QuantizationParametersStartScaleVector, fb.PrependFloat32, [scale])
        zeros = self.vector(s.QuantizationParametersStartZeroPointVector, fb.PrependInt64, [zero])
        quantization = self.table("QuantizationParameters", Scale=scales, ZeroPoint=zeros)
        name_at = fb.CreateString(name)
        shape_at = self.vector(s.TensorStartShapeVector, fb.PrependInt32, shape)
        self.tensors.append(
            self.table(
                "Tensor", Shape=shape_at, Type=dtype, Buffer=buffer, Name=name_at, Quantization=quantization
            )
        )
        return len(self.tensors) - 1

    def dense(self, number: int, previous: int, fan_in: int, layer: QuantizedLayer) -> int:
        """One FULLY_CONNECTED operator on tensor ``previous``; the id of its output tensor."""
        s, fb = self.schema, self.fb
        out = len(layer.bias)
        weights = struct.pack(f"<{out * fan_in}b", *(w for row in layer.weights for w in row))
        bias = struct.pack(f"<{out}i", *layer.bias)
        ids = [
            previous,
            self.tensor(
                f"dense_{number}/weights", [out, fan_in], s.TensorType.INT8, (layer.weight_scale, 0), weights
            ),
            self.tensor(f"dense_{number}/bias", [out], s.TensorType.INT32, (layer.bias_scale, 0), bias),
        ]
        quantized = (layer.out_scale, layer.out_zero)
        output = self.tensor(f"dense_{number}/output", [1, out], s.TensorType.INT8, quantized)
        activation = s.ActivationFunctionType.RELU if layer.relu else s.ActivationFunctionType.NONE
        options = self.table("FullyConnectedOptions", FusedActivationFunction=activation)
        inputs = self.vector(s.OperatorStartInputsVector, fb.PrependInt32, ids)
        outputs = self.vector(s.OperatorStartOutputsVector, fb.PrependInt32, [output])
        operator = self.table(
            "Operator",
            OpcodeIndex=0,
            Inputs=inputs,
            Outputs=outputs,
            BuiltinOptionsType=s.BuiltinOptions.FullyConnectedOptions,
            BuiltinOptions=options,
        )
        self.operators.append(operator)
        return output

    def finish(self, graph_input: int, graph_output: int, description: str) -> bytes:
        """The subgraph and the model around what was added; the file's bytes."""
        s, fb = self.schema, self.fb
        offsets = fb.PrependUOffsetTRelative
        tensors = self.vector(s.SubGraphStartTensorsVector, offsets, self.tensors)
        inputs = self.vector(s.SubGraphStartInputsVector, fb.PrependInt32, [graph_input])
        outputs = self.vector(s.SubGraphStartOutputsVector, fb.PrependInt32, [graph_output])
        operators = self.vector(s.SubGraphStartOperatorsVector, offsets, self.operators)
        name = fb.CreateString("main")
        subgraph = self.table(
            "SubGraph", Tensors=tensors, Inputs=inputs, Outputs=outputs, Operators=operators, Name=name
        )
        fc = s.BuiltinOperator.FULLY_CONNECTED
        opcode = self.table("OperatorCode", DeprecatedBuiltinCode=fc, Version=_FC_VERSION, BuiltinCode=fc)
        codes = self.vector(s.ModelStartOperatorCodesVector, offsets, [opcode])
        subgraphs = self.vector(s.ModelStartSubgraphsVector, offsets, [subgraph])
        buffers = self.vector(s.ModelStartBuffersVector, offsets, self.buffers)
        text = fb.CreateString(description)
        model = self.table(
            "Model", Version=3, OperatorCodes=codes, Subgraphs=subgraphs, Description=text, Buffers=buffers
        )
        fb.Finish(model, file_identifier=b"TFL3")
        return bytes(fb.Output())


def int8_dense_model(
    width: int, in_scale: float, in_zero: int, layers: Sequence[QuantizedLayer], description: str
) -> bytes:
    """The TFLite flatbuffer of ``layers`` applied to an int8 input of ``width`` features.

    Raises:
        ModelError: the ``learn`` extra (flatbuffers, tflite) is not installed.
    """
    model = _ModelBuilder()
    graph_input = model.tensor("input", [1, width], model.schema.TensorType.INT8, (in_scale, in_zero))
    previous, fan_in = graph_input, width
    for number, layer in enumerate(layers):
        previous, fan_in = model.dense(number, previous, fan_in, layer), len(layer.bias)
    return model.finish(graph_input, previous, description)
