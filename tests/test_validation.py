"""One validation: every config ``prescreen run`` refuses, ``prescreen doctor`` (and ``prescreen
config check``) refuse too, with the same one-line message naming file, line, key and expectation.

``run`` is the real command in its own process (a refusal is one line on stderr, exit 1, no
traceback); ``doctor`` and ``config check`` are the same CLI entry point called in this process.
"""

from __future__ import annotations

import json
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from prescreen.commands.main import main
from prescreen.sync.broker import LocalBroker, free_port

BASE = {
    "station": {"device_id": "station-03", "filer_code": "TST"},
    "scanner": {"url": "sim://scanner"},
    "scale": {"url": "sim://mt-sics", "protocol": "mt-sics"},
    "http": {"port": 0},
}


def toml(sections: dict[str, dict[str, object]]) -> str:
    lines = []
    for name, values in sections.items():
        lines.append(f"[{name}]")
        lines += [f"{key} = {json.dumps(value)}" for key, value in values.items()]
    return "\n".join(lines) + "\n"


def changed(section: str, **values: object) -> Callable[[dict[str, dict[str, object]]], None]:
    def change(config: dict[str, dict[str, object]]) -> None:
        config.setdefault(section, {}).update(values)

    return change


def removed(section: str, key: str) -> Callable[[dict[str, dict[str, object]]], None]:
    return lambda config: config[section].pop(key)  # type: ignore[func-returns-value]


# (id, change to the good config, what the one-line message must say)
BAD = [
    (
        "negative settle readings",
        changed("scale", settle_readings=-3),
        r":\d+: 'scale.settle_readings' must be at least 1",
    ),
    (
        "unknown scale protocol",
        changed("scale", url="/dev/ttyUSB0", protocol="acme"),
        r"'scale.protocol' must be one of mt-sics, nci",
    ),
    (
        "sim speaks another protocol",
        changed("scale", url="sim://nci"),
        r"url 'sim://nci' simulates nci, but protocol is 'mt-sics'",
    ),
    (
        "unknown scanner simulator",
        changed("scanner", url="sim://laser"),
        r"no such simulator \(known: sim://scanner, sim://ssi\)",
    ),
    (
        "unknown scanner protocol",
        changed("scanner", url="/dev/ttyACM0", protocol="hid"),
        r"'scanner.protocol' must be one of line, ssi",
    ),
    ("unknown suffix", changed("scanner", suffix="semicolon"), r"'scanner.suffix' must be one of any, cr"),
    (
        "zero weight timeout",
        changed("station", weight_timeout_s=0),
        r"'station.weight_timeout_s' must be above 0",
    ),
    (
        "device id with a slash",
        changed("station", device_id="a/b"),
        r"'station.device_id' must be a string matching",
    ),
    ("no filer code", removed("station", "filer_code"), r"'station.filer_code' is required to run a station"),
    (
        "wms without {tracking}",
        changed("orders", source="wms", url="http://127.0.0.1:1/orders"),
        r"needs url with \{tracking\}",
    ),
    (
        "key without certificate",
        changed("sync", keyfile="/etc/station.key"),
        r"keyfile is set but certfile is not",
    ),
    (
        "broker port out of range",
        changed("sync", port=70000),
        r"'sync.port' must be at least 1 and at most 65535",
    ),
    ("loud logging", changed("logging", level="loud"), r"'logging.level' must be one of debug, info"),
    ("zero log interval", changed("health", log_every_s=0), r"'health.log_every_s' must be above 0"),
    (
        "review above hold",
        changed("screening", review_score=0.9, hold_score=0.5),
        r"review_score \(0.9\) must not be above",
    ),
    ("wrong type", changed("sync", port="1883"), r"'sync.port' must be an integer, got str"),
    ("unknown key", changed("scale", baud=9600), r":\d+: unknown key 'scale.baud'"),
    ("unknown section", changed("scales", url="x"), r":\d+: unknown section \[scales\]"),
]


@pytest.fixture
def good(tmp_path: Path, broker: LocalBroker) -> dict[str, dict[str, object]]:
    orders = tmp_path / "orders.ndjson"
    orders.write_text("")
    return {
        **json.loads(json.dumps(BASE)),
        "orders": {"path": str(orders)},
        "outbox": {"path": str(tmp_path / "outbox.db")},
        "sync": {"host": broker.host, "port": broker.port, "allow_insecure": True},
    }


