"""One TOML config file, validated at start with errors that name the file, line, key and expectation.

Why typed dataclasses and not a dict: every component receives exactly the settings it needs, with
defaults in one place, and a typo in a key stops the agent at start instead of being silently ignored
at 3 a.m. Environment variables ``PRESCREEN__SECTION__KEY`` override the file (for systemd drop-ins).
"""

from __future__ import annotations

import dataclasses
import os
import re
import sys
import types
import typing
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from prescreen.errors import ConfigError

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - exercised on 3.10 only
    import tomli as tomllib

ENV_PREFIX = "PRESCREEN__"


@dataclasses.dataclass(frozen=True)
class StationConfig:
    """Who this station is; ids travel in every record and MQTT topic."""

    device_id: str = "station-01"
    site_id: str = "site-01"
    filer_code: str = "DEMO"
    weight_timeout_s: float = 10.0
    # A scan starting with this confirms the oldest unconfirmed HOLD went onto the hold shelf.
    shelf_label_prefix: str = "SHELF-"
    # Ed25519 key every record is signed with; created on first start. Empty: device.key next to
    # the outbox (StateDirectory under systemd).
    key_path: str = ""


@dataclasses.dataclass(frozen=True)
class ScannerConfig:
    """Barcode scanner port; ``url`` is a path, a pyserial URL, ``sim://scanner`` or ``sim://ssi``.

    ``protocol`` is ``line`` (one scan per line, ``suffix`` any/cr/lf/crlf/tab) or ``ssi`` (Zebra
    packet mode: ACKed scans, and a distinct HOLD beep and red LED on the scanner itself).
    """

    url: str = "/dev/ttyACM0"
    protocol: str = "line"
    baudrate: int = 9600
    suffix: str = "any"


@dataclasses.dataclass(frozen=True)
class ScaleConfig:
    """Shipping scale port, protocol and settle rule (N readings within tolerance over T ms)."""

    url: str = "/dev/ttyUSB0"
    protocol: str = "mt-sics"
    baudrate: int | None = None
    poll_interval_ms: int = 50
    settle_readings: int = 3
    settle_tolerance_g: int = 5
    settle_ms: int = 100


@dataclasses.dataclass(frozen=True)
class OrdersConfig:
    """Where order data comes from: a file export (CSV/NDJSON) or the WMS over HTTP.

    For ``source = "wms"``: ``url`` is a template with ``{tracking}``; the operator never waits
    longer than ``budget_ms`` for it (past that the verdict is REVIEW, ORDER_UNAVAILABLE, and the
    record is completed when the order arrives). ``prefetch_url`` (optional) lists upcoming orders
    and fills the local cache ahead of the scan. The token can come from the environment
    (``PRESCREEN__ORDERS__AUTH_TOKEN``) so it never sits in a world-readable file.
    """

    source: str = "file"
    path: str = "orders.ndjson"
    url: str = ""
    budget_ms: int = 300
    auth_header: str = "Authorization"
    auth_token: str = ""
    connect_timeout_ms: int = 500
    read_timeout_ms: int = 3000
    retries: int = 2
    backoff_ms: int = 100
    prefetch_url: str = ""
    prefetch_every_s: float = 30.0
    cache_path: str = ""
    cache_ttl_s: int = 86400


@dataclasses.dataclass(frozen=True)
class OutboxConfig:
    """Durable SQLite outbox: location, limits, retention (see ``housekeeping.py``).

    Acked records are pruned after ``retention_days``; the personal data of private persons in
    acked records is erased after ``pii_days``. Over ``max_rows``/``max_mb`` or under
    ``min_free_mb`` acked records go first; pending ones are never dropped (an alarm is raised).
    """

    path: str = "/var/lib/prescreen/outbox.db"
    min_free_mb: int = 100
    max_rows: int = 2_000_000
    max_mb: int = 2048
    retention_days: float = 30.0
    pii_days: float = 7.0
    housekeeping_s: float = 60.0


@dataclasses.dataclass(frozen=True)
class SyncConfig:
    """MQTT uplink: broker address, security, batching and the in-flight window.

    ``cafile`` turns on TLS with server verification, ``certfile``/``keyfile`` add the station's
    client certificate (mTLS), ``username``/``password`` log in (the password can come from
    ``PRESCREEN__SYNC__PASSWORD`` so it stays out of a world-readable file). Reconnects back off
    exponentially with jitter up to ``reconnect_max_s``.
    """

    host: str = "127.0.0.1"
    port: int = 1883
    topic_prefix: str = "prescreen/v1"
    batch_size: int = 200
    batch_age_ms: int = 50
    inflight_batches: int = 4
    ack_timeout_s: float = 10.0
    keepalive_s: int = 30
    reconnect_max_s: float = 1.5
    # zlib-compress batches of at least compress_min_bytes: pays on a slow or metered link (about
    # 11x smaller), costs CPU on a fast one (see the README's performance section).
    compress: bool = False
    compress_min_bytes: int = 4096
    # Ed25519 public key (base64) that signs model-update manifests; empty: updates refused.
    update_key: str = ""
    cafile: str = ""
    certfile: str = ""
    keyfile: str = ""
    username: str = ""
    password: str = ""


