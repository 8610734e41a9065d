"""Barcode scanners in line mode (RS-232 or USB-CDC): one scan per line.

Terminators CR, LF, CR LF and TAB are all accepted (vendors differ and sites reconfigure them). A
line must be printable ASCII or GS (FNC1): anything else is line noise and is dropped, so garbage on
the wire never becomes a scan nobody made.
"""

from __future__ import annotations

import logging

from prescreen.drivers.base import Scan, SerialSettings
from prescreen.drivers.framing import Framer
from prescreen.drivers.port import PortReader
from prescreen.drivers.scanner import ScannerBase
from prescreen.errors import FrameError, UnsupportedDevice

log = logging.getLogger("prescreen.drivers")

TERMINATORS: dict[str, tuple[bytes, ...]] = {
    "any": (b"\r\n", b"\r", b"\n", b"\t"),
    "cr": (b"\r",),
    "lf": (b"\n",),
    "crlf": (b"\r\n",),
    "tab": (b"\t",),
}
MAX_SCAN = 200  # longest GS1-128 / 2D label payload we accept


def parse_line(frame: bytes) -> str | None:
    """Return the scan text of one line, None for an empty line.

    Raises:
        FrameError: the line holds bytes a scanner does not send.
    """
    if not frame:
        return None
    if any(not (0x20 <= b < 0x7F or b == 0x1D) for b in frame):
        raise FrameError(f"scan holds non-printable bytes: {frame!r}", raw=frame)
    return frame.decode("ascii")


class LineScanner(ScannerBase):
    """Reads scans from a line-mode scanner; :meth:`read_code` returns the next one."""

    def __init__(self, url: str, *, baudrate: int = 9600, suffix: str = "any") -> None:
        super().__init__()
        if suffix not in TERMINATORS:
            raise UnsupportedDevice(f"scanner suffix must be one of {', '.join(TERMINATORS)}, got {suffix!r}")
        self._port = PortReader(
            url,
            SerialSettings(baudrate, 8, "N", 1),
            Framer(TERMINATORS[suffix], max_len=MAX_SCAN),
            self._on_frame,
            name="scanner",
        )

    def _on_frame(self, frame: bytes, at: float) -> None:
        try:
            text = parse_line(frame)
        except FrameError as exc:
            self.bad_frames += 1
            log.warning("scan dropped", extra={"reason": str(exc)})
            return
        if text is not None:
            self._scans.put(Scan(text, at))
