from __future__ import annotations

from pathlib import Path

import pytest
from prescreen.core.errors import ConfigError
from prescreen.ops import config

GOOD = """
[station]
device_id = "bench-7"

[scale]
url = "/dev/ttyUSB0"
protocol = "nci"
settle_readings = 4

[sync]
port = 8883
ack_timeout_s = 5
"""


def test_valid_file_loads_with_defaults(tmp_path: Path) -> None:
    path = tmp_path / "agent.toml"
    path.write_text(GOOD)
    conf = config.load(path, environ={})
    assert conf.station.device_id == "bench-7"
    assert conf.scale.protocol == "nci"
    assert conf.scale.settle_readings == 4
    assert conf.sync.ack_timeout_s == 5.0
    assert conf.scanner.protocol == "line"  # default kept


def test_unknown_key_names_file_line_and_key(tmp_path: Path) -> None:
    path = tmp_path / "agent.toml"
    path.write_text(GOOD.replace("settle_readings = 4", "settle_readngs = 4"))
    with pytest.raises(ConfigError) as info:
        config.load(path, environ={})
    message = str(info.value)
    assert f"{path}:8:" in message
    assert "scale.settle_readngs" in message
    assert "settle_readings" in message  # the list of what was expected


def test_wrong_type_says_what_was_expected(tmp_path: Path) -> None:
    path = tmp_path / "agent.toml"
    path.write_text(GOOD.replace("port = 8883", 'port = "8883"'))
    with pytest.raises(ConfigError, match=r"agent.toml:11: 'sync.port' must be an integer, got str"):
        config.load(path, environ={})


def test_bool_is_not_an_integer() -> None:
    with pytest.raises(ConfigError, match="must be an integer"):
        config.parse("[sync]\nport = true\n", environ={})


def test_unknown_section() -> None:
    with pytest.raises(ConfigError, match=r"unknown section \[scales\]"):
        config.parse("[scales]\nurl = 'x'\n", environ={})


def test_invalid_toml_names_the_file(tmp_path: Path) -> None:
    path = tmp_path / "broken.toml"
    path.write_text("[station\n")
    with pytest.raises(ConfigError, match=r"broken\.toml: not valid TOML"):
        config.load(path, environ={})


def test_missing_file() -> None:
    with pytest.raises(ConfigError, match="cannot read config"):
        config.load("/nonexistent/agent.toml", environ={})


def test_environment_overrides_file() -> None:
    conf = config.parse(
        GOOD, environ={"PRESCREEN__SYNC__PORT": "1884", "PRESCREEN__STATION__SITE_ID": "dock-2"}
    )
    assert conf.sync.port == 1884
    assert conf.station.site_id == "dock-2"


def test_environment_override_is_validated_too() -> None:
    with pytest.raises(ConfigError, match=r"'sync\.port' must be an integer"):
        config.parse(GOOD, environ={"PRESCREEN__SYNC__PORT": "eighty"})


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("[screening]\nweight_tolerance_pct = nan\n", r"<config>:2: 'screening.weight_tolerance_pct' must"),
        ("[screening]\nweight_tolerance_pct = inf\n", r"'screening.weight_tolerance_pct' must be a finite"),
        ("[screening]\nweight_tolerance_pct = 1e9\n", r"pct' must be at least 0 and at most 100"),
        ("[screening]\nreview_score = 0\n", r"'screening.review_score' must be above 0"),
        ("[sync]\nport = 70000\n", r"'sync.port' must be at least 1 and at most 65535, got 70000"),
        ("[sync]\nack_timeout_s = 0\n", r"'sync.ack_timeout_s' must be above 0"),
        ("[logging]\nlevel = 'loud'\n", r"'logging.level' must be one of debug, info, warning, error"),
        ("[station]\ndevice_id = 'station/+'\n", r"'station.device_id' must be a string matching"),
    ],
)
def test_values_out_of_bounds_are_refused_with_the_rule(text: str, expected: str) -> None:
    with pytest.raises(ConfigError, match=expected):
        config.parse(text, environ={})


def test_rules_between_keys_are_checked() -> None:
    with pytest.raises(ConfigError, match=r"review_score \(0.9\) must not be above hold_score \(0.5\)"):
        config.parse("[screening]\nreview_score = 0.9\nhold_score = 0.5\n", environ={})


def test_the_environment_gets_no_pass() -> None:
    with pytest.raises(ConfigError, match=r"'screening\.weight_tolerance_pct' must be a finite number"):
        config.parse("", environ={"PRESCREEN__SCREENING__WEIGHT_TOLERANCE_PCT": "nan"})


def test_a_section_made_in_code_passes_the_same_rules() -> None:
    """dataclasses.replace (the downlink, the demo) cannot make what the file may not say."""
    with pytest.raises(ConfigError, match="must be a finite number"):
        config.replace(config.Config(), "screening", weight_tolerance_pct=float("nan"))


def test_check_value_types_and_bounds_one_value() -> None:
    assert config.check_value(config.ScreeningConfig, "weight_tolerance_g", 250) == 250
    assert config.check_value(config.ScreeningConfig, "hold_score", 1) == 1.0
    with pytest.raises(ConfigError, match="must be a number, got str"):
        config.check_value(config.ScreeningConfig, "hold_score", "0.9")
    with pytest.raises(ConfigError, match=r"unknown key 'screening\.nope'"):
        config.check_value(config.ScreeningConfig, "nope", 1)
