"""One TOML config file, validated at start with errors that name the file, line, key and expectation.

Environment variables ``PRESCREEN__SECTION__KEY`` override the file (for systemd drop-ins). This
module is the one import for settings: it reads a file into :class:`Config` and names the sections
(:mod:`prescreen.ops.sections`) and the value check (:mod:`prescreen.ops.bounds`) every caller uses,
so the split into three files is not every caller's business.
"""

from __future__ import annotations

import dataclasses
import os
import re
import sys
import typing
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from prescreen.core.errors import ConfigError
from prescreen.ops.bounds import Section, check_value
from prescreen.ops.sections import (
    Config,
    EntryConfig,
    HealthConfig,
    HttpConfig,
    LoggingConfig,
    OrdersConfig,
    OutboxConfig,
    ScaleConfig,
    ScannerConfig,
    ScreeningConfig,
    StationConfig,
    SyncConfig,
    parse_account_channels,
)

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - exercised on 3.10 only
    import tomli as tomllib

__all__ = [
    "DEFAULT_PATH",
    "REQUIRED_TO_RUN",
    "Config",
    "EntryConfig",
    "HealthConfig",
    "HttpConfig",
    "LoggingConfig",
    "OrdersConfig",
    "OutboxConfig",
    "ScaleConfig",
    "ScannerConfig",
    "ScreeningConfig",
    "StationConfig",
    "SyncConfig",
    "check_value",
    "load",
    "load_station",
    "parse",
    "parse_account_channels",
    "replace",
    "toml_value",
]

ENV_PREFIX = "PRESCREEN__"
DEFAULT_PATH = "/etc/prescreen/agent.toml"


def _line_of(text: str, section: str, key: str | None) -> int | None:
    """Best-effort line number of ``key`` in ``[section]`` (tomllib does not report positions)."""
    in_section = key is None
    for number, line in enumerate(text.splitlines(), start=1):
        stripped = line.strip()
        if stripped.startswith("["):
            if in_section and key is not None:
                return None
            in_section = stripped.strip("[] ") == section
            if in_section and key is None:
                return number
        elif in_section and key is not None and re.match(rf"{re.escape(key)}\s*=", stripped):
            return number
    return None


def _build(cls: type[Section], raw: Mapping[str, Any], where: str, text: str, section: str) -> Any:
    names = {f.name for f in dataclasses.fields(cls)}
    values: dict[str, Any] = {}
    for key, value in raw.items():
        line = _line_of(text, section, key)
        at = f"{where}:{line}" if line else where
        if key not in names:
            raise ConfigError(
                f"{at}: unknown key '{section}.{key}' (expected one of: {', '.join(sorted(names))})"
            )
        try:
            values[key] = check_value(cls, key, value)
        except ConfigError as exc:
            raise ConfigError(f"{at}: {exc}") from None
    try:
        return cls(**values)
    except ConfigError as exc:  # a rule between keys: point at the section
        line = _line_of(text, section, None)
        raise ConfigError(f"{where}{f':{line}' if line else ''}: {exc}") from None


def _apply_env(data: dict[str, Any], environ: Mapping[str, str]) -> None:
    for name, text in environ.items():
        if not name.startswith(ENV_PREFIX):
            continue
        parts = name[len(ENV_PREFIX) :].lower().split("__")
        if len(parts) != 2:
            raise ConfigError(f"environment: {name} must look like {ENV_PREFIX}SECTION__KEY")
        data.setdefault(parts[0], {})[parts[1]] = toml_value(text)


def toml_value(text: str) -> Any:
    """``text`` as a TOML value (``0.3`` a number, ``["a"]`` a list), else the text itself: how
    environment overrides and ``downlink send --set`` values are read."""
    try:
        return tomllib.loads(f"v = {text}")["v"]
    except tomllib.TOMLDecodeError:
        return text


def parse(text: str, *, where: str = "<config>", environ: Mapping[str, str] | None = None) -> Config:
    """Validate TOML ``text`` into a :class:`Config`; ``where`` names the source in errors.

    Raises:
        ConfigError: syntax errors, unknown sections or keys, and values of the wrong type.
    """
    try:
        data: dict[str, Any] = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{where}: not valid TOML: {exc}") from None
    _apply_env(data, os.environ if environ is None else environ)
    sections = {f.name: f.type for f in dataclasses.fields(Config)}
    hints = typing.get_type_hints(Config)
    built: dict[str, Any] = {}
    for section, body in data.items():
        if section not in sections:
            line = _line_of(text, section, None)
            raise ConfigError(
                f"{where}{f':{line}' if line else ''}: unknown section [{section}] "
                f"(expected one of: {', '.join(sorted(sections))})"
            )
        if not isinstance(body, dict):
            raise ConfigError(f"{where}: '{section}' must be a table like [{section}]")
        built[section] = _build(hints[section], body, where, text, section)
    return Config(**built)


def load(path: str | os.PathLike[str], *, environ: Mapping[str, str] | None = None) -> Config:
    """Read and validate the config file at ``path``.

    Raises:
        ConfigError: the file is missing or unreadable, or its content is invalid.
    """
    file = Path(path)
    try:
        text = file.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{file}: cannot read config: {exc}") from None
    return parse(text, where=str(file), environ=environ)


# Keys a real station must name itself: (section, key, why).
REQUIRED_TO_RUN = (
    ("station", "filer_code", "the filer code your records and entries are filed under; the demo uses DEMO"),
)


def load_station(path: str | os.PathLike[str], *, environ: Mapping[str, str] | None = None) -> Config:
    """Read a config file to run a station with (``run``, ``doctor``, ``config check``): as
    :func:`load`, and the keys a real station must name itself are present (the code's defaults,
    such as filer code DEMO, are for the demo only).

    Raises:
        ConfigError: as :func:`load`, or a required key is missing.
    """
    environ = os.environ if environ is None else environ
    conf = load(path, environ=environ)
    text = Path(path).read_text(encoding="utf-8")
    given = tomllib.loads(text)
    for section, key, why in REQUIRED_TO_RUN:
        in_env = f"{ENV_PREFIX}{section.upper()}__{key.upper()}" in environ
        if key not in given.get(section, {}) and not in_env:
            raise ConfigError(f"{path}: '{section}.{key}' is required to run a station ({why})")
    weak = conf.sync.insecurities()
    if weak and not conf.sync.allow_insecure:
        raise ConfigError(
            f"{path}: the broker link is not secure: {'; '.join(weak)}. Fix it, or on a test bench "
            "only set [sync] allow_insecure = true"
        )
    return conf


def replace(config: Config, section: str, **changes: Any) -> Config:
    """Return ``config`` with some keys of one section changed (used by the demo and tests)."""
    return dataclasses.replace(config, **{section: dataclasses.replace(getattr(config, section), **changes)})
