"""``prescreen version`` and ``--help`` load no numpy, SQLite helpers, drivers, paho or model runtime.

Every command imports its heavy modules when it runs (issue 19 item 4): a box that only asks the
agent its version or its commands should not pay for the model runtime or the serial drivers, and a
stray top-level import in one command module would put them back in every command. Read from
``python -X importtime``, which lists every module the interpreter really imported.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

# A module counts when its name is one of these or starts with one of them and a dot.
HEAVY = (
    "numpy",
    "sqlite_utils",
    "paho",
    "tflite_runtime",
    "ai_edge_litert",
    "flatbuffers",  # the learn extra: only where a model is written
    "tflite",
    "prescreen.drivers",
    "prescreen.models",
)


def imported(*args: str) -> list[str]:
    """The modules ``python -X importtime ARGS`` imported, in the order it reports them."""
    result = subprocess.run(
        [sys.executable, "-X", "importtime", *args], capture_output=True, text=True, timeout=120, check=False
    )
    assert result.returncode == 0, result.stderr[-2000:]
    names = []
    for line in result.stderr.splitlines():
        if line.startswith("import time:") and "|" in line:
            name = line.rsplit("|", 1)[1].strip()
            if name != "imported package":  # the header line
                names.append(name)
    return names


def heavy(modules: list[str]) -> list[str]:
    return [m for m in modules if any(m == h or m.startswith(h + ".") for h in HEAVY)]


@pytest.mark.parametrize("command", [("version",), ("--help",)], ids=" ".join)
def test_the_light_commands_import_nothing_heavy(command: tuple[str, ...]) -> None:
    modules = imported("-m", "prescreen", *command)
    assert "prescreen.commands.main" in modules  # the CLI was really imported (a walk over nothing passes)
    assert heavy(modules) == []


def test_the_check_sees_a_heavy_import() -> None:
    """The same reading of the same report finds a heavy module when one is imported (it can fail)."""
    modules = imported("-c", "import prescreen.commands.main, prescreen.drivers.registry")
    assert "prescreen.drivers.registry" in heavy(modules)


@pytest.mark.parametrize(
    ("command", "listed"),
    [
        ("export --outbox x.db --format nope", "'us-informal'"),
        ("outcome 1Z5R89390357567127 nope", "'returned_to_seller'"),
        ("downlink send --site s --device d --type outcome --key k --outcome nope", "'seized'"),
    ],
    ids=["export --format", "outcome OUTCOME", "downlink send --outcome"],
)
def test_options_read_lazily_still_refuse_a_wrong_value(
    command: str, listed: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """Values read from their owner when parsed are checked as argparse checks any choice."""
    from prescreen.commands.main import main

    with pytest.raises(SystemExit) as exit_info:
        main(command.split(" "))
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert "invalid choice: 'nope'" in err
    assert listed in err


# What ``prescreen run`` never uses (issue 20, resident memory): the other audiences' commands and
# what their option defaults import, the device simulators (only for sim:// URLs), biip (its
# company-prefix trie; its AI table is read as data) and cryptography (Ed25519 is PyNaCl's).
NOT_FOR_RUN = (
    "prescreen.commands.compliance",
    "prescreen.commands.customs",
    "prescreen.commands.records",
    "prescreen.commands.screening",
    "prescreen.commands.sim",
    "prescreen.commands.ops",
    "prescreen.sync.shadow",
    "prescreen.sync.labels",
    "prescreen.drivers.sim",
    "prescreen.sim",
    "biip",
    "cryptography",
)


def test_the_agent_imports_nothing_it_does_not_run(tmp_path: Path) -> None:
    """``prescreen run`` up to reading its config (which is missing here, so it stops there)."""
    result = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "prescreen", "run", "--config", str(tmp_path / "no.toml")],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 1, result.stderr[-2000:]
    modules = [line.rsplit("|", 1)[1].strip() for line in result.stderr.splitlines() if "|" in line]
    assert "prescreen.packing.app" in modules  # the agent's own imports really ran
    assert [m for m in modules if any(m == n or m.startswith(n + ".") for n in NOT_FOR_RUN)] == []
