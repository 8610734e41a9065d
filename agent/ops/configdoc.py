"""``prescreen config example``: a commented config with every key, its default, its allowed values
and its meaning, generated from the schema in :mod:`prescreen.ops.config`.

Why generated: defaults and bounds come from the dataclasses themselves, so the example cannot
drift from what the agent accepts; the meanings live here, one line a key, and a test fails when a
key has none (a key added without saying what it means is caught before it ships).
"""

from __future__ import annotations

import dataclasses
import json
import typing
from typing import Any

from prescreen.ops import config as cfg
from prescreen.ops.bounds import Section, bounds_of, describe

MEANING: dict[str, str] = {
    "station.device_id": "this station's id in every record and MQTT topic",
    "station.site_id": "the site (warehouse) id in every record and MQTT topic",
    "station.filer_code": "the filer code your records and entries are filed under (required; demo: DEMO)",
    "station.weight_timeout_s": "how long to wait for a settled weight after a scan before REVIEW NO_WEIGHT",
    "station.shelf_label_prefix": "a scan starting with this confirms the oldest HOLD is on the hold shelf",
    "station.key_path": "the station's Ed25519 signing key; empty: device.key next to the outbox",
    "scanner.url": "device path (/dev/serial/by-id/...), pyserial URL, or sim://scanner / sim://ssi",
    "scanner.protocol": "line (one scan per line) or ssi (Zebra packet mode: ACKs, HOLD beep and LED)",
    "scanner.baudrate": "serial speed of the scanner",
    "scanner.suffix": "what ends a scan in line mode",
    "scale.url": "device path, pyserial URL, or sim://<protocol> (?script=FILE replays scans and weights)",
    "scale.protocol": "the scale's wire protocol",
    "scale.baudrate": "serial speed; unset: the protocol's usual speed",
    "scale.poll_interval_ms": "how often a polled scale is asked for its weight",
    "scale.settle_readings": "stable readings in a row before a weight counts",
    "scale.settle_tolerance_g": "how far those readings may differ",
    "scale.settle_ms": "how long those readings must span",
    "orders.source": "file (a CSV/NDJSON export, see the README) or wms (HTTP lookup per parcel)",
    "orders.path": "the order export file (source = file); re-read when it changes",
    "orders.url": "WMS lookup URL with {tracking} where the tracking number goes (source = wms)",
    "orders.budget_ms": "the longest an operator waits for the WMS; later orders complete the record",
    "orders.auth_header": "HTTP header that carries the WMS token",
    "orders.auth_token": "WMS token (better: PRESCREEN__ORDERS__AUTH_TOKEN in the environment)",
    "orders.connect_timeout_ms": "WMS connect timeout",
    "orders.read_timeout_ms": "WMS read timeout",
    "orders.retries": "WMS retries after a failed lookup",
    "orders.backoff_ms": "first wait between WMS retries (doubles)",
    "orders.prefetch_url": "optional WMS URL listing upcoming orders, to fill the cache ahead of scans",
    "orders.prefetch_every_s": "how often to prefetch",
    "orders.cache_path": "local order cache; empty: orders-cache.db next to the outbox",
    "orders.cache_ttl_s": "how long a cached order is used",
    "outbox.path": "the SQLite outbox every record is committed to before anyone is told",
    "outbox.min_free_mb": "disk floor: below it acked records are pruned and low-priority records refused",
    "outbox.max_rows": "row limit: over it acked records are pruned (pending ones never; health degraded)",
    "outbox.max_mb": "size limit, same rule as max_rows",
    "outbox.retention_days": "acked records are pruned after this many days",
    "outbox.pii_days": "private persons' names and addresses are erased from acked records after this",
    "outbox.housekeeping_s": "how often housekeeping runs (and health goes upstream)",
    "sync.host": "MQTT broker host",
    "sync.port": "MQTT broker port (8883 with TLS)",
    "sync.hosts": "the nodes of one broker cluster, host or host:port, tried in order with the reconnect "
    "backoff (a dead node costs one attempt); empty: host and port alone",
    "sync.topic_prefix": "MQTT topic prefix; must match the receiver's --prefix",
    "sync.batch_size": "records per MQTT message",
    "sync.batch_age_ms": "the longest a record waits for its batch to fill",
    "sync.inflight_batches": "batches sent and not yet acked at once",
    "sync.ack_timeout_s": "a batch not acked within this is sent again",
    "sync.keepalive_s": "MQTT keepalive",
    "sync.subscribe_qos": "QoS of the acks and downlink subscriptions: 1, or 0 on a NATS 2.9 cluster",
    "sync.reconnect_max_s": "cap of the reconnect backoff",
    "sync.compress": "zlib-compress batches (pays on a slow or metered link)",
    "sync.compress_min_bytes": "only batches at least this big are compressed",
    "sync.update_key": "Ed25519 public key (base64) that signs model updates; empty: updates refused",
    "sync.cafile": "CA bundle: TLS with broker certificate verification",
    "sync.certfile": "station's client certificate (mTLS)",
    "sync.keyfile": "key of the client certificate",
    "sync.username": "broker user name",
    "sync.password": "broker password (better: PRESCREEN__SYNC__PASSWORD in the environment)",
    "sync.customs_keys": "customs public keys (base64 Ed25519) whose signed downlink this station obeys; "
    "empty: every downlink message is refused",
    "sync.receiver_keys": "receiver public keys (base64 Ed25519) whose signed acks mark records delivered",
    "sync.allow_insecure": "true only for demos and test benches: a broker without TLS and login, "
    "unsigned acks",
    "screening.weight_tolerance_pct": "measured vs declared weight may differ by this share",
    "screening.weight_tolerance_g": "... or by this much, whichever is larger",
    "screening.model_review_budget": "largest share of parcels the model alone may send to REVIEW",
    "screening.review_score": "model score from which a parcel is REVIEW (unset: from model_review_budget)",
    "screening.model_monitor_window": "parcels watched to quarantine a model raising far more than its card",
    "screening.hts_table": "USITC HTS export (CSV/JSON) to check 10-digit codes; empty: 6-digit HS only",
    "screening.hold_score": "model score from which its raise reads 'high risk' (the model never holds)",
    "screening.split_window_s": "window for spotting one consignee's shipment split into parcels",
    "screening.split_max_parcels": "parcels to one consignee within the window before it is flagged",
    "screening.model_path": "model directory; empty: the model shipped with the package",
    "screening.use_model": "false: rules only",
    "entry.account_channels": 'channel per carrier account, e.g. "CNPOST-EPACKET=postal, FWD-AIR-01=cargo"',
    "entry.usd_rates_path": "JSON table of USD rates to convert order values with (docs/data-mapping.md)",
    "http.enabled": "serve the station page, /metrics, /healthz and /status",
    "http.host": "address to listen on (keep it on localhost: the page carries parcel data)",
    "http.port": "port; give each station on one host its own (0: any free port)",
    "http.language": "language of the station page (a page can ask for ?lang=es)",
    "http.token_file": "0600 file with the local API token POSTs need; empty: http.token beside the outbox",
    "http.timeout_s": "a socket read or write of the local server times out after this",
    "http.max_connections": "connections the local server serves at once; more are closed",
    "logging.level": "log level of the key=value lines on stderr (the journal)",
    "health.broker_grace_s": "a broker unreachable for longer than this makes the station degraded",
    "health.device_grace_s": "a scanner or scale missing for longer than this makes it degraded",
    "health.log_every_s": "a lasting health problem is logged again this often",
}


