"""One serial port owned by one background thread: open, poll, frame, and reconnect.

Why a thread per port: pyserial is blocking; a thread keeps each device independent, so a scale
that is unplugged never stalls the scanner. The port is opened with ``serial.serial_for_url`` so
paths, ``loop://``, ``socket://`` and ``spy://`` all work. On any I/O error the port is closed,
reported down once, and reopened after ``retry_s``, doubling up to ``max_retry_s`` (1 s): a replugged
device is read again within about a second, and a device gone for hours costs one open per second.
"""

from __future__ import annotations

import contextlib
import dataclasses
import errno
import logging
import termios
import threading
import time
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, TypeVar

import serial
from prescreen.core.errors import DeviceError, DeviceNotFound
from prescreen.drivers.base import SerialSettings
from prescreen.drivers.framing import FrameSplitter

if TYPE_CHECKING:
    from prescreen.drivers.sim import PtyDevice

log = logging.getLogger("prescreen.drivers")

FrameHandler = Callable[[bytes, float], None]


@contextlib.contextmanager
def map_serial_errors(url: str) -> Iterator[None]:
    """Re-raise pyserial and OS errors as :class:`DeviceError` naming the port."""
    try:
        yield
    except FileNotFoundError as exc:
        raise DeviceNotFound(f"{url}: no such device ({exc.strerror})", url=url) from exc
    except (serial.SerialException, OSError, ValueError) as exc:
        raise DeviceError(f"{url}: {exc}", url=url) from exc


def open_serial(url: str, settings: SerialSettings, timeout: float) -> serial.SerialBase:
    """Open ``url`` with ``settings``; raises :class:`DeviceError` instead of pyserial errors.

    A port whose line format cannot be changed (a pty, some USB-CDC bridges: always 8 bits, no
    parity) makes ``tcsetattr`` fail with EINVAL when the request changes nothing it supports; such
    a port is opened 8N1 instead, which is what it carries anyway (parsers mask the parity bit).
    """
    with map_serial_errors(url):
        try:
            return _serial_for_url(url, settings, timeout)
        except termios.error as exc:
            if exc.args[0] != errno.EINVAL or (settings.bytesize, settings.parity) == (8, "N"):
                raise DeviceError(f"{url}: cannot set {settings}: {exc}", url=url) from exc
        log.debug("port ignores line format, opened 8N1", extra={"url": url})
        return _serial_for_url(url, dataclasses.replace(settings, bytesize=8, parity="N"), timeout)


def _serial_for_url(url: str, settings: SerialSettings, timeout: float) -> serial.SerialBase:
    return serial.serial_for_url(
        url,
        baudrate=settings.baudrate,
        bytesize=settings.bytesize,
        parity=settings.parity,
        stopbits=settings.stopbits,
        timeout=timeout,
    )


