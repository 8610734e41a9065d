"""Health conditions: what is degraded, when, how it is logged, and that the watchdog goes by the
pipeline's liveness alone (a restart fixes no broker outage, full outbox or slow operator).

The grace and repeat times are configuration (``[health]``); the tests shorten them so the same
logic runs in seconds. The station-loop stall threshold is shortened the same way, so a weight wait
longer than it proves the loop keeps beating while the operator takes their time.
"""

from __future__ import annotations

import json
import logging
import queue
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest
from order_fixtures import clean_order
from prescreen.commands.main import main
from prescreen.ops import config as cfg
from prescreen.ops.health import CLOCK_FLOOR, Health, clock_condition
from prescreen.packing import app
from prescreen.packing.app import Agent
from prescreen.packing.events import StationEvent
from prescreen.packing.service import supervise
from prescreen.sync.broker import LocalBroker, free_port
from test_service import NotifySocket

ORDER = clean_order()


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_a_condition_counts_after_its_grace_and_is_logged_once_then_every_interval_then_once_back(
    caplog: pytest.LogCaptureFixture,
) -> None:
    clock = FakeClock()
    health = Health(log_every_s=60, clock=clock)
    up = {"broker": True}
    health.watch("broker", lambda: ("ok", "") if up["broker"] else ("degraded", "backlog 7"), grace_s=30)
    with caplog.at_level(logging.INFO, logger="prescreen.health"):
        assert health.level() == "ok"
        up["broker"] = False
        assert health.level() == "ok"  # first seen lost now
        clock.now += 1
        assert health.level() == "ok"
        assert not caplog.records  # a broker still connecting at start is not worth a line
        for _ in range(28):  # a blip within the grace time is not an alarm
            clock.now += 1
            assert health.level() == "ok"
        assert [r.getMessage() for r in caplog.records] == ["health: broker degraded (within grace)"]  # info
        clock.now += 1
        (broker,) = health.conditions()
        assert (broker.level, broker.detail) == ("degraded", "backlog 7")
        for _ in range(150):  # 150 s lost: one line when lost, then one a minute
            clock.now += 1
            health.conditions()
        up["broker"] = True
        health.conditions()
        health.conditions()
    messages = [(r.levelname, r.getMessage()) for r in caplog.records]
    assert messages == [
        ("INFO", "health: broker degraded (within grace)"),
        ("WARNING", "health: broker degraded"),
        ("WARNING", "health: broker still degraded"),
        ("WARNING", "health: broker still degraded"),
        ("INFO", "health: broker ok"),
    ]
    assert all(r.detail == "backlog 7" for r in caplog.records[:4])  # type: ignore[attr-defined]


def test_a_problem_gone_within_its_grace_says_so_once(caplog: pytest.LogCaptureFixture) -> None:
    clock = FakeClock()
    health = Health(clock=clock)
    up = {"scale": False}
    health.watch("scale", lambda: ("ok", "") if up["scale"] else ("degraded", "missing"), grace_s=5)
    with caplog.at_level(logging.INFO, logger="prescreen.health"):
        for _ in range(4):
            assert health.level() == "ok"
            clock.now += 1
        up["scale"] = True
        health.conditions()
        health.conditions()
    assert [(r.levelname, r.getMessage()) for r in caplog.records] == [
        ("INFO", "health: scale degraded (within grace)"),
        ("INFO", "health: scale ok again (within grace)"),
    ]


def test_a_reported_condition_is_set_and_cleared_by_its_owner_and_the_worst_level_wins() -> None:
    health = Health()
    health.watch("scale", lambda: ("degraded", "unplugged"))
    health.report("model", "down", "quarantined")
    assert [(c.name, c.level) for c in health.conditions()] == [("model", "down"), ("scale", "degraded")]
    assert health.level() == "down"
    health.report("model", "ok")
    assert health.level() == "degraded"
    with pytest.raises(ValueError, match="health level"):
        health.report("model", "bad")  # type: ignore[arg-type]