def _toml(value: object) -> str:
    if isinstance(value, (tuple, list)):
        return "[" + ", ".join(_toml(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{ " + ", ".join(f"{k} = {_toml(v)}" for k, v in value.items()) + " }" if value else "{}"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (tuple, list)):
        return "[" + ", ".join(_toml(v) for v in value) + "]"
    return json.dumps(value) if isinstance(value, str) else repr(value)


def _number(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else f"{value:g}"


def _allowed(section: type[Section], key: str) -> str:
    """The key's type and bounds in words, from the schema."""
    hint = typing.get_type_hints(section)[key]
    if typing.get_origin(hint) is dict:
        return "a table of CURRENCY = number"
    if typing.get_origin(hint) in (tuple, list):
        bounds = bounds_of(section, key)
        return "a list of strings" + (f" matching {bounds.pattern}" if bounds.pattern else "")
    kind = describe(hint)
    bounds = bounds_of(section, key)
    parts = []
    if bounds.allowed():
        return "one of: " + ", ".join(bounds.allowed())
    if bounds.above is not None:
        parts.append(f"above {_number(bounds.above)}")
    if bounds.min is not None:
        parts.append(f"at least {_number(bounds.min)}")
    if bounds.max is not None:
        parts.append(f"at most {_number(bounds.max)}")
    if bounds.pattern is not None:
        parts.append(f"matching {bounds.pattern}")
    return kind + (f", {', '.join(parts)}" if parts else "")


def example() -> str:
    """The whole example config: sections uncommented, every key commented out at its default."""
    required = {f"{section}.{key}" for section, key, _ in cfg.REQUIRED_TO_RUN}
    out = [
        "# prescreen agent configuration (prescreen config example). Default path /etc/prescreen/agent.toml.",
        "# Every key is shown at its default, commented out: uncomment what you change.",
        "# Any key can also come from the environment: PRESCREEN__SECTION__KEY (PRESCREEN__SYNC__PASSWORD).",
        "# Check a file with: prescreen config check FILE (the same validation as prescreen run).",
    ]
    hints = typing.get_type_hints(cfg.Config)
    for field in dataclasses.fields(cfg.Config):
        section: type[Section] = hints[field.name]
        doc = (section.__doc__ or "").strip().splitlines()[0]
        out += ["", f"[{field.name}]", f"# {doc}"]
        defaults: Any = section()
        for key_field in dataclasses.fields(section):
            name = f"{field.name}.{key_field.name}"
            default = getattr(defaults, key_field.name)
            meaning = MEANING.get(name, "(undocumented)")
            out += ["", f"# {meaning} ({_allowed(section, key_field.name)})"]
            if name in required:
                out.append("# REQUIRED to run a station: uncomment and set")
            if default is None:
                out.append(f"# {key_field.name}: unset by default")
            else:
                out.append(f"#{key_field.name} = {_toml(default)}")
    return "\n".join(out) + "\n"
