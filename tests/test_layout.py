"""The import rule of the README's layout section, read from the source: arrows point one way.

``prescreen.core`` imports nothing else of prescreen; ``drivers``, ``sync`` and ``models`` import only
``core`` and themselves; everything else may import anything below it. The check parses every
module (imports inside functions count too: a lazy import is still a dependency).
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
FOLDERS = {
    "agent": "prescreen",
    "drivers": "prescreen.drivers",
    "models": "prescreen.models",
    "sync": "prescreen.sync",
}
# What each layer may import besides itself.
ALLOWED = {
    "prescreen.core": ("prescreen.core", "prescreen._version"),
    "prescreen.drivers": ("prescreen.drivers", "prescreen.core"),
    "prescreen.sync": ("prescreen.sync", "prescreen.core", "prescreen._version"),
    "prescreen.models": ("prescreen.models", "prescreen.core"),
}


def module_name(path: Path) -> str:
    folder, *rest = path.relative_to(ROOT).with_suffix("").parts
    parts = [FOLDERS[folder], *rest]
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def imported_modules(path: Path, module: str = "") -> set[str]:
    """Every prescreen module ``path`` imports, ``from a import b`` counted as ``a.b``; relative
    imports (``from ..packing import station``) are resolved against ``module``'s package."""
    package = module.split(".")[:-1] if path.name != "__init__.py" else module.split(".")
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package[: len(package) - (node.level - 1)]
                base = ".".join([*anchor, base] if base else anchor)
            found.update(f"{base}.{alias.name}" for alias in node.names)
    return {name for name in found if name == "prescreen" or name.startswith("prescreen.")}


def layer_of(module: str) -> str | None:
    return next((layer for layer in ALLOWED if module == layer or module.startswith(layer + ".")), None)


def allowed(layer: str, target: str) -> bool:
    """The rule itself: ``target`` is in one of the packages ``layer`` may import."""
    return any(target == ok or target.startswith(ok + ".") for ok in ALLOWED[layer])


def violations() -> list[str]:
    found = []
    for folder in FOLDERS:
        for path in sorted((ROOT / folder).rglob("*.py")):
            module = module_name(path)
            layer = layer_of(module)
            if layer is None:
                continue
            for target in sorted(imported_modules(path, module)):
                if not allowed(layer, target):
                    found.append(f"{module} imports {target}")
    return found


# Arrows still pointing the wrong way while issue 19 removes them; the list may only shrink.
KNOWN_DEBT: set[str] = set()  # wrong arrows still to fix (none left)


def test_every_import_points_down_the_layers() -> None:
    assert set(violations()) - KNOWN_DEBT == set()


@pytest.mark.parametrize(
    ("module", "source", "expected"),
    [
        ("prescreen.sync.x", "from prescreen.packing.station import Station\n", 1),
        ("prescreen.sync.x", "def f():\n    from prescreen.ops import config\n", 1),
        ("prescreen.drivers.x", "from prescreen.core.errors import FrameError\n", 0),
        ("prescreen.core.x", "import prescreen.risk.rules\n", 1),
        ("prescreen.sync.x", "from ..packing import station\n", 1),
        ("prescreen.sync.x", "from . import topics\n", 0),
        ("prescreen.models.x", "from prescreen.core_extra import y\n", 1),
    ],
)
def test_the_check_sees_a_wrong_arrow(module: str, source: str, expected: int, tmp_path: Path) -> None:
    """The reader finds top-level and function-level imports (a test that can fail)."""
    path = tmp_path / "x.py"
    path.write_text(source)
    layer = layer_of(module)
    assert layer is not None
    wrong = [t for t in imported_modules(path, module) if not allowed(layer, t)]
    assert len(wrong) == expected


def test_the_receiver_side_runs_on_core_and_sync_alone() -> None:
    """Importing every sync module (receiver, store, labels, customs sender, JetStream) loads no
    module of the station: a customs site can run the receiver without the station's code."""
    indebted = {debt.split()[0] for debt in KNOWN_DEBT}  # checked once their wrong arrows are gone
    modules = sorted(
        p.stem
        for p in (ROOT / "sync").glob("*.py")
        if p.stem != "__init__" and f"prescreen.sync.{p.stem}" not in indebted
    )
    code = (
        "import importlib, sys\n"
        f"for name in {modules!r}:\n"
        "    importlib.import_module('prescreen.sync.' + name)\n"
        "print('\\n'.join(m for m in sys.modules if m.startswith('prescreen')))\n"
    )
    loaded = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    outside = [
        m
        for m in loaded.split()
        if not m.startswith(("prescreen.core", "prescreen.sync", "prescreen._version"))
    ]
    assert outside == ["prescreen"]
