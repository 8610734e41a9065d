"""Setting a station up: the example config, config check, trust-store tooling, and the small CLI
things a new user trips on (no command, a closed pipe, GS in a scan, a refused broker)."""

from __future__ import annotations

import dataclasses
import json
import re
import subprocess
import sys
from pathlib import Path

import pytest
from prescreen.commands.main import main
from prescreen.core.signing import DeviceKey, TrustStore
from prescreen.ops import config as cfg
from prescreen.ops.configdoc import MEANING, example


def prescreen(*args: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "prescreen", *args],
        input=stdin,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def every_key() -> list[str]:
    return [
        f"{section.name}.{key.name}"
        for section in dataclasses.fields(cfg.Config)
        for key in dataclasses.fields(getattr(cfg.Config(), section.name))
    ]


def test_every_key_has_a_meaning_and_no_meaning_is_for_a_key_that_is_gone() -> None:
    assert sorted(MEANING) == sorted(every_key())


@pytest.mark.slow
def test_the_example_uncommented_is_a_valid_config_of_the_defaults(tmp_path: Path) -> None:
    text = example()
    for key in every_key():
        name = key.split(".")[1]
        assert re.search(rf"^(#{name} = |# {name}: unset by default$)", text, re.MULTILINE), key
    assert "# REQUIRED to run a station: uncomment and set\n#filer_code = " in text
    assert "(one of: mt-sics, nci, toledo-8213, toledo-continuous)" in text  # bounds from the schema
    path = tmp_path / "agent.toml"
    path.write_text(re.sub(r"^#(\w+ = )", r"\1", text, flags=re.MULTILINE))
    with pytest.raises(cfg.ConfigError, match=r"the broker link is not secure: no TLS \(cafile\)"):
        cfg.load_station(path, environ={})  # the defaults are no way to run a station
    loaded = cfg.load_station(path, environ={"PRESCREEN__SYNC__ALLOW_INSECURE": "true"})
    assert loaded == cfg.replace(cfg.Config(), "sync", allow_insecure=True)

    as_printed = tmp_path / "example.toml"
    as_printed.write_text(text)
    assert cfg.load(as_printed, environ={}) == cfg.Config()  # comments only: all defaults
    with pytest.raises(cfg.ConfigError, match=r"'station\.filer_code' is required to run a station"):
        cfg.load_station(as_printed, environ={})


@pytest.mark.slow
def test_config_example_and_check_on_the_command_line(tmp_path: Path) -> None:
    printed = prescreen("config", "example")
    assert printed.returncode == 0
    assert printed.stdout == example()
    path = tmp_path / "agent.toml"
    uncommented = printed.stdout.replace('#filer_code = "DEMO"', 'filer_code = "ACME01"')
    path.write_text(uncommented.replace("#allow_insecure = false", "allow_insecure = true"))
    assert prescreen("config", "check", str(path)).returncode == 0
    path.write_text('[station]\nfiler_code = "X"\n[scale]\nsettle_readings = -3\n')
    refused = prescreen("config", "check", str(path))
    assert refused.returncode == 1
    assert (
        refused.stdout.strip()
        == f"FAIL {path}:4: 'scale.settle_readings' must be at least 1 and at most 100, got -3"
    )


def station_entry(tmp_path: Path, device: str) -> dict[str, str]:
    return DeviceKey.load_or_create(tmp_path / f"{device}.key").trust_entry("site-01", device)


@pytest.mark.slow
def test_trust_add_list_remove_builds_a_file_the_receiver_loads(tmp_path: Path) -> None:
    store = tmp_path / "trust.json"
    first, second = station_entry(tmp_path, "station-01"), station_entry(tmp_path, "station-02")
    added = prescreen("trust", "add", "--file", str(store), stdin=json.dumps(first))
    assert added.returncode == 0, added.stderr
    assert added.stdout.strip() == f"added key {first['key_id']} of site-01/station-01"
    entry_file = tmp_path / "entry.json"
    entry_file.write_text(json.dumps(second))
    assert prescreen("trust", "add", "--file", str(store), str(entry_file)).returncode == 0
    again = prescreen("trust", "add", "--file", str(store), str(entry_file))
    assert again.stdout.startswith(f"replaced key {second['key_id']}")  # idempotent, no duplicate
    assert len(TrustStore.load(store)) == 2

    listed = prescreen("trust", "list", "--file", str(store))
    assert f"{first['key_id']}  site-01/station-01" in listed.stdout
    assert "2 key(s)" in listed.stdout
    removed = prescreen("trust", "remove", "--file", str(store), "site-01/station-01")
    assert removed.stdout.strip() == f"removed key {first['key_id']} of site-01/station-01"
    assert [e["device_id"] for e in json.loads(store.read_text())["keys"]] == ["station-02"]
    missing = prescreen("trust", "remove", "--file", str(store), "site-01/station-09")
    assert missing.returncode == 1
    assert "no key 'site-01/station-09'" in missing.stderr


@pytest.mark.slow
def test_trust_errors_name_the_expected_format(tmp_path: Path) -> None:
    """The old way (`key show >> entries.json`) made a file the receiver rejected with KeyError('keys')."""
    entry = station_entry(tmp_path, "station-01")
    appended = tmp_path / "entries.json"
    appended.write_text(json.dumps(entry) + "\n")
    listed = prescreen("trust", "list", "--file", str(appended))
    assert listed.returncode == 1
    assert 'no "keys" list); expected {"keys": [one `prescreen key show` entry per station]}' in listed.stderr
    with pytest.raises(cfg.ConfigError, match=r'expected \{"keys": \[one `prescreen key show` entry'):
        TrustStore.load(appended)
    forged = {**entry, "key_id": "0" * len(entry["key_id"])}
    bad = prescreen("trust", "add", "--file", str(tmp_path / "t.json"), stdin=json.dumps(forged))
    assert bad.returncode == 1
    assert "trust entry does not check" in bad.stderr
    assert not (tmp_path / "t.json").exists()
    partial = prescreen("trust", "add", "--file", str(tmp_path / "t.json"), stdin='{"key_id": "x"}')
    assert "trust entry without site_id, device_id, public_key" in partial.stderr


