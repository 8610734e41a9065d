"""``prescreen receiver --workers N``: processes on one shared subscription writing one store."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from prescreen.commands.main import main
from prescreen.sim.syncbench import run_sync_bench

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
