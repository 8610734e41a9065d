"""``prescreen receiver --workers N``: processes on one shared subscription writing one store."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
from prescreen.commands.main import main
from prescreen.sim.syncbench import run_sync_bench
from prescreen.sync.broker import LocalBroker

pytestmark = pytest.mark.network


@pytest.mark.slow
def test_two_workers_store_every_record_once(tmp_path: Path) -> None:
    summary = run_sync_bench(3000, workdir=tmp_path, batch_size=100, receiver_workers=2, timeout_s=120)
    assert summary["exactly_once"], summary["problems"]
    assert summary["stored"] == 3000
    assert summary["receiver_workers"] == 2
    assert (tmp_path / "receiver.db.lock").exists()  # the workers' commits took turns on it


def test_workers_need_the_shared_subscription(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    argv = ["receiver", "--db", str(tmp_path / "r.db"), "--no-verify", "--no-share", "--workers", "2"]
    assert main(argv) != 0
    assert "--workers N needs N >= 1 and the shared subscription" in capsys.readouterr().err


@pytest.mark.slow
def test_the_parent_stops_its_workers(tmp_path: Path) -> None:
    # No broker on port 1: each worker waits 10 s for it, then says READY and goes on waiting.
    argv = ["receiver", "--db", str(tmp_path / "r.db"), "--no-verify", "--port", "1", "--workers", "3"]
    process = subprocess.Popen(
        [sys.executable, "-m", "prescreen", *argv],
        stderr=subprocess.DEVNULL,
        env={k: v for k, v in os.environ.items() if k != "NOTIFY_SOCKET"},
    )
    children = Path(f"/proc/{process.pid}/task/{process.pid}/children")
    try:
        for _ in range(300):
            if len(children.read_text().split()) >= 2:
                break
            time.sleep(0.1)
        workers = children.read_text().split()
        assert len(workers) >= 2, "two worker processes besides the parent"
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(60)
    assert process.returncode == 0
    for _ in range(100):  # multiprocessing's resource tracker leaves a moment after its parent
        if not any(Path(f"/proc/{pid}").exists() for pid in workers):
            break
        time.sleep(0.1)
    assert not [pid for pid in workers if Path(f"/proc/{pid}").exists()]


def _receiver(argv: list[str], notify: Path) -> subprocess.Popen[str]:
    """``prescreen receiver`` in its own process, telling ``notify`` (a socket the test reads) READY."""
    return subprocess.Popen(
        [sys.executable, "-m", "prescreen", "receiver", *argv],
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "NOTIFY_SOCKET": str(notify)},
    )


def _notify_socket(tmp_path: Path) -> socket.socket:
    ready = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    ready.bind(str(tmp_path / "notify"))
    return ready


def _worker_pids(parent: int) -> list[int]:
    """The parent's receiver workers (spawned interpreters), not multiprocessing's resource tracker."""
    children = Path(f"/proc/{parent}/task/{parent}/children").read_text().split()
    return [int(pid) for pid in children if b"spawn_main" in Path(f"/proc/{pid}/cmdline").read_bytes()]


@pytest.mark.slow
def test_a_killed_worker_stops_the_receiver_with_a_failure(tmp_path: Path, broker: LocalBroker) -> None:
    argv = ["--db", str(tmp_path / "r.db"), "--no-verify", "--port", str(broker.port), "--workers", "2"]
    argv += ["--prefix", f"kill{os.getpid()}"]  # its own topics: other tests' stations stay out
    with _notify_socket(tmp_path) as ready:
        ready.settimeout(60)
        process = _receiver(argv, tmp_path / "notify")
        try:
            assert b"READY=1" in ready.recv(4096)  # said once the worker and the parent are subscribed
            (worker,) = _worker_pids(process.pid)
            os.kill(worker, signal.SIGKILL)
            _, stderr = process.communicate(timeout=60)  # stops on its own: no SIGTERM sent
        finally:
            if process.poll() is None:
                process.kill()
                process.wait()
    assert process.returncode == 1
    died = [line for line in stderr.splitlines() if "receiver worker ended; stopping the receiver" in line]
    assert len(died) == 1, stderr
    assert "-9" in died[0]


@pytest.mark.slow
def test_start_up_fails_when_a_worker_is_not_ready(tmp_path: Path) -> None:
    # The store's folder is a file: the worker cannot open the store and ends before it is ready.
    (tmp_path / "file").write_text("")
    argv = ["--db", str(tmp_path / "file" / "r.db"), "--no-verify", "--port", "1", "--workers", "2"]
    with _notify_socket(tmp_path) as ready:
        process = _receiver(argv, tmp_path / "notify")
        _, stderr = process.communicate(timeout=60)
        ready.setblocking(False)
        with pytest.raises(BlockingIOError):
            ready.recv(4096)  # the parent never said READY=1
    assert process.returncode == 1
    assert "receiver-worker-1 ended with exit code" in stderr
    assert "before it was ready" in stderr