@dataclasses.dataclass(frozen=True)
class ScreeningConfig:
    """Thresholds for rules and model; every number here is a documented heuristic."""

    weight_tolerance_pct: float = 15.0
    weight_tolerance_g: int = 100
    review_score: float = 0.5
    hold_score: float = 0.85
    split_window_s: int = 3600
    split_max_parcels: int = 3
    model_path: str = ""
    use_model: bool = True


@dataclasses.dataclass(frozen=True)
class HttpConfig:
    """The agent's local HTTP endpoint: /metrics (Prometheus), /healthz, /status, station page.

    Bound to localhost by default: the station page and metrics carry parcel data and are for the
    bench screen and a local Prometheus agent. ``port = 0`` picks a free port (tests, demo).
    """

    enabled: bool = True
    host: str = "127.0.0.1"
    port: int = 9108
    language: str = "en"  # of the station page: en or es (a page can ask for ?lang=es)

    def url(self, path: str) -> str:
        """Where the CLI reaches the running agent's ``path`` (``/status``, ``/api/correct``)."""
        return f"http://{self.host}:{self.port}{path}"


@dataclasses.dataclass(frozen=True)
class LoggingConfig:
    """Log level for the key=value log lines."""

    level: str = "info"


@dataclasses.dataclass(frozen=True)
class HealthConfig:
    """When a problem becomes a health condition (see ``health.py``), and how often it is logged.

    A broker or device that is back within its grace time was a blip, not an alarm; a condition
    that lasts is logged once when it starts, every ``log_every_s`` while it lasts, once when it ends.
    """

    broker_grace_s: float = 30.0
    device_grace_s: float = 5.0
    log_every_s: float = 60.0


@dataclasses.dataclass(frozen=True)
class Config:
    """The whole agent configuration."""

    station: StationConfig = StationConfig()
    scanner: ScannerConfig = ScannerConfig()
    scale: ScaleConfig = ScaleConfig()
    orders: OrdersConfig = OrdersConfig()
    outbox: OutboxConfig = OutboxConfig()
    sync: SyncConfig = SyncConfig()
    screening: ScreeningConfig = ScreeningConfig()
    http: HttpConfig = HttpConfig()
    logging: LoggingConfig = LoggingConfig()
    health: HealthConfig = HealthConfig()


def _describe(tp: Any) -> str:
    if isinstance(tp, types.UnionType) or typing.get_origin(tp) is typing.Union:
        return " or ".join(_describe(a) for a in typing.get_args(tp) if a is not type(None))
    return {str: "a string", int: "an integer", float: "a number", bool: "true or false"}.get(tp, str(tp))


def _accepts(tp: Any, value: object) -> bool:
    if isinstance(tp, types.UnionType) or typing.get_origin(tp) is typing.Union:
        return any(_accepts(a, value) for a in typing.get_args(tp) if a is not type(None))
    if tp is float:
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if tp is int:
        return isinstance(value, int) and not isinstance(value, bool)
    return isinstance(value, tp)


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


def _build(cls: type[Any], raw: Mapping[str, Any], where: str, text: str, section: str) -> Any:
    hints = typing.get_type_hints(cls)
    names = {f.name for f in dataclasses.fields(cls)}
    values: dict[str, Any] = {}
    for key, value in raw.items():
        line = _line_of(text, section, key)
        at = f"{where}:{line}" if line else where
        if key not in names:
            raise ConfigError(
                f"{at}: unknown key '{section}.{key}' (expected one of: {', '.join(sorted(names))})"
            )
        tp = hints[key]
        if not _accepts(tp, value):
            raise ConfigError(
                f"{at}: '{section}.{key}' must be {_describe(tp)}, got {type(value).__name__} {value!r}"
            )
        values[key] = float(value) if tp is float else value
    return cls(**values)


def _apply_env(data: dict[str, Any], environ: Mapping[str, str]) -> None:
    for name, text in environ.items():
        if not name.startswith(ENV_PREFIX):
            continue
        parts = name[len(ENV_PREFIX) :].lower().split("__")
        if len(parts) != 2:
            raise ConfigError(f"environment: {name} must look like {ENV_PREFIX}SECTION__KEY")
        try:
            value: Any = tomllib.loads(f"v = {text}")["v"]
        except tomllib.TOMLDecodeError:
            value = text
        data.setdefault(parts[0], {})[parts[1]] = value


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
            raise ConfigError(
                f"{where}: unknown section [{section}] (expected one of: {', '.join(sorted(sections))})"
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


def replace(config: Config, section: str, **changes: Any) -> Config:
    """Return ``config`` with some keys of one section changed (used by the demo and tests)."""
    return dataclasses.replace(config, **{section: dataclasses.replace(getattr(config, section), **changes)})
