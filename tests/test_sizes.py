"""Small modules with one job: no module over 400 lines, no function over 60 (the developers' rules).

Read from the source of every module the package installs (``agent``, ``drivers``, ``sync``,
``models``). A function's lines run from its ``def`` to its last line, docstring and nested
functions included; methods and nested functions are measured each on their own as well.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
FOLDERS = ("agent", "drivers", "sync", "models")
MAX_MODULE_LINES = 400
MAX_FUNCTION_LINES = 60

# What is still over while its owner splits it, at its size today: an entry may only go (when it
# is split) or shrink; the test fails on anything over that is not here, or grew.
KNOWN_OVER: dict[str, int] = {}


def sizes(root: Path = ROOT, folders: tuple[str, ...] = FOLDERS) -> dict[str, int]:
    """Lines of every module, and of every function as ``path::Class.function``."""
    found: dict[str, int] = {}
    for folder in folders:
        for path in sorted((root / folder).rglob("*.py")):
            text = path.read_text(encoding="utf-8")
            name = path.relative_to(root).as_posix()
            found[name] = len(text.splitlines())
            found.update(_functions(ast.parse(text), f"{name}::"))
    return found


def _functions(node: ast.AST, prefix: str) -> dict[str, int]:
    found: dict[str, int] = {}
    for child in ast.iter_child_nodes(node):
        if isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            name = f"{prefix}{child.name}"
            if not isinstance(child, ast.ClassDef):
                found[name] = (child.end_lineno or child.lineno) - child.lineno + 1
            found.update(_functions(child, f"{name}."))
    return found


def over(measured: dict[str, int]) -> dict[str, int]:
    """The modules and functions over their limit."""
    return {
        name: lines
        for name, lines in measured.items()
        if lines > (MAX_FUNCTION_LINES if "::" in name else MAX_MODULE_LINES)
    }


def test_no_module_or_function_over_its_limit_beyond_the_known_ones() -> None:
    found = over(sizes())
    new = {name: lines for name, lines in found.items() if name not in KNOWN_OVER}
    grown = {name: (KNOWN_OVER[name], n) for name, n in found.items() if n > KNOWN_OVER.get(name, n)}
    assert new == {}, "split these (modules <= 400 lines, functions <= 60)"
    assert grown == {}, "a known one grew (listed size, now)"


def test_the_known_list_only_shrinks() -> None:
    """An entry that is no longer over its limit is taken off the list (so it cannot grow back)."""
    measured = sizes()
    done = [name for name in KNOWN_OVER if name not in over(measured)]
    assert done == [], "no longer over the limit: remove from KNOWN_OVER"
    shrunk = {
        name: (listed, measured[name]) for name, listed in KNOWN_OVER.items() if measured[name] < listed
    }
    assert shrunk == {}, "smaller now: write the new size in KNOWN_OVER (listed, now)"


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ("x = 1\n" * 401, {"agent/m.py": 401}),
        ("def f():\n" + "    x = 1\n" * 60, {"agent/m.py::f": 61}),
        ("class C:\n    def g(self):\n" + "        x = 1\n" * 60, {"agent/m.py::C.g": 61}),
        ("def f():\n" + "    x = 1\n" * 59, {}),
    ],
)
def test_the_check_sees_what_is_too_long(source: str, expected: dict[str, int], tmp_path: Path) -> None:
    """The measure finds a long module, function and method, and passes one at the limit (it can fail)."""
    (tmp_path / "agent").mkdir()
    (tmp_path / "agent" / "m.py").write_text(source)
    assert over(sizes(tmp_path, ("agent",))) == expected
