"""Zebra/Symbol SSI (Simple Serial Interface) packets: framing, checksum, encode and decode.

A packet is ``[len][opcode][source][status][data...][cksum_hi][cksum_lo]``: ``len`` counts every
byte but the checksum, which is the 16-bit two's complement of the sum of the others, big-endian.
Sources: Zebra SSI programmer's guide as implemented in alvinnguyen-chipmunk/zebra-scanner-library
(ssi.h, CalculateChecksum) and enioka_scan (SsiCommand, LedOn colour mask); vectors in protocols.md.
"""

from __future__ import annotations

import dataclasses

from prescreen.core.errors import FrameError

CMD_ACK = 0xD0
CMD_NAK = 0xD1
DECODE_DATA = 0xF3
EVENT = 0xF6
PARAM_SEND = 0xC6
BEEP = 0xE6
LED_ON = 0xE7
LED_OFF = 0xE8
SCAN_ENABLE = 0xE9
REQUEST_REVISION = 0xA3
REPLY_REVISION = 0xA4

SOURCE_DECODER = 0x00
SOURCE_HOST = 0x04
STATUS_RETRANSMIT = 0x01
STATUS_CONTINUATION = 0x02
NAK_RESEND = 0x01
LED_GREEN, LED_RED = 0x01, 0x02
PARAM_DECODE_FORMAT, PARAM_SW_ACK = 0xEE, 0x9F  # 1 = packeted decode data; 1 = ACK required
NO_BEEP = 0xFF

# DECODE_DATA barcode type → AIM identifier, only where the type code is confirmed by a source
# (enioka SsiSymbologyTranslator, and the captured Code 128 scan); others go without a prefix and
# the barcode decoder judges them by content.
AIM_FOR_TYPE = {0x01: "]A0", 0x03: "]C0", 0x06: "]I0", 0x0B: "]E0"}
_MIN_LEN = 4


def checksum(body: bytes) -> bytes:
    """The two checksum bytes for ``body`` (length byte through data)."""
    return ((-sum(body)) & 0xFFFF).to_bytes(2, "big")


@dataclasses.dataclass(frozen=True)
class Packet:
    """One SSI message; ``retransmit`` and ``continued`` are the status bits that matter here."""

    opcode: int
    source: int
    status: int = 0
    data: bytes = b""

    @property
    def retransmit(self) -> bool:
        """The sender resent this packet because no ACK came."""
        return bool(self.status & STATUS_RETRANSMIT)

    @property
    def continued(self) -> bool:
        """More packets of the same message follow (multipacket decode data)."""
        return bool(self.status & STATUS_CONTINUATION)

    def encode(self) -> bytes:
        """The bytes on the wire, checksum included."""
        body = bytes([_MIN_LEN + len(self.data), self.opcode, self.source, self.status]) + self.data
        return body + checksum(body)


def decode(frame: bytes) -> Packet:
    """Decode one whole packet.

    Raises:
        FrameError: wrong length or checksum.
    """
    if len(frame) < _MIN_LEN + 2 or frame[0] != len(frame) - 2:
        raise FrameError(f"SSI packet length mismatch: {frame.hex()}", raw=frame)
    if checksum(frame[:-2]) != frame[-2:]:
        raise FrameError(f"SSI checksum mismatch: {frame.hex()}", raw=frame)
    return Packet(frame[1], frame[2], frame[3], frame[4:-2])


def host(opcode: int, data: bytes = b"") -> bytes:
    """A host → scanner packet on the wire."""
    return Packet(opcode, SOURCE_HOST, 0, data).encode()


class SsiFramer:
    """Length-prefixed framing that resynchronises on the checksum.

    A candidate that fails its checksum is not a packet: one byte is skipped and the search goes on,
    so a noise byte read as a length never swallows the real packets after it. ``rejected`` counts
    such failures so the driver can ask the scanner to resend (NAK).
    """

    def __init__(self) -> None:
        self._buffer = bytearray()
        self.dropped = 0
        self.rejected = 0

    def feed(self, data: bytes) -> list[bytes]:
        """Add ``data`` and return every valid packet it completes, oldest first."""
        self._buffer += data
        packets: list[bytes] = []
        while self._buffer:
            length = self._buffer[0]
            if length < _MIN_LEN:
                self.dropped += 1
                del self._buffer[:1]
                continue
            if len(self._buffer) < length + 2:
                later = self._later_packet()
                if later is None:
                    break
                self.dropped += later
                del self._buffer[:later]
                continue
            candidate = bytes(self._buffer[: length + 2])
            if checksum(candidate[:-2]) != candidate[-2:]:
                self.rejected += 1
                self.dropped += 1
                del self._buffer[:1]
                continue
            packets.append(candidate)
            del self._buffer[: length + 2]
        return packets

    def _later_packet(self) -> int | None:
        """Offset of a whole valid packet behind an incomplete head (a noise byte read as a long
        length would otherwise hold back the real packets until enough bytes arrive)."""
        buffer = self._buffer
        for offset in range(1, len(buffer) - _MIN_LEN - 1):
            length = buffer[offset]
            end = offset + length + 2
            if (
                length >= _MIN_LEN
                and end <= len(buffer)
                and checksum(bytes(buffer[offset : end - 2])) == bytes(buffer[end - 2 : end])
            ):
                return offset
        return None

    def reset(self) -> None:
        """Forget a partial packet."""
        self._buffer.clear()