def run_refusal(path: Path) -> subprocess.CompletedProcess[str]:
    """``prescreen run`` on ``path`` in its own process (a refused config ends it at once)."""
    return subprocess.run(
        [sys.executable, "-m", "prescreen", "run", "--config", str(path)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def refusals(path: Path, capsys: pytest.CaptureFixture[str]) -> tuple[str, str, str]:
    """The one-line message of ``run``, ``doctor`` and ``config check`` on ``path``."""
    run = run_refusal(path)
    assert run.returncode == 1, run.stderr
    assert "Traceback" not in run.stderr
    (run_line,) = run.stderr.strip().splitlines()
    assert run_line.startswith("prescreen: error: ")

    assert main(["doctor", "--config", str(path)]) == 1
    doctor_lines = capsys.readouterr().out.splitlines()
    assert doctor_lines[0].startswith("FAIL  config     "), doctor_lines
    assert main(["config", "check", str(path)]) == 1
    check_line = capsys.readouterr().out.strip()
    return (
        run_line.removeprefix("prescreen: error: "),
        doctor_lines[0].removeprefix("FAIL  config     "),
        check_line.removeprefix("FAIL "),
    )


@pytest.mark.slow
@pytest.mark.parametrize(("change", "expected"), [row[1:] for row in BAD], ids=[row[0] for row in BAD])
def test_every_config_run_refuses_doctor_and_check_refuse_the_same_way(
    tmp_path: Path,
    good: dict[str, dict[str, object]],
    capsys: pytest.CaptureFixture[str],
    change: Callable[[dict[str, dict[str, object]]], None],
    expected: str,
) -> None:
    change(good)
    path = tmp_path / "agent.toml"
    path.write_text(toml(good))
    run, doctor, check = refusals(path, capsys)
    assert run == doctor == check
    assert run.startswith(str(path))
    assert __import__("re").search(expected, run), run


@pytest.mark.slow
def test_a_bad_sim_script_is_refused_by_both_with_its_line(
    tmp_path: Path, good: dict[str, dict[str, object]], capsys: pytest.CaptureFixture[str]
) -> None:
    script = tmp_path / "bench.txt"
    script.write_text("0.5 weight 1.2\n1 jump\n")
    good["scale"]["url"] = f"sim://mt-sics?script={script}"
    path = tmp_path / "agent.toml"
    path.write_text(toml(good))
    run, doctor, check = refusals(path, capsys)
    assert run == doctor == check
    assert f"{script}:2: '1 jump'" in run


@pytest.fixture
def held_port() -> Iterator[int]:
    """A port another program listens on (as a second agent on the same host would)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        yield sock.getsockname()[1]


@pytest.mark.slow
def test_an_http_port_in_use_is_refused_by_run_and_failed_by_doctor(
    tmp_path: Path, good: dict[str, dict[str, object]], capsys: pytest.CaptureFixture[str], held_port: int
) -> None:
    good["http"]["port"] = held_port
    path = tmp_path / "agent.toml"
    path.write_text(toml(good))
    run = run_refusal(path)
    assert run.returncode == 1
    assert "Traceback" not in run.stderr
    message = f"[http] cannot listen on 127.0.0.1:{held_port}: Address already in use"
    assert message in run.stderr
    assert main(["doctor", "--config", str(path)]) == 1
    out = capsys.readouterr().out
    assert f"FAIL  http       {message}" in out
    assert "→ set [http] port to a free port" in out


@pytest.mark.slow
def test_the_good_config_is_accepted_by_all_three(
    tmp_path: Path, good: dict[str, dict[str, object]], capsys: pytest.CaptureFixture[str]
) -> None:
    """The control row: without it the table above could pass on a base config nobody accepts."""
    good["http"]["port"] = free_port()
    path = tmp_path / "agent.toml"
    path.write_text(toml(good))
    assert main(["config", "check", str(path)]) == 0
    assert capsys.readouterr().out.startswith(f"ok   {path}")
    assert main(["doctor", "--config", str(path)]) == 0, capsys.readouterr().out
    out = capsys.readouterr().out
    assert out.startswith("ok    config")
    assert f"ok    http       127.0.0.1:{good['http']['port']} free" in out
    process = subprocess.Popen(
        [sys.executable, "-m", "prescreen", "run", "--config", str(path)], stderr=subprocess.PIPE, text=True
    )
    try:
        time.sleep(4)
        assert process.poll() is None, process.stderr.read() if process.stderr else ""
    finally:
        process.send_signal(signal.SIGTERM)
        _, stderr = process.communicate(timeout=20)
    assert process.returncode == 0, stderr
