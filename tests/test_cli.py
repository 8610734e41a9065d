"""The CLI: every command documented, decode interfaces, error exits."""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

import pytest
from prescreen.cli import build_parser, main


def run(*args: str, stdin: bytes = b"") -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(
        [sys.executable, "-m", "prescreen", *args], input=stdin, capture_output=True, timeout=60, check=False
    )


def commands(parser: argparse.ArgumentParser, prefix: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    found = []
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                found.append((*prefix, name))
                found += commands(sub, (*prefix, name))
    return found


@pytest.mark.parametrize("command", commands(build_parser()))
def test_every_command_has_useful_help(command: tuple[str, ...], capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main([*command, "--help"])
    assert exit_info.value.code == 0
    text = capsys.readouterr().out
    assert len(text) > 80
    assert "Example:" in text  # every page shows one way to use it


def test_version() -> None:
    result = run("version")
    assert result.returncode == 0
    assert result.stdout.startswith(b"prescreen-agent ")


def test_decode_scale_prints_one_object_per_frame() -> None:
    result = run(
        "decode",
        "scale",
        "--protocol",
        "mt-sics",
        stdin=b"S S      1.250 kg\r\nS D      1.100 kg\r\nS +\r\nES\r\nZ A\r\n",
    )
    lines = [json.loads(line) for line in result.stdout.splitlines()]
    assert lines == [
        {"status": "ok", "stable": True, "weight_kg": 1.25},
        {"status": "motion", "stable": False, "weight_kg": 1.1},
        {"status": "overload", "stable": False, "weight_kg": None},
        {"status": "error", "stable": False, "weight_kg": None},
    ]


def test_decode_barcode_prints_one_object_per_line() -> None:
    result = run(
        "decode", "barcode", stdin=b"]C01Z5R89390357567127\nRB123456786US\n]C100106141411234567897\x1d\n"
    )
    first, second, third = (json.loads(line) for line in result.stdout.splitlines())
    assert (first["carrier"], first["tracking_number"], first["check_ok"]) == (
        "ups",
        "1Z5R89390357567127",
        True,
    )
    assert (second["carrier"], second["check_ok"]) == ("upu", False)
    assert third["gs1"] == {"00": "106141411234567897"}
    assert third["symbology"] == "gs1-code128"


def test_bad_config_exits_non_zero_with_one_clear_line(tmp_path: Path) -> None:
    path = tmp_path / "agent.toml"
    path.write_text("[scale]\nbaud = 9600\n")
    result = run("run", "--config", str(path))
    assert result.returncode == 1
    assert result.stderr.decode().strip() == (
        f"prescreen: error: {path}:2: unknown key 'scale.baud' (expected one of: baudrate, "
        "poll_interval_ms, protocol, settle_ms, settle_readings, settle_tolerance_g, url)"
    )


def test_unknown_protocol_is_an_error_not_a_traceback() -> None:
    result = run("decode", "scale", "--protocol", "acme")
    assert result.returncode == 1
    assert b"unknown scale protocol 'acme'" in result.stderr
    assert b"Traceback" not in result.stderr
