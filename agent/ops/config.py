"""One TOML config file, validated at start with errors that name the file, line, key and expectation.

Why typed dataclasses and not a dict: every component receives exactly the settings it needs, with
defaults in one place, and a typo in a key stops the agent at start instead of being silently ignored
at 3 a.m. Environment variables ``PRESCREEN__SECTION__KEY`` override the file (for systemd drop-ins).
"""

from __future__ import annotations

import dataclasses
import math
import os
import re
import sys
import types
import typing
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, ClassVar

from prescreen.core.errors import ConfigError

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - exercised on 3.10 only
    import tomli as tomllib

ENV_PREFIX = "PRESCREEN__"
LEVELS = ("debug", "info", "warning", "error")
# Ids travel in MQTT topics and records: no wildcards, separators or spaces (the record schema's rule).
ID_PATTERN = r"[A-Za-z0-9._-]{1,64}"
PUBLIC_KEY_PATTERN = r"[A-Za-z0-9+/]{43}="  # a raw Ed25519 public key in base64
BROKER_PATTERN = r"[A-Za-z0-9._-]{1,253}(:[0-9]{1,5})?"  # host or host:port of one broker node
SIM_SCHEME = "sim://"
SCANNER_PROTOCOLS = ("line", "ssi")
SCANNER_SIMULATORS = {"scanner": "line", "ssi": "ssi"}  # sim://<name> -> the protocol it speaks
DEFAULT_PATH = "/etc/prescreen/agent.toml"


def scale_protocol_names() -> tuple[str, ...]:
    """The scale protocols shipped (imported when first checked: the drivers load pyserial)."""
    from prescreen.drivers.registry import scale_protocols

    return tuple(sorted(scale_protocols()))


def _sim_problem(url: str, speaks: dict[str, str], protocol: str) -> str | None:
    """What is wrong with a ``sim://`` device URL: an unknown simulator, a protocol that is not the
    one it speaks, or an unreadable ``?script=``."""
    if not url.startswith(SIM_SCHEME):
        return None
    name = url[len(SIM_SCHEME) :].split("?", 1)[0]
    if name not in speaks:
        known = ", ".join(SIM_SCHEME + k for k in sorted(speaks))
        return f"url {url!r}: no such simulator (known: {known})"
    if speaks[name] != protocol:
        wanted = speaks[name]
        return f"url {url!r} simulates {wanted}, but protocol is {protocol!r}: set protocol = {wanted!r}"
    from prescreen.sim.simbench import load_script, script_of

    script = script_of(url)
    if script is not None:
        try:
            load_script(script)
        except ConfigError as exc:
            return str(exc)
    return None


@dataclasses.dataclass(frozen=True)
class Bounds:
    """What one setting's value must be beyond its type: in a range, one of a list, or a pattern.

    Why on the field and not in the code that uses it: the config file, the environment and a
    remote settings message from customs all pass the same check in one place, so a value refused
    in the file cannot arrive by the downlink (or be loaded again after a restart).
    Every number must also be finite, whether or not it has bounds.
    """

    min: float | None = None  # inclusive
    max: float | None = None  # inclusive
    above: float | None = None  # exclusive lower bound (a timeout of 0 is no timeout)
    choices: tuple[str, ...] = ()
    pattern: str | None = None
    # Choices known only at run time (the scale protocols shipped), asked for when checking.
    choices_of: Callable[[], tuple[str, ...]] | None = None

    def allowed(self) -> tuple[str, ...]:
        """The values a string may take (empty: any)."""
        return self.choices or (self.choices_of() if self.choices_of is not None else ())

    def problem(self, value: object) -> str | None:
        """What is wrong with ``value`` (of the right type already), or None."""
        if isinstance(value, float) and not math.isfinite(value):
            return "a finite number"
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            if self.above is not None and not value > self.above:
                high = "" if self.max is None else f" and at most {self.max:g}"
                return f"above {self.above:g}{high}"
            if (self.min is not None and value < self.min) or (self.max is not None and value > self.max):
                low = "" if self.min is None else f"at least {self.min:g}"
                high = "" if self.max is None else f"at most {self.max:g}"
                return " and ".join(p for p in (low, high) if p)
        if isinstance(value, tuple):
            return next(filter(None, map(self.problem, value)), None)
        if isinstance(value, str):
            allowed = self.allowed()
            if allowed and value not in allowed:
                return "one of " + ", ".join(allowed)
            if self.pattern is not None and not re.fullmatch(self.pattern, value):
                return f"a string matching {self.pattern}"
        return None


