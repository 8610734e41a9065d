"""An agent whose start fails part-way closes what it had opened (the outbox, its seq file beside
the device key, the devices): a service manager or a test retrying the start must not pile up
descriptors, ptys and reader threads."""

from __future__ import annotations

import gc
import os
import threading
from pathlib import Path

import pytest
from prescreen.core.errors import PrescreenError, UnsupportedDevice
from prescreen.ops import config as cfg
from prescreen.packing.app import Agent


def _open_files(*prefixes: str) -> set[str]:
    """What this process holds open under ``prefixes`` (and every pty), by path."""
    found = set()
    for fd in os.listdir("/proc/self/fd"):
        try:
            target = os.readlink(f"/proc/self/fd/{fd}")
        except OSError:  # closed meanwhile (the listing's own descriptor)
            continue
        if target.startswith((*prefixes, "/dev/pts/", "/dev/ptmx")):
            found.add(target)
    return found


def _config(tmp_path: Path, scanner_url: str) -> cfg.Config:
    (tmp_path / "orders.ndjson").write_text("")
    config = cfg.replace(cfg.Config(), "scale", url="sim://mt-sics", protocol="mt-sics")
    config = cfg.replace(config, "scanner", url=scanner_url)
    config = cfg.replace(config, "orders", path=str(tmp_path / "orders.ndjson"))
    config = cfg.replace(config, "outbox", path=str(tmp_path / "outbox.db"))
    config = cfg.replace(config, "http", port=0)
    return cfg.replace(config, "sync", allow_insecure=True)


def _scanner_that_fails(*args: object, **kwargs: object) -> object:
    """A scanner driver that cannot open its device (the edge of the world)."""
    raise UnsupportedDevice("no scanner on /dev/ttyACM0")


@pytest.mark.parametrize("where", ["the scanner", "the broker's TLS files"])
def test_a_start_that_fails_part_way_closes_the_outbox_seq_file_and_devices(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, where: str
) -> None:
    config = _config(tmp_path, "sim://scanner")
    if where == "the scanner":  # the scale is open by then
        monkeypatch.setattr("prescreen.packing.app.open_scanner", _scanner_that_fails)
        words = "no scanner on"
    else:  # the outbox and both devices are open by then
        config = cfg.replace(config, "sync", cafile=str(tmp_path / "moved-ca.pem"))
        words = "TLS settings unusable"
    before_files, before_threads = _open_files(str(tmp_path)), set(threading.enumerate())
    with pytest.raises(PrescreenError, match=words):
        Agent(config)
    gc.collect()  # only what nothing closed is left
    assert (tmp_path / "outbox.db").exists()
    assert (tmp_path / "device.key.seq").exists()  # opened, then closed again
    assert _open_files(str(tmp_path)) - before_files == set()
    alive = [t.name for t in set(threading.enumerate()) - before_threads if t.is_alive()]
    assert alive == []
