"""Byte framing kept apart from I/O, so parsers are tested on raw bytes with no port.

Modelled on pyserial's ``threaded.Packetizer``/``FramedPacket``: feed arbitrary chunks, get whole
frames. Frames longer than ``max_len`` are dropped (line noise must not grow memory).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Protocol


class FrameSplitter(Protocol):
    """What a port reader needs from any framer: bytes in, whole frames out."""

    dropped: int

    def feed(self, data: bytes) -> list[bytes]:
        """Add ``data`` and return every frame it completes, oldest first."""

    def reset(self) -> None:
        """Forget a partial frame."""


class Framer:
    """Split a byte stream into frames ending at any of ``terminators``.

    A frame is returned without its terminator. ``start`` (e.g. STX) makes the framer skip bytes
    until that start byte and keep it in the frame, so garbage before a frame is discarded.
    """

    def __init__(
        self, terminators: tuple[bytes, ...], *, start: bytes | None = None, max_len: int = 256
    ) -> None:
        ordered = sorted(terminators, key=len, reverse=True)  # CRLF before CR
        self._split = re.compile(b"|".join(re.escape(t) for t in ordered))
        self._start = start
        self._max_len = max_len
        self._buffer = bytearray()
        self.dropped = 0  # bytes discarded as noise or overlong frames

    def feed(self, data: bytes) -> list[bytes]:
        """Add ``data`` and return every frame it completes, oldest first."""
        self._buffer += data
        frames: list[bytes] = []
        while True:
            if self._start is not None:
                begin = self._buffer.find(self._start)
                if begin < 0:
                    self.dropped += len(self._buffer)
                    self._buffer.clear()
                    break
                if begin:
                    self.dropped += begin
                    del self._buffer[:begin]
            match = self._split.search(self._buffer)
            if match is None:
                if len(self._buffer) > self._max_len:
                    self.dropped += len(self._buffer)
                    self._buffer.clear()
                break
            frame = bytes(self._buffer[: match.start()])
            del self._buffer[: match.end()]
            if len(frame) > self._max_len:
                self.dropped += len(frame)
                continue
            frames.append(frame)
        return frames

    def reset(self) -> None:
        """Forget a partial frame (after a reconnect the rest of it will never come)."""
        self._buffer.clear()


class FixedFramer:
    """Frames of exactly ``length`` bytes that begin with ``start`` and hold ``end`` at ``end_at``.

    For streams whose frame carries a byte *after* its terminator (Toledo continuous sends its
    checksum after CR), so a terminator-based framer would cut the checksum off. A candidate whose
    ``end`` byte is not where it should be, or that fails ``check`` (a checksum), is noise: skip its
    start byte and resynchronise, so noise that looks like a frame start never swallows a real frame.
    """

    def __init__(
        self,
        length: int,
        *,
        start: bytes,
        end: bytes,
        end_at: int,
        check: Callable[[bytes], bool] | None = None,
    ) -> None:
        self._length = length
        self._check = check
        self._start = start
        self._end = end
        self._end_at = end_at
        self._buffer = bytearray()
        self.dropped = 0

    def feed(self, data: bytes) -> list[bytes]:
        """Add ``data`` and return every frame it completes, oldest first."""
        self._buffer += data
        frames: list[bytes] = []
        while True:
            begin = self._buffer.find(self._start)
            if begin < 0:
                self.dropped += len(self._buffer)
                self._buffer.clear()
                return frames
            if begin:
                self.dropped += begin
                del self._buffer[:begin]
            if len(self._buffer) < self._length:
                return frames
            end = self._end_at
            candidate = bytes(self._buffer[: self._length])
            if candidate[end : end + len(self._end)] != self._end or (
                self._check is not None and not self._check(candidate)
            ):
                self.dropped += 1
                del self._buffer[:1]
                continue
            frames.append(candidate)
            del self._buffer[: self._length]

    def reset(self) -> None:
        """Forget a partial frame (after a reconnect the rest of it will never come)."""
        self._buffer.clear()