_NO_BOUNDS = Bounds()


def bounded(default: Any, **bounds: Any) -> Any:
    """A dataclass field with :class:`Bounds` (``bounded(15.0, min=0, max=100)``)."""
    return dataclasses.field(default=default, metadata={"bounds": Bounds(**bounds)})


def bounds_of(section: type[Section], key: str) -> Bounds:
    """The bounds of ``section.key`` (none beyond finiteness when the field declares none)."""
    for field in dataclasses.fields(section):
        if field.name == key:
            found: Bounds = field.metadata.get("bounds", _NO_BOUNDS)
            return found
    raise ConfigError(f"unknown key '{section.SECTION}.{key}'")


def check_value(section: type[Section], key: str, value: object) -> Any:
    """``value`` as ``section.key`` holds it (an integer where a number is expected becomes a float),
    or an error if it is of the wrong type or outside the field's bounds. The one check for the
    file, the environment and the downlink.

    Raises:
        ConfigError: names the key, what it must be, and what it got.
    """
    tp = typing.get_type_hints(section).get(key)
    if tp is None or key == "SECTION":
        raise ConfigError(f"unknown key '{section.SECTION}.{key}'")
    if not _accepts(tp, value):
        raise ConfigError(
            f"'{section.SECTION}.{key}' must be {_describe(tp)}, got {type(value).__name__} {value!r}"
        )
    if tp is float:
        value = float(value)  # type: ignore[arg-type]  # _accepts let only int and float through
    elif isinstance(value, list):
        value = tuple(value)  # a TOML array; sections are frozen
    problem = bounds_of(section, key).problem(value)
    if problem is not None:
        raise ConfigError(f"'{section.SECTION}.{key}' must be {problem}, got {value!r}")
    return value


@dataclasses.dataclass(frozen=True)
class Section:
    """A config section: every value checked against its field's bounds whenever one is made.

    Checking in ``__post_init__`` means ``dataclasses.replace`` (the downlink, the demo) passes the
    same rules as the file; :meth:`relations` adds rules between keys of one section.
    """

    SECTION: ClassVar[str] = ""

    def __post_init__(self) -> None:
        for field in dataclasses.fields(self):
            value = getattr(self, field.name)
            problem = bounds_of(type(self), field.name).problem(value)
            if problem is not None:
                raise ConfigError(f"'{self.SECTION}.{field.name}' must be {problem}, got {value!r}")
        problem = self.relations()
        if problem is not None:
            raise ConfigError(f"[{self.SECTION}]: {problem}")

    def relations(self) -> str | None:
        """What is wrong between this section's keys, or None (override per section)."""
        return None


@dataclasses.dataclass(frozen=True)
class StationConfig(Section):
    """Who this station is; ids travel in every record and MQTT topic."""

    SECTION: ClassVar[str] = "station"

    device_id: str = bounded("station-01", pattern=ID_PATTERN)
    site_id: str = bounded("site-01", pattern=ID_PATTERN)
    filer_code: str = "DEMO"
    weight_timeout_s: float = bounded(10.0, above=0, max=600)
    # A scan starting with this confirms the oldest unconfirmed HOLD went onto the hold shelf.
    shelf_label_prefix: str = "SHELF-"
    # Ed25519 key every record is signed with; created on first start. Empty: device.key next to
    # the outbox (StateDirectory under systemd).
    key_path: str = ""


@dataclasses.dataclass(frozen=True)
class ScannerConfig(Section):
    """Barcode scanner port; ``url`` is a path, a pyserial URL, ``sim://scanner`` or ``sim://ssi``.

    ``protocol`` is ``line`` (one scan per line, ``suffix`` any/cr/lf/crlf/tab) or ``ssi`` (Zebra
    packet mode: ACKed scans, and a distinct HOLD beep and red LED on the scanner itself).
    """

    SECTION: ClassVar[str] = "scanner"

    url: str = "/dev/ttyACM0"
    protocol: str = bounded("line", choices=SCANNER_PROTOCOLS)
    baudrate: int = bounded(9600, min=300, max=4_000_000)
    suffix: str = bounded("any", choices=("any", "cr", "lf", "crlf", "tab"))

    def relations(self) -> str | None:
        """A ``sim://`` scanner must be a known simulator speaking ``protocol``."""
        return _sim_problem(self.url, SCANNER_SIMULATORS, self.protocol)


