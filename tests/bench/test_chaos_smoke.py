"""`make chaos` in miniature: every fault scenario runs with real processes, and nothing is lost."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

CHAOS = Path(__file__).with_name("chaos.py")


@pytest.mark.slow
def test_every_fault_scenario_stores_each_committed_record_once() -> None:
    result = subprocess.run(
        [sys.executable, str(CHAOS), "--smoke"], capture_output=True, text=True, timeout=300, check=False
    )
    assert result.returncode == 0, result.stderr[-3000:]
    lines = [json.loads(line) for line in result.stdout.splitlines()]
    assert [r["scenario"] for r in lines] == [
        "kill9_agent",
        "broker_restart",
        "partition",
        "receiver_restart",
        "duplicates",
    ]
    for scenario in lines:
        assert scenario["exactly_once"], scenario["problems"]
        assert scenario["committed"] == scenario["stored"] == 600
        assert scenario["lost"] == scenario["rejected"] == 0
        assert scenario["all_acked"]
    by_name = {r["scenario"]: r for r in lines}
    # The copies reach the receiver first for records the uplink had not sent yet; those are then
    # acked from the copy and never sent again, so not every record arrives twice, but some do.
    assert by_name["duplicates"]["deduplicated"] > 0
    assert by_name["kill9_agent"]["resent"] is None  # the killed uplink's count died with it
    assert all(by_name[name]["resent"] is not None for name in by_name if name != "kill9_agent")
