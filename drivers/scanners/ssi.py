"""Zebra/Symbol scanners in SSI packet mode: ACKed decode data, and beep/LED commands.

Why packet mode: every scan arrives with a checksum and is acknowledged, so a scan garbled on the
wire is resent instead of lost or misread, and the host can drive the scanner's beeper and LED to
give a HOLD its own signal at the operator's hand. On every (re)connect the driver sets the
scanner to packeted decode data with software ACK (a temporary parameter change, so the
scanner's stored configuration is left alone).

Two duplicates are guarded against: a retransmitted DECODE_DATA whose first copy was already
taken (our ACK was lost) is ACKed again but not queued again, so one scan is one parcel.
"""

from __future__ import annotations

import logging
import threading
import time

from prescreen.core.errors import FrameError
from prescreen.drivers.base import Scan, SerialSettings
from prescreen.drivers.port import PortReader
from prescreen.drivers.scanners import ssi_packets as ssi
from prescreen.drivers.scanners.base import ScannerBase

log = logging.getLogger("prescreen.drivers")

# Beep codes (CLEAR keeps the scanner's own good-read beep). The BEEP opcode is confirmed by two
# open implementations; the meaning of each code (0x04 five short high, 0x01 two short high) is from
# Zebra's table as commonly cited, not from a Zebra document: pass ``beeps`` to change them.
DEFAULT_SIGNALS = {"HOLD": 0x04, "REVIEW": 0x01}


class SsiScanner(ScannerBase):
    """Reads scans from an SSI scanner and drives its beeper and LED."""

    def __init__(self, url: str, *, baudrate: int = 9600, beeps: dict[str, int] | None = None) -> None:
        super().__init__()
        self.beeps = dict(DEFAULT_SIGNALS if beeps is None else beeps)
        self._framer = ssi.SsiFramer()
        self._segments: list[bytes] = []
        self._last_message: bytes | None = None
        self._last_command: bytes | None = None
        self._lock = threading.Lock()
        self._red_led = False
        self.acks_received = 0
        self.naks_received = 0
        self.naks_sent = 0
        self._port = PortReader(
            url,
            SerialSettings(baudrate, 8, "N", 1),
            self._framer,
            self._on_frame,
            name="scanner",
            on_open=self._configure,
        )

    def _configure(self) -> None:
        self._segments.clear()
        self._last_message = None
        params = bytes([ssi.NO_BEEP, ssi.PARAM_DECODE_FORMAT, 1, ssi.PARAM_SW_ACK, 1])
        self._command(ssi.PARAM_SEND, params)

    def _command(self, opcode: int, data: bytes = b"") -> bool:
        packet = ssi.host(opcode, data)
        with self._lock:
            self._last_command = packet
        return self._port.write(packet)

    def signal(self, verdict: str) -> bool:
        """Beep the verdict's code (HOLD: red LED too, until the next scan). False if not sent."""
        code = self.beeps.get(verdict)
        if code is None:
            return False
        sent = self._command(ssi.BEEP, bytes([code]))
        if verdict == "HOLD" and sent:
            time.sleep(0.005)  # one command in flight at a time: let the scanner take the beep
            self._red_led = self._command(ssi.LED_ON, bytes([ssi.LED_RED]))
        return sent

    def _on_frame(self, frame: bytes, at: float) -> None:
        if self._framer.rejected > self.naks_sent:
            # A packet failed its checksum: ask the scanner to send it again.
            self.naks_sent = self._framer.rejected
            self._port.write(ssi.host(ssi.CMD_NAK, bytes([ssi.NAK_RESEND])))
        try:
            packet = ssi.decode(frame)
        except FrameError as exc:  # pragma: no cover - the framer passes only valid packets
            self.bad_frames += 1
            log.warning("ssi packet dropped", extra={"reason": str(exc)})
            return
        if packet.source != ssi.SOURCE_DECODER:
            return  # our own command echoed by a loopback: not the scanner's
        if packet.opcode == ssi.CMD_ACK:
            self.acks_received += 1
        elif packet.opcode == ssi.CMD_NAK:
            self._on_nak(packet)
        elif packet.opcode == ssi.DECODE_DATA:
            self._port.write(ssi.host(ssi.CMD_ACK))
            self._on_decode(packet, at)
        else:
            self._port.write(ssi.host(ssi.CMD_ACK))  # events, replies: acknowledged, not used

    def _on_nak(self, packet: ssi.Packet) -> None:
        self.naks_received += 1
        with self._lock:
            last = self._last_command
        if packet.data[:1] == bytes([ssi.NAK_RESEND]) and last is not None:
            again = ssi.decode(last)
            self._port.write(
                ssi.Packet(again.opcode, again.source, ssi.STATUS_RETRANSMIT, again.data).encode()
            )
            log.info("ssi command resent", extra={"opcode": hex(last[1])})

    def _on_decode(self, packet: ssi.Packet, at: float) -> None:
        identity = bytes([packet.opcode, packet.status & ~ssi.STATUS_RETRANSMIT]) + packet.data
        if packet.retransmit and identity == self._last_message:
            return  # our ACK was lost and the scanner resent a segment we already have
        self._last_message = identity
        self._segments.append(packet.data)
        if packet.continued:
            return
        segments, self._segments = self._segments, []
        barcode_type = segments[0][0] if segments[0] else None
        payload = segments[0][1:] + b"".join(s[1:] for s in segments[1:])
        text = self._take(payload)
        if text is None:
            return
        if self._red_led:
            self._red_led = not self._command(ssi.LED_OFF, b"\xff")
        prefix = (
            "" if barcode_type is None or text.startswith("]") else ssi.AIM_FOR_TYPE.get(barcode_type, "")
        )
        self._enqueue(Scan(prefix + text, at))
