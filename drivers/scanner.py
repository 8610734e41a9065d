"""What every scanner driver shares: a port thread, a queue of scans, what a scan may hold, and
signalling.

The two wire modes (line and SSI packets) differ only in how bytes become a scan's payload and
whether the host can talk back (beep, LED); both subclass :class:`ScannerBase`. A payload must be
printable ASCII or GS (FNC1): anything else is line noise and is dropped, so garbage on the wire
never becomes a scan nobody made.
"""

from __future__ import annotations

import logging
import queue

from prescreen.drivers.base import Scan
from prescreen.drivers.port import PortOwner
from prescreen.errors import FrameError

log = logging.getLogger("prescreen.drivers")

MAX_QUEUED_SCANS = 1000


def parse_line(frame: bytes) -> str | None:
    """Return the scan text of one payload, None for an empty one.

    Raises:
        FrameError: the payload holds bytes a scanner does not send.
    """
    if not frame:
        return None
    if any(not (0x20 <= b < 0x7F or b == 0x1D) for b in frame):
        raise FrameError(f"scan holds non-printable bytes: {frame!r}", raw=frame)
    return frame.decode("ascii")


class ScannerBase(PortOwner):
    """Owns a :class:`PortReader` (set by the subclass as ``_port``) and the scan queue."""

    def __init__(self) -> None:
        self._scans: queue.Queue[Scan] = queue.Queue(maxsize=MAX_QUEUED_SCANS)
        self.bad_frames = 0

    def _take(self, payload: bytes) -> str | None:
        """The scan text of ``payload``, or None (empty, or line noise: counted and logged)."""
        try:
            return parse_line(payload)
        except FrameError as exc:
            self.bad_frames += 1
            log.warning("scan dropped", extra={"reason": str(exc)})
            return None

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
