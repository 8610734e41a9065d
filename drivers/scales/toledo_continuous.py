"""Toledo continuous output ("MT continuous"; Fairbanks, Cardinal 225, Rice Lake, Kern FTC, ...).

The indicator streams without being asked: ``STX SWA SWB SWC <6-digit weight> <6-digit tare> CR
CHK``, 18 bytes. Digits carry no decimal point; SWA bits 0-2 say where it is. SWB says net, negative,
over capacity, motion and kg-or-lb. CHK is the two's complement of the 7-bit sum of every byte from
STX to CR, so a frame garbled on the wire is refused rather than read as a different weight.
Parity (bit 7) is masked because the line is 7E1. Sources: Kern FTC manual 5.2, Rice Lake 880
manual 10.8.1, Cardinal 225 p.118. Default 9600 7E1.
"""

from __future__ import annotations

from decimal import Decimal

from prescreen.core.errors import FrameError
from prescreen.drivers.base import KG_PER_LB, SerialSettings, WeightReading, to_kg
from prescreen.drivers.framing import FixedFramer

FRAME_LENGTH = 18
_CR_AT = 16
# SWA bits 0-2: where the decimal point sits in the six weight digits (as an exponent of ten).
_EXPONENT = {0: 2, 1: 1, 2: 0, 3: -1, 4: -2, 5: -3, 6: -4, 7: -5}
_SWB_NEGATIVE, _SWB_OVER, _SWB_MOTION, _SWB_KG = 0x02, 0x04, 0x08, 0x10


def checksum(body: bytes) -> int:
    """Two's complement of the 7-bit sum of ``body`` (STX through CR)."""
    return (-sum(b & 0x7F for b in body)) & 0x7F


def _checksum_ok(frame: bytes) -> bool:
    return checksum(frame[:17]) == frame[17] & 0x7F


class ToledoContinuous:
    """The 18-byte continuous frame with tare and checksum (the indicators' default format)."""

    name = "toledo-continuous"
    settings = SerialSettings(9600, 7, "E", 1)
    request: bytes | None = None

    def framer(self) -> FixedFramer:
        return FixedFramer(FRAME_LENGTH, start=b"\x02", end=b"\r", end_at=_CR_AT, check=_checksum_ok)

    def parse(self, frame: bytes) -> WeightReading | None:
        if len(frame) != FRAME_LENGTH or frame[_CR_AT] != 0x0D:
            raise FrameError(f"Toledo continuous frame must be {FRAME_LENGTH} bytes", raw=frame)
        if not _checksum_ok(frame):
            raise FrameError("Toledo continuous checksum mismatch", raw=frame)
        swa, swb = frame[1] & 0x7F, frame[2] & 0x7F
        digits = bytes(b & 0x7F for b in frame[4:10])
        if not digits.isdigit():
            raise FrameError(f"Toledo continuous weight is not six digits: {digits!r}", raw=frame)
        if swb & _SWB_OVER:
            return WeightReading("overload", False, None, frame)
        if swb & _SWB_NEGATIVE:
            return WeightReading("underload", False, None, frame)
        value = Decimal(int(digits)).scaleb(_EXPONENT[swa & 0x07])
        weight = to_kg(value, "kg" if swb & _SWB_KG else "lb")
        if swb & _SWB_MOTION:
            return WeightReading("motion", False, weight, frame)
        return WeightReading("ok", True, weight, frame)

    def encode(self, reading: WeightReading, unit: str = "lb") -> bytes:
        swb = 0x20 | (_SWB_KG if unit == "kg" else 0)
        if reading.status == "overload":
            swb |= _SWB_OVER
        elif reading.status in ("underload", "error"):
            swb |= _SWB_NEGATIVE
        elif not reading.stable:
            swb |= _SWB_MOTION
        weight = reading.weight_kg or Decimal(0)
        value = weight if unit == "kg" else weight / KG_PER_LB
        dp_code = 5 if unit == "kg" else 4  # XXX.XXX kg or XXXX.XX lb
        counts = int(value.scaleb(-_EXPONENT[dp_code]).to_integral_value())
        if counts > 999_999:
            counts, swb = 0, swb | _SWB_OVER
        swa = 0x28 | dp_code  # 0x08: display increment x1
        body = bytes([0x02, swa, swb, 0x20]) + f"{counts:06d}000000\r".encode("ascii")
        return body + bytes([checksum(body)])


PROTOCOL = ToledoContinuous()
