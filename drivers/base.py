"""Value objects and the interface every scale protocol module implements."""

from __future__ import annotations

import dataclasses
from decimal import Decimal
from typing import Literal, Protocol

from prescreen.drivers.framing import FrameSplitter

WeightStatus = Literal["ok", "motion", "overload", "underload", "error"]

KG_PER_LB = Decimal("0.45359237")  # exact by definition (international pound, 1959)
_KG_PER_UNIT = {
    "kg": Decimal(1),
    "g": Decimal("0.001"),
    "lb": KG_PER_LB,
    "oz": KG_PER_LB / 16,
}


def to_kg(value: Decimal, unit: str) -> Decimal:
    """Convert a reading to kilograms exactly (Decimal, no float rounding until the edge).

    Raises:
        ValueError: for a unit no scale protocol here reports.
    """
    try:
        factor = _KG_PER_UNIT[unit.lower()]
    except KeyError:
        raise ValueError(f"unknown weight unit {unit!r}") from None
    return value * factor


@dataclasses.dataclass(frozen=True)
class SerialSettings:
    """Port settings a protocol defaults to; config may override the baud rate."""

    baudrate: int = 9600
    bytesize: int = 8
    parity: str = "N"
    stopbits: float = 1


@dataclasses.dataclass(frozen=True)
class WeightReading:
    """One decoded scale frame.

    ``weight_kg`` is None whenever the scale did not report a usable weight (overload,
    underload, error, or a status-only reply), so a bad frame can never pass as a weight.
    """

    status: WeightStatus
    stable: bool
    weight_kg: Decimal | None
    raw: bytes = b""

    def __post_init__(self) -> None:
        if self.status in ("overload", "underload", "error") and self.weight_kg is not None:
            raise ValueError(f"a {self.status} reading carries no weight")
        if self.stable and self.status != "ok":
            raise ValueError("only an ok reading can be stable")

    def as_json(self) -> dict[str, object]:
        """The ``prescreen decode scale`` shape; floats only here, at the edge."""
        return {
            "status": self.status,
            "stable": self.stable,
            "weight_kg": None if self.weight_kg is None else float(self.weight_kg),
        }


@dataclasses.dataclass(frozen=True)
class Scan:
    """One barcode read as the scanner sent it (AIM prefix kept, suffix removed)."""

    raw: str
    at: float  # time.monotonic() when the frame completed


class ScaleProtocol(Protocol):
    """What a ``scale_<name>.py`` module exposes as ``PROTOCOL``.

    Adding a scale protocol means adding one module with such an object; the registry finds it.
    """

    name: str
    settings: SerialSettings
    request: bytes | None  # poll command; None for scales that stream continuously

    def framer(self) -> FrameSplitter:
        """A fresh framer that splits this protocol's byte stream into frames."""

    def parse(self, frame: bytes) -> WeightReading | None:
        """Decode one frame; None for frames that carry no weight (acks, echoes).

        Raises:
            FrameError: the frame is not valid for this protocol.
        """

    def encode(self, reading: WeightReading, unit: str = "kg") -> bytes:
        """The bytes a real scale would send for ``reading`` (used by the simulator)."""
