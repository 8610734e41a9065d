"""The sections of the agent's config file, one frozen dataclass each, with their defaults and bounds.

Why typed dataclasses and not a dict: every component receives exactly the settings it needs, with
defaults in one place, and a typo in a key stops the agent at start instead of being silently ignored
at 3 a.m. Each value is checked against its field's bounds whenever a section is made
(:class:`prescreen.ops.bounds.Section`).
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import ClassVar

from prescreen.core.errors import ConfigError
from prescreen.ops.bounds import Section, bounded

LEVELS = ("debug", "info", "warning", "error")
# Ids travel in MQTT topics and records: no wildcards, separators or spaces (the record schema's rule).
ID_PATTERN = r"[A-Za-z0-9._-]{1,64}"
PUBLIC_KEY_PATTERN = r"[A-Za-z0-9+/]{43}="  # a raw Ed25519 public key in base64
BROKER_PATTERN = r"[A-Za-z0-9._-]{1,253}(:[0-9]{1,5})?"  # host or host:port of one broker node
SIM_SCHEME = "sim://"
SCANNER_PROTOCOLS = ("line", "ssi")
SCANNER_SIMULATORS = {"scanner": "line", "ssi": "ssi"}  # sim://<name> -> the protocol it speaks


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
    # QoS of the station's subscriptions (acks, downlink, receivers' presence). 0 on a NATS 2.9
    # cluster, whose QoS 1 subscriptions can fail silently after a node is lost (README).
    subscribe_qos: int = bounded(1, min=0, max=1)
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

    # Factories, not instances: making a ScaleConfig asks the drivers which protocols exist, and
    # importing this module (every command's --help does) must not load the drivers.
    station: StationConfig = dataclasses.field(default_factory=StationConfig)
    scanner: ScannerConfig = dataclasses.field(default_factory=ScannerConfig)
    scale: ScaleConfig = dataclasses.field(default_factory=ScaleConfig)
    orders: OrdersConfig = dataclasses.field(default_factory=OrdersConfig)
    outbox: OutboxConfig = dataclasses.field(default_factory=OutboxConfig)
    sync: SyncConfig = dataclasses.field(default_factory=SyncConfig)
    screening: ScreeningConfig = dataclasses.field(default_factory=ScreeningConfig)
    http: HttpConfig = dataclasses.field(default_factory=HttpConfig)
    logging: LoggingConfig = dataclasses.field(default_factory=LoggingConfig)
    entry: EntryConfig = dataclasses.field(default_factory=EntryConfig)
    health: HealthConfig = dataclasses.field(default_factory=HealthConfig)

    def api_token_path(self) -> Path:
        """The 0600 file with the local API's token (``[http] token_file``, else beside the outbox)."""
        return Path(self.http.token_file or Path(self.outbox.path).parent / "http.token")