@pytest.mark.slow
def test_key_show_adds_the_station_to_a_trust_file(tmp_path: Path) -> None:
    conf = tmp_path / "agent.toml"
    conf.write_text(f'[station]\ndevice_id = "station-05"\nkey_path = "{tmp_path / "device.key"}"\n')
    store = tmp_path / "trust.json"
    result = prescreen("key", "show", "--config", str(conf), "--trust-file", str(store))
    assert result.returncode == 0, result.stderr
    (entry,) = json.loads(store.read_text())["keys"]
    assert entry["device_id"] == "station-05"
    assert entry["key_id"] == DeviceKey.load_or_create(tmp_path / "device.key").key_id


def test_no_command_lists_the_commands(capsys: pytest.CaptureFixture[str]) -> None:
    assert main([]) == 2
    err = capsys.readouterr().err
    for command in ("run", "doctor", "status", "sim", "config", "trust", "demo"):
        assert re.search(rf"^\s+{command}\s", err, re.MULTILINE), command


@pytest.mark.slow
def test_a_closed_pipe_ends_quietly(tmp_path: Path) -> None:
    """`prescreen doctor | head -1`, here `prescreen config example | head -1`: no traceback."""
    result = subprocess.run(
        f"{sys.executable} -m prescreen config example | head -1",
        shell=True,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.stdout.startswith("# prescreen agent configuration")
    assert "Traceback" not in result.stderr
    assert "BrokenPipeError" not in result.stderr


@pytest.mark.slow
def test_decode_barcode_keeps_a_group_separator_inside_a_scan() -> None:
    scan = "]C1010950600013435210ABC123\x1d3103001250"
    result = prescreen("decode", "barcode", stdin=scan + "\r\n1Z5R89390357567127\n")
    first, second = (json.loads(line) for line in result.stdout.splitlines())
    assert first["gs1"] == {"01": "09506000134352", "10": "ABC123", "3103": "001250"}
    assert second["tracking_number"] == "1Z5R89390357567127"


@pytest.mark.slow
def test_doctor_says_connection_refused_at_once(tmp_path: Path) -> None:
    from prescreen.sync.broker import free_port

    orders = tmp_path / "orders.ndjson"
    orders.write_text("")
    path = tmp_path / "agent.toml"
    path.write_text(
        f'[station]\nfiler_code = "T"\n[scanner]\nurl = "sim://scanner"\n[scale]\nurl = "sim://mt-sics"\n'
        f'[orders]\npath = "{orders}"\n[outbox]\npath = "{tmp_path / "o.db"}"\n'
        f"[sync]\nport = {free_port()}\nallow_insecure = true\n[http]\nport = 0\n"
    )
    result = prescreen("doctor", "--config", str(path))
    assert result.returncode == 1
    # said by the TCP refusal itself, not by waiting out the MQTT connect ("within 5 s")
    assert "no TCP connection to 127.0.0.1:" in result.stdout
    assert "Connection refused" in result.stdout
    assert "within 5 s" not in result.stdout


def test_the_documented_orders_examples_are_read_as_documented(tmp_path: Path) -> None:
    """docs/orders-format.md shows both formats; its examples must be what the station reads."""
    from prescreen.packing.orders import read_orders, to_record

    doc = (Path(__file__).resolve().parent.parent / "docs" / "orders-format.md").read_text()
    blocks = dict(re.findall(r"```(json|csv)\n(.*?)```", doc, re.DOTALL))
    (tmp_path / "orders.ndjson").write_text(blocks["json"])
    (tmp_path / "orders.csv").write_text(blocks["csv"])
    from_ndjson = read_orders(tmp_path / "orders.ndjson")
    from_csv = read_orders(tmp_path / "orders.csv")
    assert set(from_ndjson) == {"1Z5R89390357567127", "106141411234567897"}
    assert set(from_csv) == {"1Z5R89390357567127"}
    full, row = to_record(from_ndjson["1Z5R89390357567127"]), to_record(from_csv["1Z5R89390357567127"])
    for field in ("currency", "declared_weight_kg"):
        assert full[field] == row[field] is not None
    assert full["items"][0]["hts_code"] == row["items"][0]["hts_code"] == "8518300000"
    assert full["consignee"]["address"]["country"] == row["consignee"]["address"]["country"] == "US"
    assert row["seller"]["name"] == "Shenzhen Bright Star Trading"


@pytest.mark.slow
def test_the_demo_says_where_its_page_lives_and_its_scorecard_command_works(tmp_path: Path) -> None:
    demo = prescreen("demo", "--parcels", "5", "--workdir", str(tmp_path))
    assert demo.returncode == 0, demo.stderr
    assert "(live while the demo runs: add --pace 1 to watch it)" in demo.stderr
    (again,) = [line for line in demo.stdout.splitlines() if line.startswith("  again: ")]
    command = again.removeprefix("  again: prescreen ").split()
    assert command[:3] == ["report", "sellers", "--outbox"]
    assert command[3] == f"{tmp_path}/outbox.db"
    report = prescreen(*command)
    assert report.returncode == 0, report.stderr
    assert report.stdout.strip()
