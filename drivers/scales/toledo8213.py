"""Toledo 8213/8217 demand mode (Mettler Toledo PS60, Brecknell, Rice Lake BenchPro emulations).

Host sends ``W`` (no terminator); the scale answers ``STX <weight> CR`` when stable, or
``STX ? <status> CR`` in motion, over capacity or under zero. Status bits (mask ``& 0x1F``, bits 5
and 6 are always set and bit 7 is parity): b0 motion, b1 over capacity, b2 under zero, b3
outside zero-capture range, b4 centre of zero. 8213 sends no unit: two decimals means pounds
(``XXX.XX``), three means kilograms (8217 ``WW.WWW``), none means grams. An ``N`` before CR marks
net weight. Sources: Transcell PC-150 App. B, Rice Lake BenchPro p.26, METTLER TOLEDO DIVA
service manual. Defaults 9600 7E1.
"""

from __future__ import annotations

from decimal import Decimal, InvalidOperation

from prescreen.core.errors import FrameError
from prescreen.drivers.base import KG_PER_LB, SerialSettings, WeightReading, to_kg
from prescreen.drivers.framing import Framer


class Toledo8213:
    """Demand-mode weight with the status record for anything but a stable weight."""

    name = "toledo-8213"
    settings = SerialSettings(9600, 7, "E", 1)
    request: bytes | None = b"W"

    def framer(self) -> Framer:
        return Framer((b"\r",), start=b"\x02", max_len=32)

    def parse(self, frame: bytes) -> WeightReading | None:
        body = bytes(b & 0x7F for b in frame[1:])
        if body.startswith(b"?"):
            if len(body) != 2:
                raise FrameError(f"bad 8213 status record {frame!r}", raw=frame)
            bits = body[1] & 0x1F
            if bits & 0x02:
                return WeightReading("overload", False, None, frame)
            if bits & 0x04:
                return WeightReading("underload", False, None, frame)
            if bits & 0x08:
                return WeightReading("error", False, None, frame)
            if bits & 0x01:
                return WeightReading("motion", False, None, frame)
            return WeightReading("ok", True, Decimal(0), frame)  # centre of zero
        text = body.decode("ascii", errors="replace").strip().removesuffix("N")
        if not text or not all(c.isdigit() or c == "." for c in text) or text.count(".") > 1:
            raise FrameError(f"bad 8213 weight {frame!r}", raw=frame)
        try:
            value = Decimal(text)
        except InvalidOperation:  # pragma: no cover - guarded by the character check above
            raise FrameError(f"bad 8213 weight {frame!r}", raw=frame) from None
        decimals = len(text.partition(".")[2]) if "." in text else 0
        unit = "g" if decimals == 0 else ("kg" if decimals == 3 else "lb")
        return WeightReading("ok", True, to_kg(value, unit), frame)

    def encode(self, reading: WeightReading, unit: str = "lb") -> bytes:
        status = {"motion": 0x61, "overload": 0x62, "underload": 0x64, "error": 0x68}
        if reading.status in status or reading.weight_kg is None or not reading.stable:
            code = status.get(reading.status, 0x61)
            return b"\x02?" + bytes([code]) + b"\r"
        if unit == "kg":
            text = f"{reading.weight_kg.quantize(Decimal('0.001')):06.3f}"
        else:
            text = f"{(reading.weight_kg / KG_PER_LB).quantize(Decimal('0.01')):06.2f}"
        return b"\x02" + text.encode("ascii") + b"\r"


PROTOCOL = Toledo8213()
