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
import tempfile
import threading
import time
import tty
from decimal import Decimal

from prescreen.drivers.base import ScaleProtocol, WeightReading
from prescreen.drivers.scanners import ssi_packets as ssi

log = logging.getLogger("prescreen.drivers")


class PtyDevice:
    """A pty pair; subclasses answer bytes the host writes in :meth:`on_host_bytes`.

    :meth:`unplug` and :meth:`replug` pull and reconnect the cable: the pty goes away (the driver
    sees an I/O error, then no device) and a new one appears, reachable at the same
    :meth:`stable_port` link, as a udev ``/dev/serial/by-id/`` link survives a replug.
    """

    tick_s = 0.1  # how often :meth:`on_tick` runs (streaming devices send on it)

    def __init__(self, name: str) -> None:
        self.name = name
        self._lock = threading.Lock()
        self._link: str | None = None
        self.plugged = False
        self._plug()

    def _plug(self) -> None:
        self._master, self._slave = os.openpty()
        tty.setraw(self._slave)  # no echo, no CR/LF translation before the driver opens it
        self.port = os.ttyname(self._slave)
        if self._link is not None:
            os.symlink(self.port, self._link)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"sim-{self.name}", daemon=True)
        self.plugged = True
        self._thread.start()

    def stable_port(self) -> str:
        """A path that stays the same across :meth:`replug` (a link to the current pty in a
        private temporary folder, removed by :meth:`close`)."""
        if self._link is None:
            self._link = os.path.join(tempfile.mkdtemp(prefix="prescreen-sim-"), self.name)
            os.symlink(self.port, self._link)
        return self._link

    def write(self, data: bytes, *, drop_if_full: bool = False) -> None:
        """Send bytes to the host, as the device would (lost while unplugged).

        ``drop_if_full``: a streaming device whose host is not reading loses the bytes (as on a
        real line) instead of blocking its thread on a full pty buffer.
        """
        with self._lock:
            if not self.plugged:
                return
            if drop_if_full and not select.select([], [self._master], [], 0)[1]:
                return
            os.write(self._master, data)

    def inject(self, data: bytes) -> None:
        """Fault injection: put arbitrary bytes (noise) on the line."""
        self.write(data)

    def on_host_bytes(self, data: bytes) -> None:
        """Handle bytes the host sent; the default device ignores them."""

    def on_tick(self) -> None:
        """Called about every ``tick_s``; the default device sends nothing unasked."""

    def _run(self) -> None:
        while not self._stop.is_set():
            ready, _, _ = select.select([self._master], [], [], self.tick_s)
            self.on_tick()
            if not ready:
                continue
            try:
                data = os.read(self._master, 4096)
            except OSError:
                break
            if data:
                self.on_host_bytes(data)

    def unplug(self) -> None:
        """Pull the cable: stop answering and close both ends (the driver sees the device vanish)."""
        self._stop.set()
        self._thread.join(timeout=1)
        with self._lock:
            self.plugged = False
            for fd in (self._master, self._slave):
                with contextlib.suppress(OSError):
                    os.close(fd)
        if self._link is not None:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(self._link)

    def replug(self) -> None:
        """Plug the cable back in: a new pty behind the same :meth:`stable_port` (no-op if plugged)."""
        if not self.plugged:
            self._plug()

    def close(self) -> None:
        """Unplug for good, and remove the :meth:`stable_port` link and its folder."""
        self.unplug()
        if self._link is not None:
            with contextlib.suppress(OSError):
                os.rmdir(os.path.dirname(self._link))

    def __enter__(self) -> PtyDevice:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class ScaleSimulator(PtyDevice):
    """A scale speaking ``protocol``; :meth:`place` puts a parcel on the pan.

    A polled protocol is answered per request; a continuous one (``request`` None) streams a frame
    every ``stream_s``, as indicators do. After :meth:`place` the next ``motion`` frames are in
    motion (with jitter), then stable.
    """

    def __init__(
        self, protocol: ScaleProtocol, *, unit: str = "kg", seed: int = 0, stream_s: float = 0.02
    ) -> None:
        self.protocol = protocol
        self.tick_s = stream_s
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

    def on_tick(self) -> None:
        if self.protocol.request is None:
            self.write(self.protocol.encode(self._reading(), self.unit), drop_if_full=True)

    def on_host_bytes(self, data: bytes) -> None:
        request = self.protocol.request
        if request is None:
            return  # a streaming indicator ignores the host
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


