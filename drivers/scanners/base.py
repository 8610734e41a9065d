"""What every scanner driver shares: a port thread, a queue of scans, what a scan may hold, and
signalling.

The two wire modes (line and SSI packets) differ only in how bytes become a scan's payload and
whether the host can talk back (beep, LED); both subclass :class:`ScannerBase`. A payload must be
printable ASCII or GS (FNC1), at least :data:`MIN_SCAN` characters, and mostly letters and digits
(shipping labels are): anything else is line noise and is dropped, so garbage on the wire never
becomes a scan nobody made. Scans wait in a bounded queue; when the station falls that far behind,
the oldest is dropped with an alarm rather than the reader thread blocking.
"""

from __future__ import annotations

import logging
import queue

from prescreen.core.errors import FrameError
from prescreen.drivers.base import Scan
from prescreen.drivers.port import PortOwner

log = logging.getLogger("prescreen.drivers")

MAX_QUEUED_SCANS = 32
# Shortest label payload taken as a scan (a shelf label, SHELF-A1, is 8): line noise makes many
# short printable frames. Of the rest at least this share must be letters, digits or GS: random
# printable bytes are about 65 % alphanumeric, label payloads nearly all.
MIN_SCAN = 6
MIN_ALNUM_SHARE = 0.8


def parse_line(frame: bytes) -> str | None:
    """Return the scan text of one payload, None for an empty one.

    Raises:
        FrameError: the payload holds bytes a scanner does not send.
    """
    if not frame:
        return None
    if any(not (0x20 <= b < 0x7F or b == 0x1D) for b in frame):
        raise FrameError(f"scan holds non-printable bytes: {frame[:80]!r}", raw=frame)
    text = frame.decode("ascii")
    body = text[3:] if text.startswith("]") else text  # after an AIM symbology identifier
    if len(body.strip()) < MIN_SCAN:
        raise FrameError(f"{len(body.strip())} characters are too short for a label: {frame!r}", raw=frame)
    if sum(c.isalnum() or c == "\x1d" for c in body) < MIN_ALNUM_SHARE * len(body):
        raise FrameError(f"scan is mostly punctuation, not a label: {frame[:80]!r}", raw=frame)
    return text


def _worth_a_line(count: int) -> bool:
    """Log the 1st, 10th, 100th and every 1000th of a repeated event (each line says how many)."""
    return count in (1, 10, 100) or count % 1000 == 0


class ScannerBase(PortOwner):
    """Owns a :class:`PortReader` (set by the subclass as ``_port``) and the scan queue."""

    def __init__(self) -> None:
        self._scans: queue.Queue[Scan] = queue.Queue(maxsize=MAX_QUEUED_SCANS)
        self.bad_frames = 0
        self.dropped_scans = 0

    def _take(self, payload: bytes) -> str | None:
        """The scan text of ``payload``, or None (empty, or line noise: counted and logged)."""
        try:
            return parse_line(payload)
        except FrameError as exc:
            self.bad_frames += 1
            if _worth_a_line(self.bad_frames):  # a noisy line must not flood the journal
                log.warning("scan dropped", extra={"reason": str(exc), "dropped_so_far": self.bad_frames})
            return None

    def _enqueue(self, scan: Scan) -> None:
        """Queue a scan for the station; if it is that far behind, drop the oldest with an alarm
        (the reader thread never blocks, so the port keeps being read)."""
        while True:
            try:
                self._scans.put_nowait(scan)
                return
            except queue.Full:
                try:
                    dropped = self._scans.get_nowait()
                except queue.Empty:
                    continue
                self.dropped_scans += 1
                if _worth_a_line(self.dropped_scans):
                    log.error(
                        "scan queue full: oldest scan dropped",
                        extra={"dropped": dropped.raw[:64], "dropped_so_far": self.dropped_scans},
                    )

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
