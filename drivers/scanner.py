"""What every scanner driver shares: a port thread, a queue of scans, status, and signalling.

The two wire modes (line and SSI packets) differ only in how bytes become scans and whether the
host can talk back (beep, LED); both subclass :class:`ScannerBase`.
"""

from __future__ import annotations

import queue

from prescreen.drivers.base import Scan
from prescreen.drivers.port import PortReader

MAX_QUEUED_SCANS = 1000


class ScannerBase:
    """Owns a :class:`PortReader` (set by the subclass as ``_port``) and the scan queue."""

    _port: PortReader
    simulator: object | None = None  # the simulator at the far end, when opened as sim://...

    def __init__(self) -> None:
        self._scans: queue.Queue[Scan] = queue.Queue(maxsize=MAX_QUEUED_SCANS)
        self.bad_frames = 0

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

    def start(self) -> ScannerBase:
        """Start reading in the background; returns self for chaining."""
        self._port.start()
        return self

    def close(self) -> None:
        """Stop reading and close the port."""
        self._port.stop()

    def __enter__(self) -> ScannerBase:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()

    def read_code(self, timeout: float | None = None) -> Scan | None:
        """Next scan, or None if none arrives within ``timeout`` seconds."""
        try:
            return self._scans.get(timeout=timeout)
        except queue.Empty:
            return None

    def signal(self, verdict: str) -> bool:
        """Tell the operator ``verdict`` on the scanner itself; False when the scanner cannot
        (a line-mode scanner has no command channel; the station page still sounds)."""
        return False
