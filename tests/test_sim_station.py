"""Trying a station without hardware: ``prescreen run`` on ``sim://`` devices, driven by
``prescreen sim`` (and by a script, and from the page), with the record arriving at a receiver.

Everything is the deployed path: the agent and the receiver are their own processes, the broker is
mosquitto, the simulators speak the real wire protocols on ptys read by the real drivers.
"""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from order_fixtures import clean_order
from prescreen.core.errors import ConfigError
from prescreen.ops import config as cfg
from prescreen.sim.simbench import Step, parse_script
from prescreen.sim.syncbench import enrol, start_receiver, stop_process
from prescreen.sync.broker import LocalBroker, free_port
from prescreen.web.server import TOKEN_HEADER, api_headers

ORDER = clean_order()
TRACKING = ORDER["tracking_number"]


def prescreen(*args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "prescreen", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def write_config(
    tmp_path: Path, broker: LocalBroker, http_port: int, scale_url: str = "sim://mt-sics"
) -> Path:
    (tmp_path / "orders.ndjson").write_text(json.dumps(ORDER) + "\n")
    path = tmp_path / "agent.toml"
    path.write_text(
        f"""
[station]
device_id = "station-01"
site_id = "site-01"
filer_code = "TST"
key_path = "{tmp_path / "device.key"}"

[scanner]
url = "sim://scanner"

[scale]
url = "{scale_url}"
protocol = "mt-sics"
poll_interval_ms = 10
settle_ms = 20

[orders]
path = "{tmp_path / "orders.ndjson"}"

[outbox]
path = "{tmp_path / "outbox.db"}"

[sync]
host = "{broker.host}"
port = {broker.port}
batch_age_ms = 20
allow_insecure = true

[http]
port = {http_port}

[health]
device_grace_s = 0.5
"""
    )
    return path


class RunningStation:
    """``prescreen run`` and ``prescreen receiver`` as processes, the receiver trusting the station."""

    def headers(self) -> dict[str, str]:
        """A local client's POST headers: the API token from the agent's 0600 file."""
        return api_headers(cfg.load(self.config).api_token_path())

    def page_url(self) -> str:
        return f"{self.url}/station#token={self.headers()[TOKEN_HEADER]}"

    def __init__(self, tmp_path: Path, broker: LocalBroker, scale_url: str = "sim://mt-sics") -> None:
        self.port = free_port()
        self.config = write_config(tmp_path, broker, self.port, scale_url)
        _, trust = enrol(tmp_path, cfg.StationConfig(), tmp_path / "device.key")
        self.receiver_db = tmp_path / "receiver.db"
        self.receiver = start_receiver(self.receiver_db, broker, tmp_path / "receiver.sock", trust)
        self.log = (tmp_path / "agent.log").open("w")
        self.agent = subprocess.Popen(
            [sys.executable, "-m", "prescreen", "run", "--config", str(self.config)],
            stderr=self.log,
            env={k: v for k, v in os.environ.items() if k != "NOTIFY_SOCKET"},
        )
        self.url = f"http://127.0.0.1:{self.port}"
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                if httpx.get(self.url + "/status", timeout=1).status_code == 200:
                    return
            except httpx.HTTPError:
                time.sleep(0.1)
        self.close()
        raise AssertionError(
            "prescreen run did not serve within 30 s: " + (tmp_path / "agent.log").read_text()
        )

    def stored(self, wait_s: float = 15) -> list[dict[str, Any]]:
        deadline = time.monotonic() + wait_s
        while True:
            with sqlite3.connect(self.receiver_db) as conn:
                bodies = [json.loads(row[0]) for row in conn.execute("SELECT body FROM records")]
            if bodies or time.monotonic() > deadline:
                return bodies
            time.sleep(0.1)

    def close(self) -> None:
        self.agent.terminate()
        self.agent.wait(timeout=20)
        stop_process(self.receiver)
        self.log.close()


@pytest.fixture
def station(tmp_path: Path, broker: LocalBroker) -> Iterator[RunningStation]:
    running = RunningStation(tmp_path, broker)
    yield running
    running.close()


@pytest.mark.slow
def test_a_scan_and_weight_from_prescreen_sim_reach_the_receiver(station: RunningStation) -> None:
    result = prescreen("sim", "scan", TRACKING, "--weight", "1.9", "--config", str(station.config))
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.startswith(f"{TRACKING}: ")
    verdict = result.stdout.split()[1]
    assert verdict in {"CLEAR", "REVIEW", "HOLD"}

    (record,) = station.stored()
    assert record["parcel"]["tracking_number"] == TRACKING
    assert record["parcel"]["measured_weight_kg"] == 1.9  # the weight went through the real scale driver
    assert record["screening"]["verdict"] == verdict
    assert record["record_id"] in result.stdout
    assert "NO_WEIGHT" not in {r["code"] for r in record["screening"]["reasons"]}


@pytest.mark.slow
def test_sim_commands_refuse_bad_values_and_say_why(station: RunningStation) -> None:
    bad_weight = prescreen("sim", "weight", "heavy", "--config", str(station.config))
    assert bad_weight.returncode == 1
    assert "weight must be a number of kg" in bad_weight.stdout
    headers = station.headers()
    bad_code = httpx.post(station.url + "/sim/scan", json={"code": "a\nb"}, headers=headers, timeout=5)
    assert bad_code.status_code == 400
    assert "printable ASCII" in bad_code.json()["error"]
    unplug_bad = httpx.post(station.url + "/sim/unplug", content=b"[", headers=headers, timeout=5)
    assert unplug_bad.status_code == 400
    nobody = prescreen("sim", "lift", "--station", f"http://127.0.0.1:{free_port()}")
    assert nobody.returncode == 1
    assert "no station answering" in nobody.stdout


@pytest.mark.slow
def test_an_unplugged_scale_is_degraded_and_status_says_so_until_replugged(
    station: RunningStation, wait_until: Callable[..., bool]
) -> None:
    assert prescreen("status", "--config", str(station.config)).returncode == 0
    unplug = prescreen("sim", "unplug", "scale", "--config", str(station.config))
    assert unplug.returncode == 0, unplug.stdout
    assert json.loads(unplug.stdout)["devices"]["scale"] == {"plugged": False}

    def scale_level() -> str:
        body = httpx.get(station.url + "/healthz", timeout=5).json()
        return str({c["name"]: c["level"] for c in body["conditions"]}["scale"])

    assert wait_until(lambda: scale_level() == "degraded", timeout=5)
    status = prescreen("status", "--config", str(station.config))
    assert status.returncode == 1
    assert "problem: scale: scale missing" in status.stdout
    assert httpx.get(station.url + "/livez", timeout=5).status_code == 200  # no restart for this

    assert prescreen("sim", "replug", "scale", "--config", str(station.config)).returncode == 0
    assert wait_until(lambda: scale_level() == "ok", timeout=5)
    again = prescreen("sim", "scan", TRACKING, "--weight", "2.2", "--config", str(station.config))
    assert again.returncode == 0, again.stdout
    assert station.stored()[0]["parcel"]["measured_weight_kg"] == 2.2


@pytest.mark.slow
def test_a_script_on_the_sim_url_replays_scans_and_weights(tmp_path: Path, broker: LocalBroker) -> None:
    script = tmp_path / "bench.txt"
    script.write_text(f"# a parcel\n0.5 weight 1.250\n0.2 scan {TRACKING}\n1.0 lift\n")
    running = RunningStation(tmp_path, broker, scale_url=f"sim://mt-sics?script={script}")
    try:
        (record,) = running.stored()
    finally:
        running.close()
    assert record["parcel"]["tracking_number"] == TRACKING
    assert record["parcel"]["measured_weight_kg"] == 1.25


def test_a_bad_script_names_its_file_and_line() -> None:
    assert parse_script("1 weight 2\n\n# x\n0 lift\n", "s.txt") == [
        Step(1.0, "weight", "2"),
        Step(0.0, "lift"),
    ]
    with pytest.raises(ConfigError, match=r"s\.txt:2: 'soon' is not a number of seconds"):
        parse_script("1 lift\nsoon scan X\n", "s.txt")
    with pytest.raises(ConfigError, match=r"s\.txt:1: '1 jump 3'.*ACTION one of scan, weight"):
        parse_script("1 jump 3", "s.txt")


@pytest.mark.slow
def test_the_sim_endpoints_exist_only_with_simulated_devices(tmp_path: Path, broker: LocalBroker) -> None:
    from prescreen.drivers.registry import scale_protocol
    from prescreen.drivers.sim import ScaleSimulator, ScannerSimulator
    from prescreen.packing.app import Agent

    scale, scanner = ScaleSimulator(scale_protocol("mt-sics")), ScannerSimulator()
    config = cfg.load(write_config(tmp_path, broker, 0))
    config = cfg.replace(config, "scale", url=scale.port)
    config = cfg.replace(config, "scanner", url=scanner.port)
    agent = Agent(config).start()
    try:
        assert agent.http is not None
        assert httpx.get(agent.http.url + "/sim", timeout=5).status_code == 404
        assert httpx.post(agent.http.url + "/sim/scan", json={"code": "X"}, timeout=5).status_code == 404
    finally:
        agent.stop()
        scale.close()
        scanner.close()


@pytest.mark.slow
def test_doctor_on_a_running_station_finds_its_port_held_by_that_station(station: RunningStation) -> None:
    """The port check must not fail a healthy install just because its own agent is running."""
    result = prescreen("doctor", "--config", str(station.config))
    assert f"warn  http       127.0.0.1:{station.port} in use by station-01's running agent" in result.stdout
    assert "FAIL  http" not in result.stdout