@dataclasses.dataclass(frozen=True)
class ScaleConfig(Section):
    """Shipping scale port, protocol and settle rule (N readings within tolerance over T ms)."""

    SECTION: ClassVar[str] = "scale"

    url: str = "/dev/ttyUSB0"
    protocol: str = bounded("mt-sics", choices_of=scale_protocol_names)
    baudrate: int | None = bounded(None, min=300, max=4_000_000)
    poll_interval_ms: int = bounded(50, min=1, max=10_000)
    settle_readings: int = bounded(3, min=1, max=100)
    settle_tolerance_g: int = bounded(5, min=0, max=100_000)
    settle_ms: int = bounded(100, min=0, max=60_000)

    def relations(self) -> str | None:
        """A ``sim://<protocol>`` scale must speak ``protocol``."""
        names = scale_protocol_names() if self.url.startswith(SIM_SCHEME) else ()
        return _sim_problem(self.url, {n: n for n in names}, self.protocol)


@dataclasses.dataclass(frozen=True)
class OrdersConfig(Section):
    """Where order data comes from: a file export (CSV/NDJSON) or the WMS over HTTP.

    For ``source = "wms"``: ``url`` is a template with ``{tracking}``; the operator never waits
    longer than ``budget_ms`` for it (past that the verdict is REVIEW, ORDER_UNAVAILABLE, and the
    record is completed when the order arrives). ``prefetch_url`` (optional) lists upcoming orders
    and fills the local cache ahead of the scan. The token can come from the environment
    (``PRESCREEN__ORDERS__AUTH_TOKEN``) so it never sits in a world-readable file.
    """

    SECTION: ClassVar[str] = "orders"

    source: str = bounded("file", choices=("file", "wms"))
    path: str = "orders.ndjson"
    url: str = ""
    budget_ms: int = bounded(300, min=1, max=60_000)
    auth_header: str = "Authorization"
    auth_token: str = ""
    connect_timeout_ms: int = bounded(500, min=1, max=60_000)
    read_timeout_ms: int = bounded(3000, min=1, max=600_000)
    retries: int = bounded(2, min=0, max=10)
    backoff_ms: int = bounded(100, min=0, max=60_000)
    prefetch_url: str = ""
    prefetch_every_s: float = bounded(30.0, above=0, max=86_400)
    cache_path: str = ""
    cache_ttl_s: int = bounded(86400, min=0)

    def relations(self) -> str | None:
        """The WMS is asked per tracking number: its URL must say where the number goes."""
        if self.source == "wms" and "{tracking}" not in self.url:
            return f'source = "wms" needs url with {{tracking}} in it, got {self.url!r}'
        return None


@dataclasses.dataclass(frozen=True)
class OutboxConfig(Section):
    """Durable SQLite outbox: location, limits, retention (see ``housekeeping.py``).

    Acked records are pruned after ``retention_days``; the personal data of private persons in
    acked records is erased after ``pii_days``. Over ``max_rows``/``max_mb`` or under
    ``min_free_mb`` acked records go first; pending ones are never dropped (an alarm is raised).
    """

    SECTION: ClassVar[str] = "outbox"

    path: str = "/var/lib/prescreen/outbox.db"
    min_free_mb: int = bounded(100, min=0)
    max_rows: int = bounded(2_000_000, min=1)
    max_mb: int = bounded(2048, min=1)
    retention_days: float = bounded(30.0, min=0)
    pii_days: float = bounded(7.0, min=0)
    housekeeping_s: float = bounded(60.0, above=0, max=86_400)