def test_a_probe_that_raises_is_itself_a_degraded_condition() -> None:
    health = Health()
    health.watch("outbox", lambda: (_ for _ in ()).throw(OSError("disk gone")))  # type: ignore[arg-type]
    (outbox,) = health.conditions()
    assert outbox.level == "degraded"
    assert "disk gone" in outbox.detail


def test_the_clock_is_wrong_before_2025_or_behind_the_newest_record() -> None:
    now = CLOCK_FLOOR + 10 * 86400
    assert clock_condition(now, None)[0] == "ok"
    assert clock_condition(now, now + 30)[0] == "ok"  # a few seconds of slack between stations
    assert clock_condition(CLOCK_FLOOR - 1, None)[0] == "degraded"
    level, detail = clock_condition(now, now + 3600)
    assert level == "degraded"
    assert "3600 s behind" in detail


def toml(tmp_path: Path, broker_port: int, http_port: int, **sections: dict[str, object]) -> Path:
    orders = tmp_path / "orders.ndjson"
    orders.write_text(json.dumps(ORDER) + "\n")
    base: dict[str, dict[str, object]] = {
        "station": {"device_id": "station-07"},
        "scanner": {"url": "sim://scanner"},
        "scale": {"url": "sim://mt-sics", "protocol": "mt-sics", "poll_interval_ms": 10, "settle_ms": 20},
        "orders": {"path": str(orders)},
        "outbox": {"path": str(tmp_path / "outbox.db")},
        "sync": {"host": "127.0.0.1", "port": broker_port},
        "http": {"port": http_port},
        "health": {"broker_grace_s": 1.0, "device_grace_s": 0.5, "log_every_s": 1.0},
    }
    for name, values in sections.items():
        base.setdefault(name, {}).update(values)
    lines = []
    for name, values in base.items():
        lines.append(f"[{name}]")
        lines += [f"{key} = {json.dumps(value)}" for key, value in values.items()]
    path = tmp_path / "agent.toml"
    path.write_text("\n".join(lines) + "\n")
    return path


@pytest.fixture
def agents() -> Iterator[Callable[[Path], Agent]]:
    started: list[Agent] = []

    def start(config: Path) -> Agent:
        agent = Agent(cfg.load(config)).start()
        started.append(agent)
        return agent

    yield start
    for agent in started:
        agent.stop()


@pytest.fixture
def notify_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[NotifySocket]:
    sock = NotifySocket(tmp_path / "notify.sock")
    monkeypatch.setenv("NOTIFY_SOCKET", str(sock.path))
    monkeypatch.setenv("WATCHDOG_USEC", "400000")  # pet every 0.2 s
    monkeypatch.delenv("WATCHDOG_PID", raising=False)
    yield sock
    sock.close()


def drain(sock: NotifySocket) -> list[dict[str, str]]:
    seen = []
    while not sock.messages.empty():
        seen.append(sock.messages.get())
    return seen


def watchdog_gaps(sock: NotifySocket, seconds: float) -> float:
    """Collect notifications for ``seconds``; the longest time between two WATCHDOG=1."""
    drain(sock)
    last = time.monotonic()
    longest = 0.0
    deadline = last + seconds
    while time.monotonic() < deadline:
        try:
            message = sock.messages.get(timeout=0.05)
        except queue.Empty:
            continue
        if message.get("WATCHDOG") == "1":
            now = time.monotonic()
            longest, last = max(longest, now - last), now
    return max(longest, time.monotonic() - last)


def healthz(agent: Agent) -> tuple[int, dict[str, object]]:
    assert agent.http is not None
    response = httpx.get(agent.http.url + "/healthz", timeout=5)
    return response.status_code, response.json()


def levels(body: dict[str, object]) -> dict[str, str]:
    return {c["name"]: c["level"] for c in body["conditions"]}  # type: ignore[attr-defined, index]


