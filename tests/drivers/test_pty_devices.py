"""The real drivers on real pty pairs, with simulators speaking the real protocols."""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path

import pytest
from prescreen.drivers import open_scale, open_scanner
from prescreen.drivers.registry import scale_protocol, scale_protocols
from prescreen.drivers.sim import ScaleSimulator, ScannerSimulator


@pytest.mark.parametrize("name", sorted(scale_protocols()))
def test_settled_weight_over_a_pty(name: str) -> None:
    scale = open_scale(f"sim://{name}", poll_s=0.01, settle_s=0.03)
    sim = scale.simulator  # type: ignore[attr-defined]
    try:
        sim.place("1.234", motion=3)
        result = scale.read_weight(5, after=scale.stable_count)
        assert result is not None
        assert abs(result[0].weight_kg - Decimal("1.234")) < Decimal("0.005")
    finally:
        scale.close()
        sim.close()


def test_a_bouncing_parcel_never_yields_a_weight() -> None:
    """Motion all the time: the settle rule must never let a weight through."""
    scale = open_scale("sim://mt-sics", poll_s=0.01, settle_s=0.03)
    sim = scale.simulator  # type: ignore[attr-defined]
    stop = threading.Event()

    def bounce() -> None:
        while not stop.is_set():
            sim.place("2.0", motion=1000)
            time.sleep(0.02)

    thread = threading.Thread(target=bounce)
    thread.start()
    try:
        assert scale.read_weight(0.5, after=scale.stable_count) is None
        assert scale.latest is not None
        assert scale.latest.status == "motion"
    finally:
        stop.set()
        thread.join()
        scale.close()
        sim.close()


def test_overload_is_reported_not_passed_on(wait_until: Callable[..., bool]) -> None:
    scale = open_scale("sim://nci", poll_s=0.01, settle_s=0.03)
    sim = scale.simulator  # type: ignore[attr-defined]
    try:
        sim.fault("overload")
        assert wait_until(lambda: scale.latest is not None and scale.latest.status == "overload")
        assert scale.read_weight(0.3, after=scale.stable_count) is None
    finally:
        scale.close()
        sim.close()


def test_scanner_line_noise_never_becomes_a_scan() -> None:
    scanner = open_scanner("sim://scanner")
    sim = scanner.simulator  # type: ignore[attr-defined]
    try:
        sim.scan("1Z5R89390357567127", aim="]C0")
        sim.inject(b"\x00\xff\xfe\x07\r")
        sim.scan("00106141411234567897", aim="]C1")
        first, second = scanner.read_code(2), scanner.read_code(2)
        assert first is not None
        assert first.raw == "]C01Z5R89390357567127"
        assert second is not None
        assert second.raw == "]C100106141411234567897"
        assert scanner.read_code(0.3) is None
        assert scanner.bad_frames == 1
    finally:
        scanner.close()
        sim.close()


def test_scanner_keeps_gs_inside_gs1_payload() -> None:
    scanner = open_scanner("sim://scanner")
    sim = scanner.simulator  # type: ignore[attr-defined]
    try:
        sim.scan("010950600013435210ABC123\x1d3103001250", aim="]C1")
        scan = scanner.read_code(2)
        assert scan is not None
        assert "\x1d" in scan.raw
    finally:
        scanner.close()
        sim.close()


def test_unplug_and_replug_through_a_by_id_symlink(tmp_path: Path, wait_until: Callable[..., bool]) -> None:
    """Cable pulled (pty closed, by-id link removed), then a new device appears at the link."""
    link = tmp_path / "usb-Mettler_Toledo_scale-if00"
    sim = ScaleSimulator(scale_protocol("mt-sics"))
    os.symlink(sim.port, link)
    scale = open_scale(str(link), "mt-sics", poll_s=0.02, settle_s=0.03)
    try:
        assert wait_until(lambda: scale.up)
        sim.close()
        link.unlink()
        lost_at = time.monotonic()
        assert wait_until(lambda: not scale.up, timeout=1.5)
        assert time.monotonic() - lost_at <= 1.0
        sim = ScaleSimulator(scale_protocol("mt-sics"))
        os.symlink(sim.port, link)
        back_at = time.monotonic()
        sim.place("0.750", motion=1)
        assert wait_until(lambda: scale.up, timeout=3)
        assert time.monotonic() - back_at <= 2.0
        result = scale.read_weight(3)
        assert result is not None
        assert result[0].weight_kg == Decimal("0.750")
        assert scale.reconnects == 1
    finally:
        scale.close()
        sim.close()


def test_unplug_cycles_leak_no_threads_or_descriptors(
    tmp_path: Path, wait_until: Callable[..., bool]
) -> None:
    link = tmp_path / "scanner"
    threads_before = threading.active_count()
    fds_before = len(os.listdir("/proc/self/fd"))
    sim = ScannerSimulator()
    os.symlink(sim.port, link)
    scanner = open_scanner(str(link))
    try:
        for _ in range(20):
            sim.close()
            link.unlink()
            assert wait_until(lambda: not scanner.up, timeout=2)
            sim = ScannerSimulator()
            os.symlink(sim.port, link)
            assert wait_until(lambda: scanner.up, timeout=2)
        sim.scan("RB123456785GB")
        scan = scanner.read_code(2)
        assert scan is not None
        assert scan.raw == "RB123456785GB"
    finally:
        scanner.close()
        sim.close()
    assert wait_until(lambda: threading.active_count() <= threads_before, timeout=3)
    assert len(os.listdir("/proc/self/fd")) <= fds_before + 1
