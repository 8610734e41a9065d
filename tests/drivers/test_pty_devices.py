"""The real drivers on real pty pairs, with simulators speaking the real protocols."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path

import pytest
from prescreen.drivers.base import WeightReading
from prescreen.drivers.detect import best, detect
from prescreen.drivers.registry import open_scale, open_scanner, scale_protocol, scale_protocols
from prescreen.drivers.sim import ScaleSimulator, ScannerSimulator, SsiScannerSimulator


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


@pytest.mark.slow
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
        for _ in range(100):
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


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(scale_protocols()))
def test_detect_names_the_scale_on_the_port(name: str) -> None:
    sim = ScaleSimulator(scale_protocol(name))
    try:
        sim.place("1.000", motion=0)
        attempts = detect(sim.port, baudrates=(9600,), listen_s=0.25)
    finally:
        sim.close()
    found = best(attempts)
    assert found is not None
    assert found.protocol == name
    assert [a.protocol for a in attempts if a.answered] == [name]  # no other parser was fooled


@pytest.mark.slow
def test_detect_finds_an_ssi_scanner_and_reports_a_silent_port() -> None:
    sim = SsiScannerSimulator()
    try:
        found = best(detect(sim.port, baudrates=(9600,), listen_s=0.25))
        assert found is not None
        assert found.protocol == "ssi-scanner"
    finally:
        sim.close()
    silent = ScannerSimulator()  # a line scanner nobody triggers says nothing
    try:
        assert best(detect(silent.port, baudrates=(9600, 19200), listen_s=0.15)) is None
    finally:
        silent.close()


@pytest.mark.slow
def test_detect_cli_prints_what_answered(tmp_path: Path) -> None:
    sim = ScaleSimulator(scale_protocol("nci"))
    try:
        sim.place("2.000", motion=0)
        result = subprocess.run(
            [sys.executable, "-m", "prescreen", "detect", sim.port, "--baud", "9600", "--json"],
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
        )
    finally:
        sim.close()
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["found"]["protocol"] == "nci"
    assert report["found"]["sample"]["stable"] is True


@pytest.mark.parametrize("suffix", ["cr", "lf", "crlf", "tab"])
def test_scanner_suffix_is_configurable(suffix: str) -> None:
    scanner = open_scanner("sim://scanner", suffix=suffix)
    sim = scanner.simulator  # type: ignore[attr-defined]
    try:
        sim.scan("1Z5R89390357567127", aim="]C0")
        sim.scan("RB123456785GB")
        assert [getattr(scanner.read_code(2), "raw", None) for _ in range(2)] == [
            "]C01Z5R89390357567127",
            "RB123456785GB",
        ]
    finally:
        scanner.close()
        sim.close()


class _DeviceServer:
    """A serial device server (Moxa NPort style) on TCP: a streaming scale behind ``socket://``."""

    def __init__(self, frame: bytes, port: int = 0) -> None:
        self._frame = frame
        self._stop = threading.Event()
        self._server = socket.create_server(("127.0.0.1", port), reuse_port=True)
        self.port = self._server.getsockname()[1]
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        self._server.settimeout(0.1)
        while not self._stop.is_set():
            try:
                client, _ = self._server.accept()
            except TimeoutError:
                continue
            with client:
                while not self._stop.is_set():
                    try:
                        client.sendall(self._frame)
                    except OSError:
                        break
                    time.sleep(0.02)

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=2)
        self._server.close()


@pytest.mark.slow
def test_socket_url_device_server_unplug_and_back(wait_until: Callable[..., bool]) -> None:
    proto = scale_protocol("toledo-continuous")
    server = _DeviceServer(proto.encode(WeightReading("ok", True, Decimal("3.250")), "kg"))
    scale = open_scale(f"socket://127.0.0.1:{server.port}", "toledo-continuous", settle_s=0.05)
    try:
        result = scale.read_weight(3)
        assert result is not None
        assert result[0].weight_kg == Decimal("3.250")
        server.close()  # the device server loses power
        lost_at = time.monotonic()
        assert wait_until(lambda: not scale.up, timeout=1.5)
        assert time.monotonic() - lost_at <= 1.0
        server = _DeviceServer(proto.encode(WeightReading("ok", True, Decimal("0.500")), "kg"), server.port)
        back_at = time.monotonic()
        assert wait_until(lambda: scale.up, timeout=3)
        assert time.monotonic() - back_at <= 2.0
        result = scale.read_weight(3, after=result[1])
        assert result is not None
        assert result[0].weight_kg == Decimal("0.500")
        assert scale.reconnects == 1
    finally:
        scale.close()
        server.close()


@pytest.mark.slow
def test_detect_on_a_missing_port_says_so(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "prescreen", "detect", str(tmp_path / "ttyUSB9")],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert result.returncode == 1
    assert result.stderr.startswith("prescreen: error: ")
    assert "ttyUSB9" in result.stderr
    assert "No such file or directory" in result.stderr
    assert "Traceback" not in result.stderr