@pytest.mark.slow
def test_broker_down_is_degraded_after_the_grace_time_logged_as_it_goes_and_status_says_so(
    tmp_path: Path,
    agents: Callable[[Path], Agent],
    caplog: pytest.LogCaptureFixture,
    capsys: pytest.CaptureFixture[str],
    wait_until: Callable[..., bool],
) -> None:
    port = free_port()  # nobody listens here yet
    config = toml(tmp_path, port, free_port())
    with caplog.at_level(logging.INFO, logger="prescreen.health"):
        agent = agents(config)
        status, body = healthz(agent)
        assert (status, levels(body)["broker"]) == (200, "ok")  # within the grace time
        assert wait_until(lambda: healthz(agent)[0] == 503, timeout=5)
        _, body = healthz(agent)
        assert body["health"] == "degraded"
        assert levels(body)["broker"] == "degraded"
        assert levels(body)["pipeline"] == "ok"  # screening goes on

        assert main(["status", "--config", str(config)]) == 1
        printed = capsys.readouterr().out
        assert "station-07: degraded" in printed
        assert f"broker 127.0.0.1:{port} unreachable; 0 record(s) waiting" in printed

        time.sleep(2.2)  # log_every_s = 1: "still degraded" lines while lost
        broker = LocalBroker.start(port=port)
        try:
            assert wait_until(lambda: healthz(agent)[0] == 200, timeout=10)
            assert main(["status", "--config", str(config)]) == 0
        finally:
            agent.stop()
            broker.stop()
    records = [r for r in caplog.records if getattr(r, "condition", None) == "broker"]
    lines = [r.getMessage() for r in records]
    assert lines[0] == "health: broker degraded"
    assert lines[1:-1]
    assert set(lines[1:-1]) == {"health: broker still degraded"}
    assert lines[-1] == "health: broker ok"
    assert "record(s) waiting" in records[0].detail  # type: ignore[attr-defined]


