"""Mettler Toledo MT-SICS (level 0): ``SI`` request, ``S S|D <weight> <unit>`` replies.

Source: MT-SICS reference (ASCII, CR LF terminated); status ``S`` stable, ``D`` dynamic, ``I`` not
executable, ``+`` overload, ``-`` underload; bare ``ES``/``ET``/``EL`` are general errors. The weight
field is right-aligned with variable padding, so replies are split on whitespace, not offsets.
Defaults 9600 8N1.
"""

from __future__ import annotations

from decimal import Decimal, InvalidOperation

from prescreen.core.errors import FrameError
from prescreen.drivers.base import KG_PER_LB, SerialSettings, WeightReading, to_kg
from prescreen.drivers.framing import Framer

_UNITS = {"kg", "g", "lb", "oz"}
_ERRORS = {"ES": "syntax error", "ET": "transmission error", "EL": "logical error"}
_NOT_WEIGHT = {"@", "Z", "ZI", "T", "TI", "TA", "TAC", "I0", "I1", "I2", "I3", "I4", "D", "DW"}


class MtSics:
    """MT-SICS polled with ``SI`` (weight immediately) so motion is visible to the settle rule."""

    name = "mt-sics"
    settings = SerialSettings(9600, 8, "N", 1)
    request: bytes | None = b"SI\r\n"

    def framer(self) -> Framer:
        return Framer((b"\r\n", b"\r", b"\n"), max_len=64)

    def parse(self, frame: bytes) -> WeightReading | None:
        try:
            tokens = frame.decode("ascii").split()
        except UnicodeDecodeError:
            raise FrameError("MT-SICS reply is not ASCII", raw=frame) from None
        if not tokens:
            return None
        head = tokens[0]
        if head in _ERRORS and len(tokens) == 1:
            return WeightReading("error", False, None, frame)
        if head in _NOT_WEIGHT:
            return None
        if head not in ("S", "SI") or len(tokens) < 2:
            raise FrameError(f"not an MT-SICS weight reply: {frame!r}", raw=frame)
        status = tokens[1]
        if status == "+":
            return WeightReading("overload", False, None, frame)
        if status == "-":
            return WeightReading("underload", False, None, frame)
        if status in ("I", "L"):
            return WeightReading("error", False, None, frame)
        if status not in ("S", "D") or len(tokens) != 4 or tokens[3] not in _UNITS:
            raise FrameError(f"malformed MT-SICS weight reply: {frame!r}", raw=frame)
        try:
            value = Decimal(tokens[2])
        except InvalidOperation:
            raise FrameError(f"MT-SICS weight is not a number: {frame!r}", raw=frame) from None
        if not value.is_finite():
            raise FrameError(f"MT-SICS weight is not finite: {frame!r}", raw=frame)
        if value < 0:
            return WeightReading("underload", False, None, frame)
        if status == "D":
            return WeightReading("motion", False, to_kg(value, tokens[3]), frame)
        return WeightReading("ok", True, to_kg(value, tokens[3]), frame)

    def encode(self, reading: WeightReading, unit: str = "kg") -> bytes:
        if reading.status == "overload":
            return b"S +\r\n"
        if reading.status == "underload":
            return b"S -\r\n"
        if reading.status == "error" or reading.weight_kg is None:
            return b"S I\r\n"
        value = _from_kg(reading.weight_kg, unit)
        flag = "S" if reading.stable else "D"
        return f"S {flag} {value:>10} {unit}\r\n".encode("ascii")


def _from_kg(kg: Decimal, unit: str) -> str:
    places = {"kg": "0.001", "g": "0.1", "lb": "0.01", "oz": "0.1"}[unit]
    factor = {"kg": Decimal(1), "g": Decimal(1000), "lb": 1 / KG_PER_LB, "oz": 16 / KG_PER_LB}
    return str((kg * factor[unit]).quantize(Decimal(places)))


PROTOCOL = MtSics()
