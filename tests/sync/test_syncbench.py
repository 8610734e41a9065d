"""``prescreen bench sync`` on real parts: every record acked and stored once, and the station's
CPU per record reported (what the drain figures in the README are judged by)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from prescreen.sim.syncbench import run_sync_bench

pytestmark = pytest.mark.network


def test_the_drain_reports_the_stations_cpu_per_record(tmp_path: Path) -> None:
    summary = run_sync_bench(2000, workdir=tmp_path, batch_size=200, timeout_s=120)
    assert summary["exactly_once"], summary["problems"]
    assert summary["acked"] == summary["stored"] == 2000
    # CPU time of the station's process over the drain, shared by 2,000 records: more than nothing,
    # and no more than the drain's wall time (rounded to the ms) on every core of the machine.
    cpu_s = summary["station_cpu_us_per_record"] * 2000 / 1e6
    assert 0 < cpu_s <= (summary["drain_s"] + 0.001) * (os.cpu_count() or 1)
