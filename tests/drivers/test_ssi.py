"""Zebra SSI packet mode: the real driver against a simulator that keeps SSI's ACK discipline."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st
from prescreen.drivers.registry import open_scanner, scale_protocol
from prescreen.drivers.scanners import ssi_packets as ssi
from prescreen.drivers.scanners.ssi import SsiScanner
from prescreen.drivers.sim import ScaleSimulator, SsiScannerSimulator
from prescreen.ops import config as cfg
from prescreen.packing.app import Agent
from prescreen.sim.samples import generate

VECTORS = [
    b"\x04\xd0\x04\x00\xff\x28",  # host CMD_ACK
    b"\x04\xd0\x00\x00\xff\x2c",  # scanner CMD_ACK
    b"\x04\xd2\x04\x00\xff\x26",  # FLUSH_QUEUE
    b"\x04\xe9\x04\x00\xff\x0f",  # SCAN_ENABLE
    b"\x05\xf6\x00\x00\x01\xff\x04",  # EVENT decode
    b"\x07\xf3\x00\x00\x03US\xfe\x5b",  # DECODE_DATA Code 128 "US"
    b"\x10\xc6\x04\x00\x01\xee\x01\x9f\x01\xec\x00\x8a\x07\xf0\x00\x01\xfb\x28",  # PARAM_SEND
    b"\x05\xe6\x04\x00\x01\xff\x10",  # BEEP code 1
    b"\x05\xd1\x04\x00\x01\xff\x25",  # CMD_NAK RESEND
]


@pytest.mark.parametrize("wire", VECTORS)
def test_documented_packets_decode_and_encode_back(wire: bytes) -> None:
    assert ssi.SsiFramer().feed(wire) == [wire]
    assert ssi.decode(wire).encode() == wire


def test_decode_data_vector_reads_type_and_payload() -> None:
    packet = ssi.decode(b"\x07\xf3\x00\x00\x03US\xfe\x5b")
    assert (packet.opcode, packet.source, packet.data) == (ssi.DECODE_DATA, ssi.SOURCE_DECODER, b"\x03US")


def test_a_corrupt_checksum_is_refused() -> None:
    with pytest.raises(Exception, match="checksum"):
        ssi.decode(b"\x07\xf3\x00\x00\x03UT\xfe\x5b")


@given(data=st.binary(max_size=300))
def test_arbitrary_bytes_yield_only_packets_with_a_good_checksum(data: bytes) -> None:
    for frame in ssi.SsiFramer().feed(data):
        assert ssi.decode(frame).encode() == frame


@given(noise=st.binary(max_size=40))
def test_noise_before_a_packet_never_hides_it(noise: bytes) -> None:
    wire = b"\x07\xf3\x00\x00\x03US\xfe\x5b"
    assert ssi.SsiFramer().feed(noise + wire)[-1:] == [wire]


@pytest.fixture
def ssi_scanner() -> Iterator[tuple[SsiScanner, SsiScannerSimulator]]:
    scanner = open_scanner("sim://ssi")
    sim = scanner.simulator  # type: ignore[attr-defined]
    assert isinstance(scanner, SsiScanner)
    try:
        yield scanner, sim
    finally:
        scanner.close()
        sim.close()


def test_scan_arrives_acked_with_its_aim_identifier(
    ssi_scanner: tuple[SsiScanner, SsiScannerSimulator], wait_until: Callable[..., bool]
) -> None:
    scanner, sim = ssi_scanner
    assert wait_until(lambda: any(op == ssi.PARAM_SEND for op, _ in sim.commands))
    _, params = next(c for c in sim.commands if c[0] == ssi.PARAM_SEND)
    assert params == bytes([ssi.NO_BEEP, ssi.PARAM_DECODE_FORMAT, 1, ssi.PARAM_SW_ACK, 1])
    sim.scan("1Z5R89390357567127")
    scan = scanner.read_code(2)
    assert scan is not None
    assert scan.raw == "]C01Z5R89390357567127"
    assert wait_until(lambda: sim._in_flight is None)  # the host ACKed it


@pytest.mark.slow
def test_a_garbled_packet_is_nakked_resent_and_read_once(
    ssi_scanner: tuple[SsiScanner, SsiScannerSimulator],
) -> None:
    scanner, sim = ssi_scanner
    sim.corrupt_next = True
    sim.scan("RB123456785GB")
    scan = scanner.read_code(2)
    assert scan is not None
    assert scan.raw == "]C0RB123456785GB"
    assert scanner.naks_sent == 1
    assert sim.retransmits >= 1  # more if a loaded machine let an ACK run past the timeout
    assert scanner.read_code(0.5) is None


def test_a_lost_ack_never_makes_a_second_scan(ssi_scanner: tuple[SsiScanner, SsiScannerSimulator]) -> None:
    scanner, sim = ssi_scanner
    sim.ignore_acks = 1
    sim.scan("9400111899223100001234")
    assert scanner.read_code(2) is not None
    assert scanner.read_code(0.6) is None  # the retransmit was ACKed but not queued again
    assert sim.retransmits >= 1
    sim.scan("9400111899223100001234")  # the operator scans the same label again: a new scan
    assert scanner.read_code(2) is not None


def test_multipacket_decode_data_is_joined(ssi_scanner: tuple[SsiScanner, SsiScannerSimulator]) -> None:
    scanner, sim = ssi_scanner
    sim.segment = 8
    payload = "010950600013435210ABC123\x1d3103001250"
    sim.scan(payload, barcode_type=0x0F)  # a type without a confirmed AIM mapping: no prefix
    scan = scanner.read_code(3)
    assert scan is not None
    assert scan.raw == payload


def test_hold_beeps_and_lights_red_until_the_next_scan(
    ssi_scanner: tuple[SsiScanner, SsiScannerSimulator], wait_until: Callable[..., bool]
) -> None:
    scanner, sim = ssi_scanner
    assert scanner.signal("HOLD")
    assert wait_until(lambda: (ssi.LED_ON, bytes([ssi.LED_RED])) in sim.commands)
    assert (ssi.BEEP, bytes([scanner.beeps["HOLD"]])) in sim.commands
    assert not scanner.signal("CLEAR")  # CLEAR keeps the scanner's own good-read beep
    sim.scan("1Z5R89390357567127")
    assert scanner.read_code(2) is not None
    assert wait_until(lambda: any(op == ssi.LED_OFF for op, _ in sim.commands))
    assert wait_until(lambda: scanner.acks_received >= 4)  # PARAM_SEND, BEEP, LED_ON, LED_OFF


def test_line_scanner_cannot_signal() -> None:
    scanner = open_scanner("sim://scanner")
    try:
        assert not scanner.signal("HOLD")
    finally:
        scanner.close()
        scanner.simulator.close()  # type: ignore[attr-defined]


@pytest.mark.slow
def test_agent_sounds_a_hold_on_the_ssi_scanner(tmp_path: Path, wait_until: Callable[..., bool]) -> None:
    """The whole agent: a HOLD verdict makes the scanner at the operator's hand beep and go red."""
    orders, steps = generate(40, seed=7)
    (tmp_path / "orders.ndjson").write_text("".join(json.dumps(o) + "\n" for o in orders))
    scale = ScaleSimulator(scale_protocol("mt-sics"))
    config = cfg.Config()
    config = cfg.replace(config, "scale", url=scale.port, poll_interval_ms=10, settle_ms=20)
    config = cfg.replace(config, "scanner", url="sim://ssi", protocol="ssi")
    config = cfg.replace(config, "orders", path=str(tmp_path / "orders.ndjson"))
    config = cfg.replace(config, "outbox", path=str(tmp_path / "outbox.db"))
    config = cfg.replace(config, "http", enabled=False)
    config = cfg.replace(config, "sync", port=1)  # no broker needed: records wait in the outbox
    agent = Agent(config).start()
    sim = agent.scanner.simulator
    assert isinstance(sim, SsiScannerSimulator)
    verdicts = []
    agent.station.listeners.append(
        lambda e: verdicts.append(e.record["screening"]["verdict"] if e.record else None)
    )
    try:
        for step in (s for s in steps if s.kind == "parcel"):
            before = len(verdicts)
            scale.place(step.weight_kg or "0.5", motion=1)
            sim.scan(step.payload)
            assert wait_until(lambda: len(verdicts) > before, timeout=15)  # noqa: B023
            scale.place("0", motion=1)
            if verdicts[-1] == "HOLD":
                break
        assert verdicts[-1] == "HOLD"
        assert wait_until(lambda: (ssi.LED_ON, bytes([ssi.LED_RED])) in sim.commands)
        assert (ssi.BEEP, bytes([agent.scanner.beeps["HOLD"]])) in sim.commands  # type: ignore[attr-defined]
        beeps = [data for op, data in sim.commands if op == ssi.BEEP]
        assert len(beeps) == verdicts.count("HOLD") + verdicts.count("REVIEW")  # CLEAR: no extra beep
    finally:
        agent.stop()
        scale.close()
        sim.close()
