"""Device simulators on pty pairs: the real protocol bytes, with faults on demand.

A simulator owns the master side of a pty and answers like the device would; the driver opens the
slave path through pyserial exactly as it would open ``/dev/ttyUSB0``. So the demo and the tests
run the real driver code, and only the device at the far end of the cable is simulated.
"""

from __future__ import annotations

import contextlib
import logging
import os
import random
import select
import threading
import tty
from decimal import Decimal

from prescreen.drivers.base import ScaleProtocol, WeightReading

log = logging.getLogger("prescreen.drivers")


class PtyDevice:
    """A pty pair; subclasses answer bytes the host writes in :meth:`on_host_bytes`."""

    def __init__(self, name: str) -> None:
        self.name = name
        self._master, self._slave = os.openpty()
        tty.setraw(self._slave)  # no echo, no CR/LF translation before the driver opens it
        self.port = os.ttyname(self._slave)
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._run, name=f"sim-{name}", daemon=True)
        self._thread.start()

    def write(self, data: bytes) -> None:
        """Send bytes to the host, as the device would."""
        with self._lock:
            os.write(self._master, data)

    def inject(self, data: bytes) -> None:
        """Fault injection: put arbitrary bytes (noise) on the line."""
        self.write(data)

    def on_host_bytes(self, data: bytes) -> None:
        """Handle bytes the host sent; the default device ignores them."""

    def _run(self) -> None:
        while not self._stop.is_set():
            ready, _, _ = select.select([self._master], [], [], 0.1)
            if not ready:
                continue
            try:
                data = os.read(self._master, 4096)
            except OSError:
                break
            if data:
                self.on_host_bytes(data)

    def close(self) -> None:
        """Unplug: stop answering and close both ends (the driver sees the device vanish)."""
        self._stop.set()
        self._thread.join(timeout=1)
        for fd in (self._master, self._slave):
            with contextlib.suppress(OSError):
                os.close(fd)

    def __enter__(self) -> PtyDevice:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class ScaleSimulator(PtyDevice):
    """A polled scale speaking ``protocol``; :meth:`place` puts a parcel on the pan.

    After :meth:`place` the next ``motion`` replies are in motion (with jitter), then stable.
    """

    def __init__(self, protocol: ScaleProtocol, *, unit: str = "kg", seed: int = 0) -> None:
        if protocol.request is None:
            raise ValueError(f"{protocol.name} streams continuously; no polled simulator for it")
        self.protocol = protocol
        self.unit = unit
        self._weight = Decimal(0)
        self._motion_left = 0
        self._fault: WeightReading | None = None
        self._random = random.Random(seed)
        self._pending = b""
        self.requests = 0
        super().__init__(f"scale-{protocol.name}")

    def place(self, weight_kg: Decimal | str, *, motion: int = 3) -> None:
        """Put ``weight_kg`` on the pan (0 to take it off), settling after ``motion`` replies."""
        with self._lock:
            self._weight = Decimal(weight_kg)
            self._motion_left = motion
            self._fault = None

    def fault(self, status: str) -> None:
        """Report ``overload``, ``underload`` or ``error`` until the next :meth:`place`."""
        with self._lock:
            self._fault = WeightReading(status, False, None)  # type: ignore[arg-type]

    def _reading(self) -> WeightReading:
        with self._lock:
            if self._fault is not None:
                return self._fault
            if self._motion_left > 0:
                self._motion_left -= 1
                jitter = Decimal(self._random.randint(-40, 40)) / 1000
                return WeightReading("motion", False, max(Decimal(0), self._weight + jitter))
            return WeightReading("ok", True, self._weight)

    def on_host_bytes(self, data: bytes) -> None:
        request = self.protocol.request
        assert request is not None
        self._pending += data
        while True:
            index = self._pending.find(request)
            if index < 0:
                self._pending = self._pending[-len(request) :]
                return
            self._pending = self._pending[index + len(request) :]
            self.requests += 1
            self.write(self.protocol.encode(self._reading(), self.unit))


class ScannerSimulator(PtyDevice):
    """A line-mode scanner; :meth:`scan` sends one barcode with an optional AIM identifier."""

    def __init__(self, *, suffix: bytes = b"\r") -> None:
        self.suffix = suffix
        super().__init__("scanner")

    def scan(self, payload: str, *, aim: str | None = None) -> None:
        """Emit ``payload`` as the scanner would: AIM prefix, data (GS kept), suffix."""
        self.write(((aim or "") + payload).encode("ascii") + self.suffix)
