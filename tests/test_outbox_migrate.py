"""``prescreen outbox migrate``, which the package's post-install script runs once on upgrade."""

from __future__ import annotations

import shutil
import sqlite3
from pathlib import Path

import pytest
from prescreen.commands.main import main
from prescreen.packing.outbox import Outbox
from prescreen.packing.outbox_schema import SCHEMA_VERSION

FIXTURE = Path(__file__).parent / "fixtures" / "outbox-v1.db"


def station_config(tmp_path: Path, outbox: Path) -> str:
    config = tmp_path / "agent.toml"
    config.write_text(f'[outbox]\npath = "{outbox}"\n')
    return str(config)


def schema_of(path: Path) -> int:
    with sqlite3.connect(path) as conn:
        return int(conn.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()[0])


def test_a_v1_outbox_is_migrated_once_and_keeps_its_pending_records(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    outbox = tmp_path / "outbox.db"
    shutil.copy(FIXTURE, outbox)
    config = station_config(tmp_path, outbox)
    assert schema_of(outbox) == 1

    assert main(["outbox", "migrate", "--config", config]) == 0
    assert f"outbox schema v{SCHEMA_VERSION} (migrated from v1)" in capsys.readouterr().out
    assert schema_of(outbox) == SCHEMA_VERSION

    assert main(["outbox", "migrate", "--config", config]) == 0
    assert "(already current)" in capsys.readouterr().out
    opened = Outbox(outbox)
    try:
        assert opened.counts() == {"acked": 3, "pending": 5}
    finally:
        opened.close()


def test_a_station_without_an_outbox_gets_none_created(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    outbox = tmp_path / "outbox.db"
    assert main(["outbox", "migrate", "--config", station_config(tmp_path, outbox)]) == 0
    assert "no outbox yet" in capsys.readouterr().out
    assert not outbox.exists()


def test_an_outbox_from_a_newer_agent_fails_the_migration_with_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    outbox = tmp_path / "outbox.db"
    shutil.copy(FIXTURE, outbox)
    outbox.chmod(0o600)  # as the agent keeps it (else its tightening is a second line)
    with sqlite3.connect(outbox) as conn:
        conn.execute("UPDATE meta SET value = '99' WHERE key = 'schema_version'")
    assert main(["outbox", "migrate", "--config", station_config(tmp_path, outbox)]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert "newer than this agent understands" in err
    assert schema_of(outbox) == 99
