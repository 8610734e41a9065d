"""The wheel installs one import package, ``prescreen``, with its data files."""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

import pytest


@pytest.mark.slow
def test_wheel_contains_only_the_prescreen_package(tmp_path: Path) -> None:
    root = Path(__file__).resolve().parents[1]
    built = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(tmp_path), str(root)],
        check=True,
        timeout=300,
        capture_output=True,
        text=True,
    )
    # Every install used to print setuptools' warnings (license table, data folders not packages).
    warnings = [
        line for line in built.stderr.splitlines() if "Warning" in line and "Location 'file" not in line
    ]
    assert not warnings, "\n".join(warnings)
    (wheel,) = tmp_path.glob("prescreen_agent-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    top_level = {n.split("/")[0] for n in names if not n.startswith("prescreen_agent-")}
    assert top_level == {"prescreen"}
    for required in (
        "prescreen/py.typed",
        "prescreen/core/schemas/record-v1.schema.json",
        "prescreen/core/schemas/record-v2.schema.json",
        "prescreen/risk/data/reference.json",
        "prescreen/risk/data/findings.toml",
        "prescreen/web/static/station.html",
        "prescreen/models/data/screening.json",
        "prescreen/drivers/scales/mtsics.py",
        "prescreen/sync/receiver.py",
        "prescreen/models/runner.py",
    ):
        assert required in names
    assert not any(n.startswith("prescreen/tests") for n in names)


def test_make_demo_installs_no_test_extras(tmp_path: Path) -> None:
    """The demo's virtualenv gets the agent, the embedded broker and the model writer of its learning
    loop (the learn extra), not pytest, mypy, playwright."""
    root = Path(__file__).resolve().parents[1]
    plan = subprocess.run(
        ["make", "-n", "-C", str(root), "demo", f"VENV={tmp_path / 'venv'}"],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    ).stdout
    installs = [line for line in plan.splitlines() if "pip install" in line and " -e " in line]
    assert installs == [f"{tmp_path / 'venv'}/bin/pip install --quiet -e '.[broker,learn]'"]
    test_plan = subprocess.run(
        ["make", "-n", "-C", str(root), "lint", f"VENV={tmp_path / 'venv'}"],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    ).stdout
    assert "-e '.[test,broker,learn]'" in test_plan  # the tests still get theirs
