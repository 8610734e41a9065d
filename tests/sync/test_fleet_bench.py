"""`prescreen bench fleet` end to end on a small fleet: real NATS cluster, receivers, PostgreSQL."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from postgres import Server
from prescreen.sync.cluster import NatsCluster


@pytest.mark.slow
def test_a_small_fleet_is_stored_exactly_once_and_reports_commit_to_ack(postgres_server: Server) -> None:
    """Fails if a record is lost or stored twice, or if the live parcels' commit→ack latencies
    (read back from each station's outbox) are missing."""
    why = NatsCluster.available()
    if why:
        pytest.skip(why)
    run = subprocess.run(
        [sys.executable, "-m", "prescreen", "bench", "fleet", "--stations", "4", "--parcels-per-minute",
         "60", "--backlog", "20", "--receivers", "1", "--live-s", "5", "--processes", "1",
         "--db", postgres_server.admin_url],
        capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip
    assert run.returncode == 0, run.stderr[-2000:]
    summary = json.loads(run.stdout.strip().splitlines()[-1])
    assert summary["exactly_once"] is True
    assert summary["lost"] == 0
    assert summary["stored"] == summary["committed"] == 80 + summary["phases"]["live"]["parcels"]
    assert summary["phases"]["live"]["parcels"] > 0
    assert summary["commit_to_ack_p50_ms"] is not None
    assert summary["commit_to_ack_p50_ms"] <= summary["commit_to_ack_p99_ms"]
