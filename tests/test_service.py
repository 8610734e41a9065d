"""Operations: Type=notify READY/STATUS/watchdog, /metrics, /healthz, status, doctor, migrations."""

from __future__ import annotations

import json
import os
import queue
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from order_fixtures import clean_order
from prescreen.core.errors import OutboxError
from prescreen.core.records import validate
from prescreen.ops import config as cfg
from prescreen.packing.app import Agent
from prescreen.packing.events import StationEvent
from prescreen.packing.outbox import Outbox
from prescreen.packing.outbox_schema import SCHEMA_VERSION
from prescreen.packing.service import supervise
from prescreen.sync.broker import LocalBroker, free_port

ORDER = clean_order()


class NotifySocket:
    """A unix datagram socket standing in for systemd's notify socket; collects messages."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(str(path))
        self.sock.settimeout(0.2)
        self.messages: queue.Queue[dict[str, str]] = queue.Queue()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                data = self.sock.recv(4096)
            except TimeoutError:
                continue
            self.messages.put(dict(line.split("=", 1) for line in data.decode().splitlines()))

    def wait_for(self, key: str, timeout: float = 15) -> dict[str, str]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                message = self.messages.get(timeout=0.1)
            except queue.Empty:
                continue
            if key in message:
                return message
        raise AssertionError(f"no {key} notification within {timeout} s")

    def close(self) -> None:
        self._stop.set()
        self._thread.join()
        self.sock.close()


@pytest.fixture
def notify_socket(tmp_path: Path) -> Iterator[NotifySocket]:
    sock = NotifySocket(tmp_path / "notify.sock")
    yield sock
    sock.close()


def station_toml(tmp_path: Path, broker: LocalBroker, http_port: int) -> Path:
    orders = tmp_path / "orders.ndjson"
    orders.write_text(json.dumps(ORDER) + "\n")
    path = tmp_path / "agent.toml"
    path.write_text(
        f"""
[station]
device_id = "station-07"
filer_code = "TST"

[scanner]
url = "sim://scanner"

[scale]
url = "sim://mt-sics"
protocol = "mt-sics"
poll_interval_ms = 10
settle_ms = 20

[orders]
path = "{orders}"

[outbox]
path = "{tmp_path / "outbox.db"}"

[sync]
host = "{broker.host}"
port = {broker.port}
allow_insecure = true

