"""`make bench` in miniature: every figure is measured with tiny sizes, so the benchmark cannot rot.

The figures here are not compared with the targets (tiny runs on a noisy machine); only that each
is measured, has the right key, and that no record was lost or stored twice.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

RUN = Path(__file__).with_name("run.py")


def test_every_target_is_measured(tmp_path: Path) -> None:
    out = tmp_path / "bench-results.json"
    result = subprocess.run(
        [sys.executable, str(RUN), "--smoke", "--out", str(out)],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    results = json.loads(out.read_text())
    targets = (Path(__file__).parents[2] / ".." / "shared" / "docs" / "targets.md").resolve()
    expected = {
        "scan_to_verdict_p99_ms", "serial_frames_per_s", "inference_us", "screen_us", "model_bytes",
        "replay_parcels_per_s", "drain_records_per_s", "reconnect_to_first_ack_s", "rss_mb",
        "startup_to_ready_s", "duplicates_sent_after_kill9", "lost_after_kill9",
    }  # fmt: skip
    if targets.exists():
        assert expected == {
            line.split("`")[1] for line in targets.read_text().splitlines() if line.startswith("| `")
        }
    assert set(results) == expected
    for figure in results.values():
        assert set(figure) == {"value", "target", "unit"}
        assert isinstance(figure["value"], (int, float))
    assert results["lost_after_kill9"]["value"] == 0
    assert results["model_bytes"]["value"] > 1000
    assert "figure" in result.stdout
