"""The CLI: every command documented, decode interfaces, error exits."""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

import pytest
from prescreen.commands.main import build_parser, main


def run(*args: str, stdin: bytes = b"") -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(
        [sys.executable, "-m", "prescreen", *args], input=stdin, capture_output=True, timeout=60, check=False
    )


def commands(parser: argparse.ArgumentParser, prefix: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    """Every command path, each parser once (an alias such as ``update-key`` is its command's)."""
    found = []
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            seen: set[int] = set()
            for name, sub in action.choices.items():
                if id(sub) not in seen:
                    seen.add(id(sub))
                    found.append((*prefix, name))
                    found += commands(sub, (*prefix, name))
    return found


PARSER = build_parser()  # built once: the parametrized tests below only read it


def parser_of(command: tuple[str, ...]) -> argparse.ArgumentParser:
    parser = PARSER
    for name in command:
        (action,) = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
        parser = action.choices[name]
    return parser


COMMANDS = commands(PARSER)


def test_the_walk_finds_every_command() -> None:
    """The tree the other tests walk is the whole CLI (a walk that found nothing would pass them)."""
    assert len(COMMANDS) >= 50
    assert {("run",), ("records", "gaps"), ("downlink", "public-key"), ("bench", "sync")} <= set(COMMANDS)


@pytest.mark.parametrize("command", [(), *COMMANDS], ids=lambda c: " ".join(c) or "prescreen")
def test_every_command_has_a_description_of_its_own(command: tuple[str, ...]) -> None:
    """A sentence saying what the command does, not just its usage or an example."""
    description = parser_of(command).description or ""
    assert len(description) >= 25, f"prescreen {' '.join(command)}: no description"
    assert not description.startswith("Example"), (
        f"prescreen {' '.join(command)}: the example is the description"
    )
    assert description[0].isupper(), description


@pytest.mark.parametrize("command", [(), *COMMANDS], ids=lambda c: " ".join(c) or "prescreen")
def test_every_command_has_an_example_of_itself(command: tuple[str, ...]) -> None:
    """The epilog shows one way to run this very command (a subcommand's parent may show a child)."""
    epilog = parser_of(command).epilog or ""
    assert epilog.startswith("Example: "), f"prescreen {' '.join(command)}: no example"
    assert f"prescreen {' '.join(command)}".strip() in epilog, epilog


@pytest.mark.parametrize("command", [(), *COMMANDS], ids=lambda c: " ".join(c) or "prescreen")
def test_every_command_has_a_one_line_help_and_every_argument_a_help(command: tuple[str, ...]) -> None:
    parser = parser_of(command)
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            missing = [c.dest for c in action._choices_actions if not c.help]
            assert not missing, f"prescreen {' '.join(command)}: no help line for {missing}"
        elif not isinstance(action, argparse._HelpAction):
            assert action.help, (
                f"prescreen {' '.join(command)}: {action.option_strings or action.dest} has no help"
            )


@pytest.mark.parametrize("command", COMMANDS, ids=" ".join)
def test_help_shows_the_description_and_the_example(
    command: tuple[str, ...], capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main([*command, "--help"])
    assert exit_info.value.code == 0
    text = capsys.readouterr().out
    parser = parser_of(command)
    assert " ".join((parser.description or "-").split()) in " ".join(text.split())  # re-wrapped
    assert f"\n{parser.epilog}\n" in text  # as written, on one line: it can be pasted


@pytest.mark.slow
def test_version() -> None:
    result = run("version")
    assert result.returncode == 0
    assert result.stdout.startswith(b"prescreen-agent ")


@pytest.mark.slow
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


@pytest.mark.slow
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


@pytest.mark.slow
def test_bad_config_exits_non_zero_with_one_clear_line(tmp_path: Path) -> None:
    path = tmp_path / "agent.toml"
    path.write_text("[scale]\nbaud = 9600\n")
    result = run("run", "--config", str(path))
    assert result.returncode == 1
    assert result.stderr.decode().strip() == (
        f"prescreen: error: {path}:2: unknown key 'scale.baud' (expected one of: baudrate, "
        "poll_interval_ms, protocol, settle_ms, settle_readings, settle_tolerance_g, url)"
    )


@pytest.mark.slow
def test_unknown_protocol_is_an_error_not_a_traceback() -> None:
    result = run("decode", "scale", "--protocol", "acme")
    assert result.returncode == 1
    assert b"unknown scale protocol 'acme'" in result.stderr
    assert b"Traceback" not in result.stderr