[http]
port = {http_port}
"""
    )
    return path


def prescreen(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "prescreen", *args],
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
        check=False,
    )


@pytest.mark.slow
def test_run_under_notify_socket_reports_ready_status_watchdog_and_stopping(
    tmp_path: Path, broker: LocalBroker, notify_socket: NotifySocket
) -> None:
    http_port = free_port()
    config = station_toml(tmp_path, broker, http_port)
    env = {**os.environ, "NOTIFY_SOCKET": str(notify_socket.path), "WATCHDOG_USEC": "1000000"}
    process = subprocess.Popen(
        [sys.executable, "-m", "prescreen", "run", "--config", str(config)],
        env=env,
        stderr=subprocess.PIPE,
        text=True,
    )
    env["WATCHDOG_PID"] = str(process.pid)
    try:
        ready = notify_socket.wait_for("READY")
        assert ready["READY"] == "1"
        assert ready["MAINPID"] == str(process.pid)
        assert "scanner up" in ready["STATUS"]
        assert notify_socket.wait_for("WATCHDOG", timeout=5)["WATCHDOG"] == "1"

        base = f"http://127.0.0.1:{http_port}"
        health = httpx.get(base + "/healthz", timeout=5)
        assert health.status_code == 200
        assert health.json()["health"] == "ok"
        assert health.json()["problems"] == []
        names = {c["name"] for c in health.json()["conditions"]}
        assert names >= {"pipeline", "broker", "scanner", "scale", "outbox", "clock"}
        metrics = httpx.get(base + "/metrics", timeout=5).text
        assert "prescreen_outbox_backlog_records 0.0" in metrics
        assert 'prescreen_device_up{device="scale"} 1.0' in metrics
        assert "prescreen_scan_to_verdict_seconds_bucket" in metrics

        status = prescreen("status", "--config", str(config), "--json")
        assert status.returncode == 0, status.stderr
        body = json.loads(status.stdout)
        assert body["running"] is True
        assert body["device_id"] == "station-07"
        assert body["devices"]["scanner"]["up"] is True
        assert body["backlog"]["pending"] == 0
        assert body["model"]["version"] == "risk-v2"
        assert body["uptime_s"] >= 0
        assert set(body) >= {"devices", "backlog", "model", "uptime_s", "broker"}
    finally:
        process.send_signal(signal.SIGTERM)
        _, stderr = process.communicate(timeout=20)
    assert process.returncode == 0, stderr
    assert notify_socket.wait_for("STOPPING")["STOPPING"] == "1"
    assert "Traceback" not in stderr


@pytest.mark.slow
def test_status_of_a_stopped_agent_says_so(tmp_path: Path, broker: LocalBroker) -> None:
    result = prescreen("status", "--config", str(station_toml(tmp_path, broker, free_port())), "--json")
    assert result.returncode == 1
    assert json.loads(result.stdout)["running"] is False


def start_agent(tmp_path: Path, broker: LocalBroker) -> Agent:
    conf = cfg.load(station_toml(tmp_path, broker, 0))
    return Agent(conf).start()


@pytest.mark.slow
def test_metrics_count_verdicts_rule_hits_and_latency(tmp_path: Path, broker: LocalBroker) -> None:
    agent = start_agent(tmp_path, broker)
    events: queue.Queue[StationEvent] = queue.Queue()
    agent.station.listeners.append(events.put)
    try:
        agent.scale.simulator.place("1.9")  # type: ignore[attr-defined]
        agent.scanner.simulator.scan(ORDER["tracking_number"])  # type: ignore[attr-defined]
        event = events.get(timeout=10)
        assert agent.http is not None
        text = httpx.get(agent.http.url + "/metrics", timeout=5).text
    finally:
        agent.stop()
    assert event.record is not None
    validate(event.record)
    verdict = event.record["screening"]["verdict"]
    assert f'prescreen_verdicts_total{{verdict="{verdict}"}} 1.0' in text
    assert 'prescreen_rule_hits_total{code="WEIGHT_MISMATCH"} 1.0' in text
    assert "prescreen_scan_to_verdict_seconds_count 1.0" in text
    assert "prescreen_outbox_shedding 0.0" in text
    assert "prescreen_disk_free_megabytes" in text


@pytest.mark.slow
def test_watchdog_is_withheld_while_the_pipeline_is_broken(
    tmp_path: Path, broker: LocalBroker, notify_socket: NotifySocket, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("NOTIFY_SOCKET", str(notify_socket.path))
    monkeypatch.setenv("WATCHDOG_USEC", "400000")
    monkeypatch.delenv("WATCHDOG_PID", raising=False)
    agent = start_agent(tmp_path, broker)
    stop = threading.Event()
    loop = threading.Thread(target=supervise, args=(agent, stop), daemon=True)
    try:
        loop.start()
        notify_socket.wait_for("READY")
        notify_socket.wait_for("WATCHDOG", timeout=3)
        agent._stop.set()  # the station loop ends: the pipeline is broken
        agent._thread.join(timeout=5)
        assert agent.liveness() == ["station thread is not running"]
        assert agent.http is not None
        assert httpx.get(agent.http.url + "/livez", timeout=5).status_code == 503
        health = httpx.get(agent.http.url + "/healthz", timeout=5)
        assert health.status_code == 503
        assert health.json()["health"] == "down"
        while not notify_socket.messages.empty():
            notify_socket.messages.get()
        time.sleep(1.0)  # several petting intervals
        seen = []
        while not notify_socket.messages.empty():
            seen.append(notify_socket.messages.get())
        assert seen, "STATUS updates keep coming"
        assert not [m for m in seen if "WATCHDOG" in m]
    finally:
        stop.set()
        loop.join(timeout=5)
        agent.stop()


@pytest.mark.slow
def test_doctor_passes_on_a_good_install_and_names_the_fix_on_a_bad_one(
    tmp_path: Path, broker: LocalBroker
) -> None:
    config = station_toml(tmp_path, broker, free_port())
    good = prescreen("doctor", "--config", str(config))
    assert good.returncode == 0, good.stdout
    names = [line.split()[1] for line in good.stdout.splitlines() if line.startswith(("ok", "warn"))]
    assert names == [
        "config",
        "http",
        "scanner",
        "scale",
        "orders",
        "disk",
        "model",
        "hts",
        "key",
        "tls",
        "broker",
        "outbox",
        "clock",
    ]

    text = config.read_text().replace('url = "sim://mt-sics"', f'url = "{tmp_path / "ttyUSB9"}"')
    text = text.replace(f"port = {broker.port}", f"port = {free_port()}")
    config.write_text(text)
    bad = prescreen("doctor", "--config", str(config))
    assert bad.returncode == 1
    assert f"FAIL  scale      {tmp_path / 'ttyUSB9'}: no such device" in bad.stdout
    assert "→ plug the scale in" in bad.stdout
    assert "FAIL  broker" in bad.stdout
    assert "2 failed" in bad.stdout


@pytest.mark.slow
def test_doctor_reports_a_malformed_config_on_one_line(tmp_path: Path) -> None:
    config = tmp_path / "agent.toml"
    config.write_text("[scale]\nbaud = 9600\n")
    result = prescreen("doctor", "--config", str(config))
    assert result.returncode == 1
    assert "FAIL  config" in result.stdout
    assert "unknown key 'scale.baud'" in result.stdout


FIXTURE = Path(__file__).parent / "fixtures" / "outbox-v1.db"


def test_upgrade_from_a_v1_outbox_keeps_every_record(tmp_path: Path) -> None:
    old = tmp_path / "outbox.db"
    shutil.copy(FIXTURE, old)
    outbox = Outbox(old)
    try:
        assert outbox.counts() == {"acked": 3, "pending": 5}
        version = outbox.db.conn.execute("SELECT value FROM meta WHERE key='schema_version'").fetchone()[0]
        assert int(version) == SCHEMA_VERSION
        sizes = outbox.db.conn.execute("SELECT size = length(CAST(body AS BLOB)) FROM records").fetchall()
        assert all(row[0] for row in sizes)
        pending = outbox.pending(100)
        assert [seq for seq, _, _ in pending] == [4, 5, 6, 7, 8]
        appended = outbox.append(
            lambda seq: {**json.loads(pending[0][2]), "seq": seq, "record_id": str(uuid.uuid4())}
        )
        assert appended["seq"] == 9
    finally:
        outbox.close()


def test_an_outbox_from_a_newer_agent_is_refused(tmp_path: Path) -> None:
    newer = tmp_path / "outbox.db"
    shutil.copy(FIXTURE, newer)
    Outbox(newer).close()
    with sqlite3.connect(newer) as conn:
        conn.execute("UPDATE meta SET value = '99' WHERE key = 'schema_version'")
    with pytest.raises(OutboxError, match="newer than this agent"):
        Outbox(newer)


def test_a_notify_socket_nobody_reads_never_blocks_the_agent(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """Found by the benchmark: a full notify queue once froze the service loop (and SIGTERM),
    and later filled the log with one warning per STATUS update."""
    from prescreen.packing.sdnotify import notify

    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as unread:
        unread.bind(str(tmp_path / "n.sock"))
        monkeypatch.setenv("NOTIFY_SOCKET", str(tmp_path / "n.sock"))
        with caplog.at_level("INFO", logger="prescreen.sdnotify"):
            results = [notify(STATUS="x" * 1000) for _ in range(5000)]
            unread.setblocking(False)
            while True:  # the manager reads again
                try:
                    unread.recv(65536)
                except BlockingIOError:
                    break
            assert notify(STATUS="back") is True
    assert results[0] is True
    assert results[-1] is False  # the queue filled up: reported, not blocked
    messages = [r.getMessage() for r in caplog.records]
    assert sum(m.startswith("sd_notify failed") for m in messages) == 1
    assert messages[-1] == "sd_notify works again"


def test_prescreen_run_limits_malloc_before_it_loads_anything(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """One arena and a fixed mmap threshold are set by the process itself (glibc), so systemd, the
    bench and a shell run the agent with the same allocator settings."""
    import platform

    from prescreen.commands import station
    from prescreen.commands.main import main
    from prescreen.packing import service

    code = "from prescreen.packing.service import limit_malloc; print(limit_malloc())"
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True
    )
    assert done.stdout.strip() == str(platform.libc_ver()[0] == "glibc")
    calls: list[str] = []
    monkeypatch.setattr(station, "stop_on_signal", threading.Event)  # no handlers in the test process
    monkeypatch.setattr(service, "limit_malloc", lambda: calls.append("limit_malloc") or True)
    monkeypatch.setattr(cfg, "load_station", lambda path: calls.append("config") or sys.exit(3))
    with pytest.raises(SystemExit):
        main(["run", "--config", str(tmp_path / "agent.toml")])
    assert calls == ["limit_malloc", "config"]