@dataclasses.dataclass(frozen=True)
class SyncConfig(Section):
    """MQTT uplink: broker address, security, batching and the in-flight window.

    ``cafile`` turns on TLS with server verification, ``certfile``/``keyfile`` add the station's
    client certificate (mTLS), ``username``/``password`` log in (the password can come from
    ``PRESCREEN__SYNC__PASSWORD`` so it stays out of a world-readable file). Reconnects back off
    exponentially with jitter up to ``reconnect_max_s``.
    """

    SECTION: ClassVar[str] = "sync"

    host: str = "127.0.0.1"
    port: int = bounded(1883, min=1, max=65_535)
    # The nodes of one broker cluster, "host" or "host:port" (port defaults to `port`), tried in
    # order with the reconnect backoff: a lost node costs one attempt. Empty: `host` alone.
    hosts: tuple[str, ...] = bounded((), pattern=BROKER_PATTERN)
    topic_prefix: str = "prescreen/v1"
    batch_size: int = bounded(200, min=1, max=10_000)
    batch_age_ms: int = bounded(50, min=0, max=60_000)
    inflight_batches: int = bounded(4, min=1, max=64)
    ack_timeout_s: float = bounded(10.0, above=0, max=3600)
    keepalive_s: int = bounded(30, min=1, max=3600)
    reconnect_max_s: float = bounded(1.5, above=0, max=3600)
    # zlib-compress batches of at least compress_min_bytes: pays on a slow or metered link (about
    # 11x smaller), costs CPU on a fast one (see the README's performance section).
    compress: bool = False
    compress_min_bytes: int = bounded(4096, min=0)
    # Ed25519 public key (base64) that signs model-update manifests; empty: updates refused.
    update_key: str = ""
    # Ed25519 public keys (base64) of customs whose signed downlink messages this station obeys;
    # empty: every downlink message is refused. A signed `keys` message rotates them.
    customs_keys: tuple[str, ...] = bounded((), pattern=PUBLIC_KEY_PATTERN)
    # Ed25519 public keys (base64) of the receivers whose signed acks mark records delivered;
    # empty: acks are not authenticated, which `prescreen run` allows only with allow_insecure.
    receiver_keys: tuple[str, ...] = bounded((), pattern=PUBLIC_KEY_PATTERN)
    cafile: str = ""
    certfile: str = ""
    keyfile: str = ""
    username: str = ""
    password: str = ""
    # `prescreen run` refuses a broker without TLS and a login, and acks without receiver_keys,
    # unless this is true (demo and test benches only: anyone on the network is then trusted).
    allow_insecure: bool = False

    def insecurities(self) -> list[str]:
        """What lets others on the network in: ``prescreen run`` refuses a station with any of these
        unless ``allow_insecure`` (and says which, at start, when it is)."""
        found = []
        if not self.cafile:
            found.append("no TLS (cafile)")
        if not (self.certfile or self.username):
            found.append("no broker login (certfile/keyfile or username/password)")
        if not self.receiver_keys:
            found.append("acks not authenticated (receiver_keys)")
        return found

    def relations(self) -> str | None:
        """A client key without its certificate is a half-configured mTLS."""
        if self.keyfile and not self.certfile:
            return "keyfile is set but certfile is not: mTLS needs both"
        return None


@dataclasses.dataclass(frozen=True)
class ScreeningConfig(Section):
    """Thresholds for rules and model; every number here is a documented heuristic."""

    SECTION: ClassVar[str] = "screening"

    weight_tolerance_pct: float = bounded(15.0, min=0, max=100)
    weight_tolerance_g: int = bounded(100, min=0, max=100_000)
    # The model alone may raise at most this share of parcels (calibrated on its training mix;
    # the threshold comes from the model's card). review_score, when set, overrides it.
    model_review_budget: float = bounded(0.03, above=0, max=0.5)
    review_score: float | None = bounded(None, above=0, max=1)
    hold_score: float = bounded(0.85, above=0, max=1)
    # Quarantine: over the last model_monitor_window parcels, a model raising more than twice
    # its card's rate is set aside (rules only) until a new model or `prescreen model reinstate`.
    model_monitor_window: int = bounded(500, min=20, max=100_000)
    split_window_s: int = bounded(3600, min=0, max=7 * 86_400)
    split_max_parcels: int = bounded(3, min=1, max=1000)
    model_path: str = ""
    use_model: bool = True
    # USITC HTS export (CSV or JSON) to check full 10-digit codes; without it only the six-digit
    # HS subheading is checked.
    hts_table: str = ""

    def relations(self) -> str | None:
        """A review line above the hold line would hold what it never reviewed."""
        if self.review_score is not None and self.review_score > self.hold_score:
            return f"review_score ({self.review_score}) must not be above hold_score ({self.hold_score})"
        return None


CHANNELS = ("postal", "express", "cargo")


def parse_account_channels(text: str) -> dict[str, str]:
    """``"CNPOST-EPACKET=postal, FWD-AIR-01=cargo"`` as {account: channel}.

    Raises:
        ConfigError: an entry without ``=`` or a channel other than postal, express or cargo.
    """
    table: dict[str, str] = {}
    for entry in filter(None, (e.strip() for e in text.split(","))):
        account, sep, channel = (part.strip() for part in entry.partition("="))
        if not sep or not account or channel not in CHANNELS:
            raise ConfigError(
                f"'entry.account_channels': {entry!r} must be ACCOUNT=CHANNEL with CHANNEL one of "
                f"{', '.join(CHANNELS)}"
            )
        table[account] = channel
    return table


