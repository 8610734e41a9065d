"""``prescreen detect PORT``: which device is on this port, at which settings?

IT plugs in whatever scale the site bought and rarely knows its protocol or baud rate. Each known
protocol is tried at each baud rate with its own data format: a polled scale is asked, a streaming
one is listened to, an SSI scanner is asked for its revision. An attempt counts as an answer only
when the protocol's own parser accepts a frame, so echoes and noise are not mistaken for a device.
"""

from __future__ import annotations

import dataclasses
import time

from prescreen.core.errors import FrameError
from prescreen.drivers.base import ScaleProtocol, SerialSettings
from prescreen.drivers.port import open_serial
from prescreen.drivers.registry import scale_protocols
from prescreen.drivers.scanners import ssi_packets as ssi

BAUDRATES = (9600, 19200, 4800, 2400)
SSI_SCANNER = "ssi-scanner"


@dataclasses.dataclass(frozen=True)
class Attempt:
    """One protocol at one setting: how many frames came back and how many its parser accepted."""

    protocol: str
    settings: str  # e.g. "9600 7E1"
    frames: int
    valid: int
    sample: dict[str, object] | None = None

    @property
    def answered(self) -> bool:
        """The device spoke this protocol at these settings."""
        return self.valid > 0


def describe(settings: SerialSettings) -> str:
    """``9600 7E1`` style, as scale manuals write it."""
    stop = int(settings.stopbits) if settings.stopbits == int(settings.stopbits) else settings.stopbits
    return f"{settings.baudrate} {settings.bytesize}{settings.parity}{stop}"


def _exchange(url: str, settings: SerialSettings, request: bytes | None, listen_s: float) -> bytes:
    port = open_serial(url, settings, timeout=0.02)
    try:
        port.reset_input_buffer()
        received = bytearray()
        deadline = time.monotonic() + listen_s
        next_request = 0.0
        while time.monotonic() < deadline:
            if request is not None and time.monotonic() >= next_request:
                port.write(request)
                next_request = time.monotonic() + listen_s / 3
            received += port.read(256)
        return bytes(received)
    finally:
        port.close()


def _try_scale(url: str, proto: ScaleProtocol, baudrate: int, listen_s: float) -> Attempt:
    settings = dataclasses.replace(proto.settings, baudrate=baudrate)
    frames = proto.framer().feed(_exchange(url, settings, proto.request, listen_s))
    valid, sample = 0, None
    for frame in frames:
        try:
            reading = proto.parse(frame)
        except FrameError:
            continue
        if reading is not None and reading.status != "error":
            valid += 1
            sample = reading.as_json()
    return Attempt(proto.name, describe(settings), len(frames), valid, sample)


def _try_ssi(url: str, baudrate: int, listen_s: float) -> Attempt:
    settings = SerialSettings(baudrate, 8, "N", 1)
    frames = ssi.SsiFramer().feed(_exchange(url, settings, ssi.host(ssi.REQUEST_REVISION), listen_s))
    valid = sum(1 for frame in frames if ssi.decode(frame).source == ssi.SOURCE_DECODER)
    return Attempt(SSI_SCANNER, describe(settings), len(frames), valid)


def detect(url: str, *, baudrates: tuple[int, ...] = BAUDRATES, listen_s: float = 0.4) -> list[Attempt]:
    """Try every protocol at each baud rate, stopping after the first rate where one answered.

    Raises:
        DeviceError: the port cannot be opened at all (missing, permission denied).
    """
    attempts: list[Attempt] = []
    for baudrate in baudrates:
        for proto in scale_protocols().values():
            attempts.append(_try_scale(url, proto, baudrate, listen_s))
        attempts.append(_try_ssi(url, baudrate, listen_s))
        if any(a.answered for a in attempts):
            break
    return attempts


def best(attempts: list[Attempt]) -> Attempt | None:
    """The attempt with the most accepted frames, or None if nothing answered."""
    answered = [a for a in attempts if a.answered]
    return max(answered, key=lambda a: a.valid) if answered else None
