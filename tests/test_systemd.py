"""The systemd units as IT installs them: verified by systemd's own tools, exposure printed."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

UNITS = Path(__file__).parents[1] / "systemd"
MAX_EXPOSURE = 2.0


def installed_copy(unit: str, tmp_path: Path) -> Path:
    """The unit with ExecStart pointing at this virtualenv's prescreen (verify checks it exists)."""
    prescreen = Path(sys.executable).with_name("prescreen")
    text = (UNITS / unit).read_text().replace("/usr/local/bin/prescreen", str(prescreen))
    copy = tmp_path / unit
    copy.write_text(text)
    return copy


def systemd_analyze(*args: str) -> subprocess.CompletedProcess[str]:
    tool = shutil.which("systemd-analyze") or "/usr/bin/systemd-analyze"
    return subprocess.run([tool, *args], capture_output=True, text=True, timeout=60, check=False)


@pytest.mark.parametrize(
    ("unit", "verify_as"),
    [
        ("prescreen-agent.service", "prescreen-agent.service"),
        ("prescreen-agent@.service", "prescreen-agent@station-02.service"),
        ("prescreen-receiver.service", "prescreen-receiver.service"),
    ],
)
def test_unit_verifies_cleanly(unit: str, verify_as: str, tmp_path: Path) -> None:
    copy = installed_copy(unit, tmp_path)
    target = copy if verify_as == unit else copy.with_name(verify_as)
    if target != copy:
        target.symlink_to(copy.name)
    result = systemd_analyze("verify", str(target))
    assert result.returncode == 0, result.stderr
    assert "Unknown key" not in result.stderr
    assert "Unknown lvalue" not in result.stderr


@pytest.mark.parametrize("unit", ["prescreen-agent.service", "prescreen-receiver.service"])
def test_security_exposure_is_at_most_2(unit: str, tmp_path: Path) -> None:
    result = systemd_analyze("security", "--offline=true", str(installed_copy(unit, tmp_path)))
    match = re.search(r"Overall exposure level for \S+: (\d+\.\d+)", result.stdout)
    assert match, result.stdout + result.stderr
    exposure = float(match.group(1))
    print(f"{unit}: systemd-analyze security exposure {exposure}")
    assert exposure <= MAX_EXPOSURE


def test_agent_unit_has_what_the_agent_relies_on() -> None:
    text = (UNITS / "prescreen-agent.service").read_text()
    for line in (
        "Type=notify",
        "WatchdogSec=",
        "SupplementaryGroups=dialout",
        "StateDirectory=prescreen",
        "ConfigurationDirectory=prescreen",
        "ProtectSystem=strict",
        "NoNewPrivileges=yes",
        "CapabilityBoundingSet=\n",
        "SystemCallFilter=@system-service",
        "RestrictAddressFamilies=",
    ):
        assert line in text, line


def test_udev_rules_give_stable_names_to_both_devices() -> None:
    rules = [
        line
        for line in (UNITS / "99-prescreen-devices.rules").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]
    names = {re.search(r'SYMLINK\+="([^"]+)"', line).group(1) for line in rules}  # type: ignore[union-attr]
    assert names == {"prescreen-scale", "prescreen-scanner"}
    for line in rules:
        assert 'SUBSYSTEM=="tty"' in line
        assert 'GROUP="dialout"' in line
        assert 'MODE="0660"' in line
