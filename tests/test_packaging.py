"""The wheel installs one import package, ``prescreen``, with its data files."""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path


def test_wheel_contains_only_the_prescreen_package(tmp_path: Path) -> None:
    root = Path(__file__).resolve().parents[1]
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(tmp_path), str(root)],
        check=True,
        timeout=300,
    )
    (wheel,) = tmp_path.glob("prescreen_agent-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    top_level = {n.split("/")[0] for n in names if not n.startswith("prescreen_agent-")}
    assert top_level == {"prescreen"}
    for required in (
        "prescreen/py.typed",
        "prescreen/schemas/record-v1.schema.json",
        "prescreen/schemas/record-v2.schema.json",
        "prescreen/data/reference.json",
        "prescreen/drivers/scale_mtsics.py",
        "prescreen/sync/receiver.py",
        "prescreen/models/runner.py",
    ):
        assert required in names
    assert not any(n.startswith("prescreen/tests") for n in names)
