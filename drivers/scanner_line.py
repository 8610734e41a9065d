"""Barcode scanners in line mode (RS-232 or USB-CDC): one scan per line.

Terminators CR, LF, CR LF and TAB are all accepted (vendors differ and sites reconfigure them). A
line must be printable ASCII or GS (FNC1): anything else is line noise and is dropped, so garbage on
the wire never becomes a scan nobody made.
"""

from __future__ import annotations

import logging
import queue

from prescreen.drivers.base import Scan, SerialSettings
from prescreen.drivers.framing import Framer
from prescreen.drivers.port import PortReader
from prescreen.errors import FrameError

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


class LineScanner:
    """Reads scans from a line-mode scanner; :meth:`read_code` returns the next one."""

    def __init__(self, url: str, *, baudrate: int = 9600, suffix: str = "any") -> None:
        self._scans: queue.Queue[Scan] = queue.Queue(maxsize=1000)
        self.bad_frames = 0
        self._port = PortReader(
            url,
            SerialSettings(baudrate, 8, "N", 1),
            Framer(TERMINATORS[suffix], max_len=MAX_SCAN),
            self._on_frame,
            name="scanner",
        )

    @property
    def url(self) -> str:
        """The port URL this scanner is read from."""
        return self._port.url

    def status(self) -> dict[str, object]:
        """URL, up, reconnects and last error of the scanner's port."""
        return self._port.status()

    @property
    def up(self) -> bool:
        """True while the scanner's port is open."""
        return self._port.up

    def start(self) -> LineScanner:
        """Start reading in the background; returns self for chaining."""
        self._port.start()
        return self

    def close(self) -> None:
        """Stop reading and close the port."""
        self._port.stop()

    def __enter__(self) -> LineScanner:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _on_frame(self, frame: bytes, at: float) -> None:
        try:
            text = parse_line(frame)
        except FrameError as exc:
            self.bad_frames += 1
            log.warning("scan dropped", extra={"reason": str(exc)})
            return
        if text is not None:
            self._scans.put(Scan(text, at))

    def read_code(self, timeout: float | None = None) -> Scan | None:
        """Next scan, or None if none arrives within ``timeout`` seconds."""
        try:
            return self._scans.get(timeout=timeout)
        except queue.Empty:
            return None