@pytest.mark.slow
def test_waiting_for_a_weight_longer_than_the_stall_limit_is_healthy_and_the_watchdog_is_petted(
    tmp_path: Path,
    broker: LocalBroker,
    agents: Callable[[Path], Agent],
    notify_env: NotifySocket,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The bug: the station loop blocked for the whole weight wait (10 s), so its heartbeat went
    stale after 5 s and systemd could kill the agent mid-parcel. The stall limit is cut to 1 s and
    the operator takes 3 s of a 30 s weight wait: the old loop would have stalled."""
    monkeypatch.setattr(app, "HEARTBEAT_STALE_S", 1.0)
    config = toml(tmp_path, broker.port, 0, station={"weight_timeout_s": 30.0})
    agent = agents(config)
    events: queue.Queue[StationEvent] = queue.Queue()
    agent.station.listeners.append(events.put)
    stop = threading.Event()
    loop = threading.Thread(target=supervise, args=(agent, stop), daemon=True)
    loop.start()
    try:
        notify_env.wait_for("READY")
        agent.scanner.simulator.scan(ORDER["tracking_number"])  # type: ignore[attr-defined]
        assert watchdog_gaps(notify_env, 3.0) < 0.8  # petted every 0.2 s throughout
        assert healthz(agent)[0] == 200
        assert agent.liveness() == []
        assert events.empty()  # still waiting for the weight
        agent.scale.simulator.place("1.9")  # type: ignore[attr-defined]
        event = events.get(timeout=10)
        assert event.record is not None
        assert event.record["parcel"]["measured_weight_kg"] == 1.9
    finally:
        stop.set()
        loop.join(timeout=5)


@pytest.mark.slow
def test_outbox_over_its_limit_with_the_broker_down_is_degraded_and_the_watchdog_still_petted(
    tmp_path: Path,
    agents: Callable[[Path], Agent],
    notify_env: NotifySocket,
    wait_until: Callable[..., bool],
) -> None:
    """The bug: the housekeeping alarm withheld WATCHDOG=1, so the shipped unit restarted the agent
    every 10 s through a broker outage. Now both are degraded conditions and screening goes on."""
    config = toml(tmp_path, free_port(), 0, outbox={"max_rows": 1, "housekeeping_s": 0.2})
    agent = agents(config)
    events: queue.Queue[StationEvent] = queue.Queue()
    agent.station.listeners.append(events.put)
    stop = threading.Event()
    loop = threading.Thread(target=supervise, args=(agent, stop), daemon=True)
    loop.start()
    try:
        notify_env.wait_for("READY")
        for weight in ("1.9", "2.4", "1.1"):
            agent.scale.simulator.place(weight)  # type: ignore[attr-defined]
            agent.scanner.simulator.scan(ORDER["tracking_number"])  # type: ignore[attr-defined]
            assert events.get(timeout=10).record is not None
        assert wait_until(lambda: levels(healthz(agent)[1]).get("outbox") == "degraded", timeout=5)
        assert wait_until(lambda: levels(healthz(agent)[1]).get("broker") == "degraded", timeout=5)
        assert watchdog_gaps(notify_env, 3.0) < 0.8
        status = notify_env.wait_for("STATUS")["STATUS"]
        assert status.startswith("degraded (")
        assert "outbox: outbox over its limits" in status
        assert "broker:" in status
        assert agent.outbox.counts() == {"pending": 3}  # nothing dropped
    finally:
        stop.set()
        loop.join(timeout=5)


@pytest.mark.slow
def test_the_metrics_give_each_condition_its_level(
    tmp_path: Path, agents: Callable[[Path], Agent], wait_until: Callable[..., bool]
) -> None:
    agent = agents(toml(tmp_path, free_port(), 0))
    assert agent.http is not None
    assert wait_until(lambda: healthz(agent)[0] == 503, timeout=5)
    text = httpx.get(agent.http.url + "/metrics", timeout=5).text
    assert 'prescreen_health_condition{condition="broker"} 1.0' in text
    assert 'prescreen_health_condition{condition="pipeline"} 0.0' in text
    assert "prescreen_healthy 0.0" in text


@pytest.mark.slow
def test_the_station_page_snapshot_carries_the_health(
    tmp_path: Path, agents: Callable[[Path], Agent], wait_until: Callable[..., bool]
) -> None:
    agent = agents(toml(tmp_path, free_port(), 0))
    assert agent.http is not None
    assert wait_until(lambda: healthz(agent)[0] == 503, timeout=5)
    snapshot = httpx.get(agent.http.url + "/station/snapshot", timeout=5).json()
    assert snapshot["status"]["health"] == "degraded"
    assert any(p.startswith("broker:") for p in snapshot["status"]["problems"])


def test_verdicts_that_cannot_be_recorded_make_the_station_down_until_one_is(
    tmp_path: Path,
    broker: LocalBroker,
    agents: Callable[[Path], Agent],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A full disk is at the edge of the world: the outbox's append is made to fail as SQLite would."""
    from prescreen.core.errors import OutboxError

    agent = agents(toml(tmp_path, broker.port, 0))
    events: queue.Queue[StationEvent] = queue.Queue()
    agent.station.listeners.append(events.put)
    real_append = agent.outbox.append

    def disk_full(*args: object, **kwargs: object) -> object:
        raise OutboxError("database or disk is full")

    monkeypatch.setattr(agent.outbox, "append", disk_full)
    agent.scale.simulator.place("1.9")  # type: ignore[attr-defined]
    agent.scanner.simulator.scan(ORDER["tracking_number"])  # type: ignore[attr-defined]
    assert events.get(timeout=10).kind == "not_recorded"
    status, body = healthz(agent)
    assert (status, body["health"], levels(body)["recording"]) == (503, "down", "down")
    assert "database or disk is full" in " ".join(body["problems"])  # type: ignore[arg-type]
    assert agent.liveness() == []  # a restart would not free the disk: the watchdog is still petted

    monkeypatch.setattr(agent.outbox, "append", real_append)
    agent.scale.simulator.place("2.1")  # type: ignore[attr-defined]
    agent.scanner.simulator.scan(ORDER["tracking_number"])  # type: ignore[attr-defined]
    assert events.get(timeout=10).kind == "verdict"
    assert levels(healthz(agent)[1])["recording"] == "ok"
