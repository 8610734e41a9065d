"""Barcode scanners in line mode (RS-232 or USB-CDC): one scan per line.

Terminators CR, LF, CR LF and TAB are all accepted (vendors differ and sites reconfigure them).
What a line may hold is checked by :func:`prescreen.drivers.scanners.base.parse_line`.
"""

from __future__ import annotations

from prescreen.core.errors import UnsupportedDevice
from prescreen.drivers.base import Scan, SerialSettings
from prescreen.drivers.framing import Framer
from prescreen.drivers.port import PortReader
from prescreen.drivers.scanners.base import ScannerBase

TERMINATORS: dict[str, tuple[bytes, ...]] = {
    "any": (b"\r\n", b"\r", b"\n", b"\t"),
    "cr": (b"\r",),
    "lf": (b"\n",),
    "crlf": (b"\r\n",),
    "tab": (b"\t",),
}
MAX_SCAN = 200  # longest GS1-128 / 2D label payload we accept


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
        text = self._take(frame)
        if text is not None:
            self._enqueue(Scan(text, at))