class SsiScannerSimulator(PtyDevice):
    """A Zebra scanner in SSI packet mode, down to the ACK timing.

    :meth:`scan` sends DECODE_DATA (split into several packets when longer than ``segment``) and
    waits for the host's ACK per packet, resending with the retransmit bit after ``ack_timeout_s``
    (at most ``retries`` times) or at once on a NAK. Host commands (PARAM_SEND, BEEP, LED) are
    recorded in ``commands`` and ACKed. Faults: ``corrupt_next`` sends the next packet with a bad
    checksum once; ``ignore_acks`` pretends that many ACKs were lost.
    """

    tick_s = 0.02

    def __init__(self, *, segment: int = 240, ack_timeout_s: float = 0.2, retries: int = 3) -> None:
        self.segment = segment
        self.ack_timeout_s = ack_timeout_s
        self.retries = retries
        self.commands: list[tuple[int, bytes]] = []
        self.corrupt_next = False
        self.ignore_acks = 0
        self.retransmits = 0
        self._queue: list[bytes] = []  # data of packets still to send, in order
        self._in_flight: tuple[ssi.Packet, float, int] | None = None
        self._framer = ssi.SsiFramer()
        super().__init__("scanner-ssi")

    def scan(self, payload: str, *, barcode_type: int = 0x03) -> None:
        """The operator scans ``payload``; decoded as ``barcode_type`` (0x03 Code 128)."""
        data = payload.encode("ascii")
        chunks = [data[i : i + self.segment] for i in range(0, len(data), self.segment)] or [b""]
        with self._lock:
            for index, chunk in enumerate(chunks):
                more = ssi.STATUS_CONTINUATION if index < len(chunks) - 1 else 0
                self._queue.append(bytes([more, barcode_type]) + chunk)
        self._send_next()

    def _send_next(self) -> None:
        with self._lock:
            if self._in_flight is not None or not self._queue:
                return
            item = self._queue.pop(0)
            packet = ssi.Packet(ssi.DECODE_DATA, ssi.SOURCE_DECODER, item[0], item[1:])
            self._in_flight = (packet, time.monotonic(), 0)
        self._transmit(packet)

    def _transmit(self, packet: ssi.Packet) -> None:
        wire = packet.encode()
        if self.corrupt_next:
            self.corrupt_next = False
            wire = wire[:-1] + bytes([wire[-1] ^ 0xFF])
        self.write(wire)

    def _resend(self) -> None:
        with self._lock:
            if self._in_flight is None:
                return
            packet, _, tries = self._in_flight
            if tries >= self.retries:
                log.warning("ssi sim gave up on a packet", extra={"tries": tries})
                self._in_flight = None
                return
            again = ssi.Packet(
                packet.opcode, packet.source, packet.status | ssi.STATUS_RETRANSMIT, packet.data
            )
            self._in_flight = (packet, time.monotonic(), tries + 1)
            self.retransmits += 1
        self._transmit(again)

    def on_tick(self) -> None:
        flight = self._in_flight
        if flight is not None and time.monotonic() - flight[1] > self.ack_timeout_s:
            self._resend()

    def on_host_bytes(self, data: bytes) -> None:
        for frame in self._framer.feed(data):
            packet = ssi.decode(frame)
            if packet.opcode == ssi.CMD_ACK:
                if self.ignore_acks:
                    self.ignore_acks -= 1
                    continue
                with self._lock:
                    self._in_flight = None
                self._send_next()
            elif packet.opcode == ssi.CMD_NAK:
                self._resend()
            else:
                self.commands.append((packet.opcode, packet.data))
                self.write(ssi.Packet(ssi.CMD_ACK, ssi.SOURCE_DECODER).encode())