class PortReader:
    """Read frames from ``url`` in a thread and hand each to ``on_frame(frame, monotonic_time)``.

    ``request`` (if any) is written every ``poll_s`` (polled scales). ``up`` tells whether the
    port is open and, for devices that should talk on their own (``watch_silence``: scales, polled
    or streaming), whether a frame arrived within ``silence_s``. ``on_open`` runs on the port
    thread after every (re)open, for devices that must be configured each time they come back.
    """

    def __init__(
        self,
        url: str,
        settings: SerialSettings,
        framer: FrameSplitter,
        on_frame: FrameHandler,
        *,
        name: str,
        request: bytes | None = None,
        poll_s: float = 0.05,
        retry_s: float = 0.05,
        max_retry_s: float = 1.0,
        silence_s: float = 1.0,
        watch_silence: bool = False,
        on_open: Callable[[], None] | None = None,
    ) -> None:
        self.url = url
        self.name = name
        self._settings = settings
        self._framer = framer
        self._on_frame = on_frame
        self._request = request
        self._poll_s = poll_s
        self._retry_s = retry_s
        self._max_retry_s = max_retry_s
        self._silence_s = silence_s
        self._watch_silence = watch_silence or request is not None
        self._on_open = on_open
        self._port: serial.SerialBase | None = None
        self._stop = threading.Event()
        self._first_attempt = threading.Event()
        self._thread: threading.Thread | None = None
        self._write_lock = threading.Lock()
        self._last_frame = 0.0
        self.reconnects = 0
        self.last_error: str | None = None

    @property
    def up(self) -> bool:
        """True while the port is open and (if polled) the device answers."""
        if self._port is None:
            return False
        if not self._watch_silence:
            return True
        return time.monotonic() - self._last_frame < self._silence_s

    def status(self) -> dict[str, object]:
        """What ``prescreen status`` and the metrics show for this device."""
        return {"url": self.url, "up": self.up, "reconnects": self.reconnects, "last_error": self.last_error}

    def start(self) -> None:
        """Start the reader thread (idempotent); returns after its first attempt to open the port.

        pyserial flushes the input buffer when it opens a port, so bytes a device sends before
        that are lost; waiting here means "started" really means "listening" (or known down).
        """
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name=f"port-{self.name}", daemon=True)
            self._thread.start()
            self._first_attempt.wait(timeout=5)

    def stop(self) -> None:
        """Stop the thread and close the port; safe to call twice."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=2)
            self._thread = None
        self._close()

    def write(self, data: bytes) -> bool:
        """Send ``data`` to the device; False (and no exception) while it is down."""
        with self._write_lock:
            port = self._port
            if port is None:
                return False
            try:
                port.write(data)
            except (serial.SerialException, OSError):
                return False
            return True

    def _close(self) -> None:
        port, self._port = self._port, None
        if port is not None:
            with contextlib.suppress(Exception):
                port.close()
        self._framer.reset()

    def _open(self) -> bool:
        try:
            self._port = open_serial(self.url, self._settings, timeout=min(self._poll_s, 0.05))
        except DeviceError as exc:
            if self.last_error != str(exc):
                log.warning("device down", extra={"device": self.name, "url": self.url, "reason": str(exc)})
                self.last_error = str(exc)
            return False
        if self.last_error is not None:
            self.reconnects += 1
            log.info("device up", extra={"device": self.name, "url": self.url, "reconnects": self.reconnects})
        self.last_error = None
        self._last_frame = time.monotonic()
        if self._on_open is not None:
            self._on_open()  # e.g. put an SSI scanner back into packet mode after a replug
        return True

    def _run(self) -> None:
        next_poll = 0.0
        retry_s = self._retry_s
        while not self._stop.is_set():
            if self._port is None:
                opened = self._open()
                self._first_attempt.set()
                if not opened:
                    self._stop.wait(retry_s)
                    retry_s = min(retry_s * 2, self._max_retry_s)
                    continue
                retry_s = self._retry_s
            port = self._port
            assert port is not None
            try:
                now = time.monotonic()
                if self._request is not None and now >= next_poll:
                    with self._write_lock:
                        port.write(self._request)
                    next_poll = now + self._poll_s
                data = port.read(max(1, port.in_waiting))
            except (serial.SerialException, OSError, TypeError) as exc:
                # TypeError: pyserial's posix read on a vanished fd can fail inside select().
                reason = f"{self.url}: {exc}"
                log.warning("device lost", extra={"device": self.name, "url": self.url, "reason": str(exc)})
                self.last_error = reason
                self._close()
                continue
            if data:
                at = time.monotonic()
                for frame in self._framer.feed(data):
                    self._last_frame = at
                    self._on_frame(frame, at)


_Owner = TypeVar("_Owner", bound="PortOwner")


class PortOwner:
    """A device driver that owns one :class:`PortReader` (set by the subclass as ``_port``).

    Scales and scanners expose the same port state and lifecycle; this is it, once.
    """

    _port: PortReader
    simulator: PtyDevice | None = None  # the simulator at the far end, when opened as sim://...

    @property
    def url(self) -> str:
        """The port URL this device is read from."""
        return self._port.url

    def status(self) -> dict[str, object]:
        """URL, up, reconnects and last error of the device's port."""
        return self._port.status()

    @property
    def up(self) -> bool:
        """True while the device is connected (and, for scales, answering)."""
        return self._port.up

    @property
    def reconnects(self) -> int:
        """How often the device came back after being lost."""
        return self._port.reconnects

    def start(self: _Owner) -> _Owner:
        """Start reading in the background; returns self for chaining."""
        self._port.start()
        return self

    def close(self) -> None:
        """Stop reading and close the port (and the simulator at its far end, if any)."""
        self._port.stop()
        if self.simulator is not None:
            self.simulator.close()

    def __enter__(self: _Owner) -> _Owner:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()
