"""Secure defaults: files with personal data or secrets are 0600 wherever the agent runs, and a
station does not run on a broker link anyone on the network could use, unless told it is a bench."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from prescreen.packing.outbox import Outbox
from prescreen.packing.wms import OrderCache
from prescreen.sync.store import open_store
from record_fixtures import record


@pytest.fixture
def shell_umask() -> Iterator[None]:
    """The umask of a login shell (022), not systemd's UMask=0077: files must be private anyway."""
    before = os.umask(0o022)
    yield
    os.umask(before)


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_outbox_receiver_store_and_order_cache_are_created_0600(tmp_path: Path, shell_umask: None) -> None:
    outbox = Outbox(tmp_path / "state" / "outbox.db")
    outbox.append(record)
    store = open_store(tmp_path / "receiver.db")
    cache = OrderCache(tmp_path / "orders-cache.db", ttl_s=60)
    try:
        for name in ("state/outbox.db", "state/outbox.db-wal", "receiver.db", "receiver.db-wal"):
            assert _mode(tmp_path / name) == 0o600, name
        for name in ("orders-cache.db",):
            assert _mode(tmp_path / name) == 0o600, name
    finally:
        outbox.close()
        store.close()
        cache.close()


def test_an_outbox_readable_by_others_is_tightened(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    Outbox(tmp_path / "outbox.db").close()
    (tmp_path / "outbox.db").chmod(0o644)  # as created by an older version outside systemd
    Outbox(tmp_path / "outbox.db").close()
    assert _mode(tmp_path / "outbox.db") == 0o600
    assert "readable by others" in caplog.text


@pytest.mark.slow
def test_run_refuses_a_broker_link_without_tls_login_and_receiver_keys(tmp_path: Path) -> None:
    config = tmp_path / "agent.toml"
    config.write_text('[station]\nfiler_code = "ACME01"\n[sync]\nhost = "127.0.0.1"\n')
    command = [sys.executable, "-m", "prescreen", "run", "--config", str(config)]
    result = subprocess.run(command, capture_output=True, text=True, check=False, timeout=60)
    assert result.returncode == 1
    assert "the broker link is not secure: no TLS (cafile); no broker login" in result.stderr
    assert "acks not authenticated (receiver_keys)" in result.stderr
    assert "allow_insecure = true" in result.stderr
    assert not (tmp_path / "outbox.db").exists()  # refused before anything was created
