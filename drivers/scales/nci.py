"""NCI / Avery Weigh-Tronix SCP-01 (Brecknell, Salter Brecknell, B-TEK): ``W<CR>`` request.

Reply: ``LF <weight><unit> CR LF <status bytes> CR ETX``. Status byte 1: b0 motion, b1 at zero,
b2 RAM error, b3 EEPROM error; byte 2: b0 under capacity, b1 over capacity, b2 ROM error, b3
calibration error; bits 4 and 5 are always set. Over capacity fills the weight field with
``^``, under capacity with ``_``, zero error with ``-``. Parity bit 7 is masked off because
scales configured for 7E1 may be read at 8N1. Sources: NCI 6702 manual p.14, NCI 7800 p.32.
Defaults 9600 7E1 (typical; configurable).
"""

from __future__ import annotations

import re
from decimal import Decimal

from prescreen.core.errors import FrameError
from prescreen.drivers.base import KG_PER_LB, SerialSettings, WeightReading, to_kg
from prescreen.drivers.framing import Framer

_PLAIN = re.compile(r"^\s*(-?\s*\d*\.?\d+)\s*(lb|kg|oz|g)\s*$", re.IGNORECASE)
_LB_OZ = re.compile(r"^\s*(-?\d+)\s*lb\s+(\d+(?:\.\d+)?)\s*oz\s*$", re.IGNORECASE)


class Nci:
    """SCP-01 weight request/reply."""

    name = "nci"
    settings = SerialSettings(9600, 7, "E", 1)
    request: bytes | None = b"W\r"

    def framer(self) -> Framer:
        return Framer((b"\x03",), max_len=64)

    def parse(self, frame: bytes) -> WeightReading | None:
        text = bytes(b & 0x7F for b in frame).decode("ascii")
        records = [r for r in text.replace("\n", "").split("\r") if r]
        if not records:
            return None
        if records == ["?"]:
            return WeightReading("error", False, None, frame)
        if len(records) == 1:
            _status_bits(records[0], frame)  # a status-only reply (S or Z) carries no weight
            return None
        if len(records) != 2:
            raise FrameError(f"SCP-01 reply has {len(records)} records: {frame!r}", raw=frame)
        motion, under, over, fault = _status_bits(records[1], frame)
        field = records[0]
        if over or set(field.rstrip("lbkgoz ")) == {"^"}:
            return WeightReading("overload", False, None, frame)
        if under or set(field.rstrip("lbkgoz ")) == {"_"}:
            return WeightReading("underload", False, None, frame)
        if fault or set(field.rstrip("lbkgoz ")) == {"-"}:
            return WeightReading("error", False, None, frame)
        kg = _weight_kg(field, frame)
        if kg < 0:
            return WeightReading("underload", False, None, frame)
        if motion:
            return WeightReading("motion", False, kg, frame)
        return WeightReading("ok", True, kg, frame)

    def encode(self, reading: WeightReading, unit: str = "lb") -> bytes:
        if reading.status == "overload":
            return f"\n^^^^^^^{unit}\r\n02\r\x03".encode("ascii")
        if reading.status == "underload":
            return f"\n_______{unit}\r\n01\r\x03".encode("ascii")
        if reading.status == "error" or reading.weight_kg is None:
            return f"\n-------{unit}\r\n08\r\x03".encode("ascii")
        factor = {"kg": Decimal(1), "lb": 1 / KG_PER_LB, "g": Decimal(1000), "oz": 16 / KG_PER_LB}
        places = {"kg": "0.001", "lb": "0.01", "g": "1", "oz": "0.1"}[unit]
        value = (reading.weight_kg * factor[unit]).quantize(Decimal(places))
        status1 = 0x30 | (0 if reading.stable else 1) | (2 if value == 0 else 0)
        return f"\n{value:0>7}{unit}\r\n{chr(status1)}0\r\x03".encode("ascii")


def _status_bits(field: str, frame: bytes) -> tuple[bool, bool, bool, bool]:
    """Return (motion, under, over, fault) from the status record."""
    if field.startswith("S"):  # SCP-02 / ECR variants prefix the status record with S
        field = field[1:]
    if len(field) < 2 or any((ord(c) & 0x30) != 0x30 for c in field):
        raise FrameError(f"bad SCP-01 status bytes {field!r}", raw=frame)
    first, second = ord(field[0]), ord(field[1])
    fault = bool(first & 0x0C or second & 0x0C)
    return bool(first & 0x01), bool(second & 0x01), bool(second & 0x02), fault


def _weight_kg(field: str, frame: bytes) -> Decimal:
    lb_oz = _LB_OZ.match(field)
    if lb_oz:
        pounds = Decimal(lb_oz.group(1))
        ounces = Decimal(lb_oz.group(2))
        sign = -1 if pounds < 0 or lb_oz.group(1).startswith("-") else 1
        return to_kg(abs(pounds) * 16 + ounces, "oz") * sign
    plain = _PLAIN.match(field)
    if not plain:
        raise FrameError(f"bad SCP-01 weight field {field!r}", raw=frame)
    return to_kg(Decimal(plain.group(1).replace(" ", "")), plain.group(2).lower())


PROTOCOL = Nci()