@dataclasses.dataclass(frozen=True)
class EntryConfig(Section):
    """Entry-grade data (see ``docs/data-mapping.md``).

    ``account_channels`` decides the channel for the parcels of a carrier account (the order's
    ``carrier_account``): ``postal`` (its UPU S10 items travel in the international postal
    network), ``express`` or ``cargo`` (consolidated under a master bill), e.g.
    ``"CNPOST-EPACKET=postal, FWD-AIR-01=cargo"``. ``usd_rates_path``: a JSON table of the USD rates
    to convert order values with (CBP uses the FRBNY certified rate of the export date).
    """

    SECTION: ClassVar[str] = "entry"
    account_channels: str = ""
    usd_rates_path: str = ""

    def relations(self) -> str | None:
        """A malformed account table or an unreadable rate table stops the agent at start (and
        fails ``doctor`` the same way), not at the first parcel."""
        try:
            parse_account_channels(self.account_channels)
            if self.usd_rates_path:
                from prescreen.risk.entry import UsdRates  # entry builds on this module: imported when used

                UsdRates.load(self.usd_rates_path)
        except ConfigError as exc:
            return str(exc)
        return None


@dataclasses.dataclass(frozen=True)
class HttpConfig(Section):
    """The agent's local HTTP endpoint: /metrics (Prometheus), /healthz, /status, station page.

    Bound to localhost by default: the station page and metrics carry parcel data and are for the
    bench screen and a local Prometheus agent. ``port = 0`` picks a free port (tests, demo).
    """

    SECTION: ClassVar[str] = "http"

    enabled: bool = True
    host: str = "127.0.0.1"
    port: int = bounded(9108, min=0, max=65_535)
    # Of the station page (a page can ask for ?lang=es).
    language: str = bounded("en", choices=("en", "es"))
    # POSTs need the token in this 0600 file (created at start; empty: http.token beside the outbox).
    token_file: str = ""
    # Every socket read and write times out after this; at most this many connections at once.
    timeout_s: float = bounded(10.0, above=0, max=300)
    max_connections: int = bounded(32, min=4, max=1000)

    def url(self, path: str) -> str:
        """Where the CLI reaches the running agent's ``path`` (``/status``, ``/api/correct``)."""
        return f"http://{self.host}:{self.port}{path}"


@dataclasses.dataclass(frozen=True)
class LoggingConfig(Section):
    """Log level for the key=value log lines."""

    SECTION: ClassVar[str] = "logging"

    level: str = bounded("info", choices=LEVELS)


@dataclasses.dataclass(frozen=True)
class HealthConfig(Section):
    """When a problem becomes a health condition (see ``health.py``), and how often it is logged.

    A broker or device that is back within its grace time was a blip, not an alarm; a condition
    that lasts is logged once when it starts, every ``log_every_s`` while it lasts, once when it ends.
    """

    SECTION: ClassVar[str] = "health"

    broker_grace_s: float = bounded(30.0, min=0, max=86_400)
    device_grace_s: float = bounded(5.0, min=0, max=86_400)
    log_every_s: float = bounded(60.0, above=0, max=86_400)


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
    entry: EntryConfig = EntryConfig()
    health: HealthConfig = HealthConfig()

    def api_token_path(self) -> Path:
        """The 0600 file with the local API's token (``[http] token_file``, else beside the outbox)."""
        return Path(self.http.token_file or Path(self.outbox.path).parent / "http.token")


def _describe(tp: Any) -> str:
    if isinstance(tp, types.UnionType) or typing.get_origin(tp) is typing.Union:
        return " or ".join(_describe(a) for a in typing.get_args(tp) if a is not type(None))
    if typing.get_origin(tp) is tuple:
        return "a list of strings"
    return {str: "a string", int: "an integer", float: "a number", bool: "true or false"}.get(tp, str(tp))


def _accepts(tp: Any, value: object) -> bool:
    if isinstance(tp, types.UnionType) or typing.get_origin(tp) is typing.Union:
        return any(_accepts(a, value) for a in typing.get_args(tp) if a is not type(None))
    if tp is float:
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if tp is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if typing.get_origin(tp) is tuple:  # tuple[str, ...]: a TOML array of strings
        return isinstance(value, (list, tuple)) and all(isinstance(v, str) for v in value)
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
