"""Write a full-integer int8 TFLite model of dense layers without TensorFlow.

The station runs models through the TFLite interpreter; TensorFlow's converter is the usual way to
make one, but it is a 500 MB training dependency. A stack of fully connected layers in int8 is a
small flatbuffer (the TFLite schema, ``schema.fbs`` version 3): tensors, their quantization, the
constant buffers and one ``FULLY_CONNECTED`` operator per layer. This module writes exactly that,
so a model trained with numpy (:mod:`prescreen.models.tiny_train`) runs on a station like the
shipped one, through the same runner and the same checks. Only what such a model needs is
written; the field numbers below are those of the TFLite schema.
"""

from __future__ import annotations

import dataclasses
import struct
from collections.abc import Sequence
from typing import Any

# TFLite enums (schema.fbs)
_INT8, _INT32 = 9, 2
_FULLY_CONNECTED = 9
_FULLY_CONNECTED_OPTIONS = 8  # BuiltinOptions union member
_RELU, _NO_ACTIVATION = 1, 0
_FC_VERSION = 4  # the first version of FULLY_CONNECTED with int8 kernels


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


# --- a minimal flatbuffer writer: objects are laid out after whatever refers to them ----------

Field = tuple[int, str, Any]  # (field number, kind, value)
_SCALARS = {"u8": "<B", "i8": "<b", "bool": "<B", "i32": "<i", "u32": "<I", "i64": "<q"}
_VECTORS = {"vi32": "<i", "vi64": "<q", "vf32": "<f"}


@dataclasses.dataclass
class Table:
    """A flatbuffer table: its fields by number (``table``/``string``/vectors are references)."""

    fields: list[Field]


class _Writer:
    def __init__(self) -> None:
        self.buf = bytearray()

    def pad(self, align: int, extra: int = 0) -> None:
        """Zero bytes until ``len + extra`` is a multiple of ``align``."""
        while (len(self.buf) + extra) % align:
            self.buf.append(0)

    def patch(self, at: int, target: int) -> None:
        """The uoffset at ``at`` points forward to ``target``."""
        self.buf[at : at + 4] = struct.pack("<I", target - at)

    def table(self, table: Table) -> int:
        slots = sorted(table.fields, key=lambda f: -_size(f[1]))
        layout: dict[int, int] = {}
        cursor = 4  # after the soffset to the vtable
        for number, kind, _ in slots:
            size = _size(kind)
            cursor += -cursor % size
            layout[number] = cursor
            cursor += size
        count = max(layout, default=-1) + 1
        vtable = struct.pack(
            f"<{2 + count}H", 4 + 2 * count, cursor, *(layout.get(i, 0) for i in range(count))
        )
        self.pad(8, len(vtable))  # the table starts 8-aligned, so its fields are aligned
        vtable_at = len(self.buf)
        self.buf += vtable
        start = len(self.buf)
        self.buf += bytes(cursor)
        self.buf[start : start + 4] = struct.pack("<i", start - vtable_at)
        later: list[tuple[int, str, Any]] = []
        for number, kind, value in slots:
            at = start + layout[number]
            if kind in _SCALARS:
                struct.pack_into(_SCALARS[kind], self.buf, at, value)
            else:
                later.append((at, kind, value))
        for at, kind, value in later:
            self.patch(at, self.write(kind, value))
        return start

    def write(self, kind: str, value: Any) -> int:
        """Write a referenced object; returns where it starts (a vector or string: its length)."""
        if kind == "table":
            return self.table(value)
        if kind == "string":
            data = value.encode()
            self.pad(4)
            at = len(self.buf)
            self.buf += struct.pack("<I", len(data)) + data + b"\0"
            return at
        if kind == "bytes":  # a buffer's data: 16-aligned, as the interpreter maps it
            self.pad(16, 4)
            at = len(self.buf)
            self.buf += struct.pack("<I", len(value)) + bytes(value)
            return at
        if kind == "tables":
            self.pad(4)
            at = len(self.buf)
            self.buf += struct.pack("<I", len(value)) + bytes(4 * len(value))
            for i, item in enumerate(value):
                self.patch(at + 4 + 4 * i, self.table(item))
            return at
        fmt = _VECTORS[kind]
        width = struct.calcsize(fmt)
        self.pad(max(width, 4), 4)
        at = len(self.buf)
        self.buf += struct.pack("<I", len(value)) + b"".join(struct.pack(fmt, v) for v in value)
        return at


def _size(kind: str) -> int:
    return struct.calcsize(_SCALARS[kind]) if kind in _SCALARS else 4


def _tensor(name: str, shape: list[int], dtype: int, buffer: int, quantized: tuple[float, int]) -> Table:
    scale, zero = quantized
    quantization = Table([(2, "vf32", [scale]), (3, "vi64", [zero]), (6, "i32", 0)])
    return Table(
        [
            (0, "vi32", shape),
            (1, "i8", dtype),
            (2, "u32", buffer),
            (3, "string", name),
            (4, "table", quantization),
        ]
    )


def int8_dense_model(
    width: int, in_scale: float, in_zero: int, layers: Sequence[QuantizedLayer], description: str
) -> bytes:
    """The TFLite flatbuffer of ``layers`` applied to an int8 input of ``width`` features."""
    tensors = [_tensor("input", [1, width], _INT8, 0, (in_scale, in_zero))]
    buffers = [Table([])]  # buffer 0: the empty sentinel (activations own no data)
    operators: list[Table] = []
    previous, fan_in = 0, width
    for number, layer in enumerate(layers):
        out = len(layer.bias)
        weights = bytes(struct.pack(f"<{out * fan_in}b", *(w for row in layer.weights for w in row)))
        bias = struct.pack(f"<{out}i", *layer.bias)
        buffers += [Table([(0, "bytes", weights)]), Table([(0, "bytes", bias)])]
        tensors += [
            _tensor(
                f"dense_{number}/weights", [out, fan_in], _INT8, len(buffers) - 2, (layer.weight_scale, 0)
            ),
            _tensor(f"dense_{number}/bias", [out], _INT32, len(buffers) - 1, (layer.bias_scale, 0)),
            _tensor(f"dense_{number}/output", [1, out], _INT8, 0, (layer.out_scale, layer.out_zero)),
        ]
        options = Table([(0, "i8", _RELU if layer.relu else _NO_ACTIVATION)])
        operators.append(
            Table(
                [
                    (0, "u32", 0),
                    (1, "vi32", [previous, len(tensors) - 3, len(tensors) - 2]),
                    (2, "vi32", [len(tensors) - 1]),
                    (3, "u8", _FULLY_CONNECTED_OPTIONS),
                    (4, "table", options),
                ]
            )
        )
        previous, fan_in = len(tensors) - 1, out
    subgraph = Table(
        [
            (0, "tables", tensors),
            (1, "vi32", [0]),
            (2, "vi32", [previous]),
            (3, "tables", operators),
            (4, "string", "main"),
        ]
    )
    opcode = Table([(0, "i8", _FULLY_CONNECTED), (2, "i32", _FC_VERSION), (3, "i32", _FULLY_CONNECTED)])
    model = Table(
        [
            (0, "u32", 3),
            (1, "tables", [opcode]),
            (2, "tables", [subgraph]),
            (3, "string", description),
            (4, "tables", buffers),
        ]
    )
    writer = _Writer()
    writer.buf += bytes(4) + b"TFL3"  # the root offset, then the file identifier
    writer.patch(0, writer.table(model))
    return bytes(writer.buf)
