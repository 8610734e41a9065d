"""Serial noise never becomes scans, an unknown label takes no weight, a full scan queue sheds
its oldest scan with an alarm: through the real line driver on a pty and a whole demo station."""

from __future__ import annotations

import random
from collections.abc import Callable

import pytest
from prescreen.drivers.registry import open_scanner
from prescreen.drivers.scanners.base import MAX_QUEUED_SCANS
from prescreen.sim.demo_station import DemoStation
from prescreen.sim.samples import generate


def test_a_megabyte_of_noise_makes_no_scan(wait_until: Callable[..., bool]) -> None:
    """The probe: 1 MB of random bytes on the scanner's line made 88 phantom scans."""
    scanner = open_scanner("sim://scanner")
    sim = scanner.simulator  # type: ignore[attr-defined]
    noise = random.Random(23).randbytes(2**20)
    try:
        for start in range(0, len(noise), 4096):
            sim.inject(noise[start : start + 4096])
        sim.inject(b"\r")  # the noise's last frame ends (else the next scan is glued to it)
        sim.scan("1Z5R89390357567127", aim="]C0")  # a real scan after the noise still comes through
        scans: list[str] = []
        while not scans or scans[-1] != "]C01Z5R89390357567127":  # the noise takes a while to read
            scan = scanner.read_code(60)
            assert scan is not None, f"the real scan never came; before it: {scans}"
            scans.append(scan.raw)
        assert scans == ["]C01Z5R89390357567127"]  # and nothing before it
        assert scanner.bad_frames > 1000  # the noise was read, and dropped frame by frame
    finally:
        scanner.close()
        sim.close()


def test_a_full_scan_queue_drops_the_oldest_with_an_alarm(
    wait_until: Callable[..., bool], caplog: pytest.LogCaptureFixture
) -> None:
    scanner = open_scanner("sim://scanner")
    sim = scanner.simulator  # type: ignore[attr-defined]
    codes = [f"RB{n:09d}GB" for n in range(MAX_QUEUED_SCANS + 8)]
    try:
        for code in codes:  # nobody reads: the station is stuck
            sim.scan(code)
        assert wait_until(lambda: scanner.dropped_scans == 8, 10)
        queued = []
        while (scan := scanner.read_code(0.5)) is not None:
            queued.append(scan.raw)
        assert queued == codes[8:]  # the newest are kept
        assert "scan queue full: oldest scan dropped" in caplog.text
    finally:
        scanner.close()
        sim.close()


def test_an_unknown_label_takes_no_weight_from_the_next_parcel(
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    orders, steps = generate(6, seed=9)
    station = DemoStation(tmp_path_factory.mktemp("noise"), orders)
    try:
        step = next(s for s in steps if s.kind == "parcel" and s.label == "clean")
        assert step.weight_kg is not None
        station.scanner.scan("NOTALABEL4242")  # a label nobody knows, nothing on the scale yet ...
        station.scale.place(step.weight_kg, motion=2)  # ... and the next parcel is already on the pan
        station.scanner.scan(step.payload, aim=step.aim)
        unknown, parcel = station.events.get(timeout=30), station.events.get(timeout=30)
        station.scale.place("0", motion=1)
        assert unknown.record is not None
        assert unknown.record["parcel"]["measured_weight_kg"] is None
        assert unknown.record["screening"]["verdict"] == "REVIEW"
        assert parcel.record is not None
        assert parcel.record["parcel"]["measured_weight_kg"] == float(step.weight_kg)
    finally:
        station.close()
