"""``prescreen doctor``: check an installation the way site IT would, one line per check.

Why: at 3 a.m. the question is "what is wrong and what do I do", not a stack trace. Each check says
ok, warn or FAIL, what it saw, and for anything not ok what to do about it. Only FAIL makes the
command exit non-zero; a warning (a backlog building up) is worth seeing but not an outage.
"""

from __future__ import annotations

import dataclasses
import os
import shutil
import socket
import ssl
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Literal
from urllib.parse import urlsplit

import httpx
from prescreen.core.errors import ModelError, OutboxError, PrescreenError
from prescreen.core.records import epoch_s
from prescreen.ops import config as cfg
from prescreen.ops.health import clock_condition
from prescreen.web.server import check_listen

Level = Literal["ok", "warn", "FAIL"]
BACKLOG_WARN_S = 3600


@dataclasses.dataclass(frozen=True)
class Check:
    """One check's result."""

    name: str
    level: Level
    detail: str
    fix: str = ""

    def line(self) -> str:
        """``ok    name        detail`` (plus ``→ fix`` when not ok)."""
        text = f"{self.level:<5} {self.name:<10} {self.detail}"
        return f"{text}\n      → {self.fix}" if self.fix and self.level != "ok" else text


def _port(name: str, url: str) -> Check:
    if url.startswith("sim://"):
        return Check(name, "ok", f"{url} (built-in simulator)")
    if "://" in url:
        return Check(name, "ok", f"{url} (pyserial URL, not checked here)")
    path = Path(url)
    if not path.exists():
        return Check(
            name,
            "FAIL",
            f"{url}: no such device",
            f"plug the {name} in, or fix {name}.url (ls -l /dev/serial/by-id/)",
        )
    if not os.access(path, os.R_OK | os.W_OK):
        return Check(
            name,
            "FAIL",
            f"{url}: no read/write permission",
            "install systemd/99-prescreen-devices.rules or add the service user to group dialout",
        )
    return Check(name, "ok", f"{url} present and readable")


def _tls(conf: cfg.Config) -> Check:
    """A TLS handshake with the broker using the station's CA and certificate: names the exact
    TLS problem (expired, wrong CA, wrong host name) that an MQTT connect would only time out on."""
    sync = conf.sync
    where = f"{sync.host}:{sync.port}"
    if not (sync.cafile or sync.certfile):
        return Check("tls", "warn", f"{where} without TLS", "set sync.cafile (and certfile/keyfile for mTLS)")
    try:
        context = ssl.create_default_context(cafile=sync.cafile or None)
        if sync.certfile:
            context.load_cert_chain(sync.certfile, sync.keyfile or None)
        with (
            socket.create_connection((sync.host, sync.port), timeout=5) as raw,
            context.wrap_socket(raw, server_hostname=sync.host) as tls,
        ):
            version = tls.version()
    except (OSError, ssl.SSLError, ValueError) as exc:
        return Check(
            "tls",
            "FAIL",
            f"TLS to {where}: {exc}",
            "check sync.cafile/certfile/keyfile, the certificates' dates and that the broker's name matches",
        )
    client = " with client certificate" if sync.certfile else ""
    return Check("tls", "ok", f"{version} to {where}, broker certificate verified{client}")


def _http(conf: cfg.Config) -> Check:
    """The agent's local server (station page, /metrics, /healthz) must be able to listen: a port
    another program (or another station's agent on this host) holds would stop ``run``."""
    http = conf.http
    if not http.enabled:
        return Check("http", "ok", "disabled: no station page, /metrics or /healthz")
    where = f"{http.host}:{http.port}"
    if http.port == 0:
        return Check("http", "ok", f"{http.host}, a free port picked at start")
    problem = check_listen(http.host, http.port)
    if problem is None:
        return Check("http", "ok", f"{where} free for the station page, /metrics and /healthz")
    try:
        running = httpx.get(http.url("/status"), timeout=2).json().get("device_id")
    except (httpx.HTTPError, ValueError, AttributeError):
        running = None
    if running == conf.station.device_id:
        return Check("http", "warn", f"{where} in use by {running}'s running agent", "fine while it runs")
    return Check("http", "FAIL", problem, f"set [http] port to a free port (ss -ltnp | grep {http.port})")


def _broker(conf: cfg.Config) -> Check:
    from prescreen.sync.mqtt import MqttConnection
    from prescreen.sync.uplink import security_of

    sync = conf.sync
    where = f"{sync.host}:{sync.port}"
    try:  # a refused or unroutable port is said at once, not after the MQTT timeout
        socket.create_connection((sync.host, sync.port), timeout=3).close()
    except OSError as exc:
        return Check(
            "broker",
            "FAIL",
            f"no TCP connection to {where}: {exc.strerror or exc}",
            "check sync.host/sync.port and that the broker runs; records wait safely in the outbox",
        )
    connection = MqttConnection(
        client_id=f"doctor-{uuid.uuid4().hex[:8]}", host=sync.host, port=sync.port, security=security_of(sync)
    )
    try:
        connection.start()
        deadline = time.monotonic() + 5
        while not (connected := connection.wait_connected(0.05)) and not connection.refused:
            if time.monotonic() > deadline:
                break
    finally:
        connection.stop()
    if connected:
        return Check("broker", "ok", f"MQTT connection to {where} accepted")
    if connection.refused:
        return Check(
            "broker",
            "FAIL",
            f"broker {where} refused the connection: {connection.refused}",
            "check sync.username/password or the certificate's CN, and the broker's ACL for this device",
        )
    return Check(
        "broker",
        "FAIL",
        f"no MQTT connection to {where} within 5 s",
        "check sync.host/sync.port, the network and the broker; records wait safely in the outbox",
    )


def _signing_key(conf: cfg.Config) -> Check:
    from prescreen.core.signing import DeviceKey
    from prescreen.packing.app import device_key_path

    path = device_key_path(conf)
    if not path.exists():
        return Check("key", "ok", f"{path} will be created at first start (then: prescreen key show)")
    try:
        key = DeviceKey.load_or_create(path)
    except PrescreenError as exc:
        return Check(
            "key", "FAIL", str(exc), "restore the key from backup, or enrol a new one with the receiver"
        )
    return Check("key", "ok", f"{path}: key {key.key_id} (give the receiver `prescreen key show`)")


def _orders(conf: cfg.Config) -> Check:
    orders = conf.orders
    if orders.source == "file":
        path = Path(orders.path)
        if not path.is_file():
            return Check("orders", "FAIL", f"{path}: no such file", "fix orders.path or the export job")
        age_h = (time.time() - path.stat().st_mtime) / 3600
        level: Level = "warn" if age_h > 24 else "ok"
        return Check("orders", level, f"{path}, last written {age_h:.1f} h ago", "check the WMS export job")
    parts = urlsplit(orders.url)
    base = f"{parts.scheme}://{parts.netloc}/"
    try:
        httpx.get(base, timeout=3)
    except httpx.HTTPError as exc:
        return Check("orders", "FAIL", f"WMS {base} unreachable: {exc}", "check orders.url and the network")
    return Check("orders", "ok", f"WMS {base} answers")


def _disk(conf: cfg.Config) -> Check:
    directory = Path(conf.outbox.path).parent
    probe = directory if directory.exists() else Path("/")
    free_mb = shutil.disk_usage(probe).free / 2**20
    if free_mb < conf.outbox.min_free_mb:
        return Check(
            "disk",
            "FAIL",
            f"{free_mb:.0f} MB free under {probe}, floor is {conf.outbox.min_free_mb} MB",
            "free disk space; the agent sheds telemetry first but needs room for verdicts",
        )
    return Check("disk", "ok", f"{free_mb:.0f} MB free under {probe}")


def _outbox_and_clock(conf: cfg.Config) -> Iterator[Check]:
    from prescreen.packing.outbox import Outbox

    path = Path(conf.outbox.path)
    newest: str | None = None
    if not path.exists():
        yield Check("outbox", "ok", f"{path} not created yet (first start creates it)")
    else:
        try:
            outbox = Outbox(path)
        except OutboxError as exc:
            yield Check("outbox", "FAIL", str(exc), "restore the file from backup or move it aside")
            return
        try:
            backlog = outbox.backlog()
            (newest,) = outbox.db.conn.execute("SELECT MAX(created_at) FROM records").fetchone()
        finally:
            outbox.close()
        oldest = backlog["oldest_pending_at"]
        age = time.time() - epoch_s(oldest) if oldest else 0
        level: Level = "warn" if age > BACKLOG_WARN_S else "ok"
        yield Check(
            "outbox",
            level,
            f"{backlog['pending']} record(s) waiting, oldest {age / 60:.0f} min, "
            f"last ack {backlog['last_ack_at']}",
            "records are safe on disk; check the broker and the receiver",
        )
    level_now, detail = clock_condition(time.time(), epoch_s(newest) if newest else None)
    if level_now == "ok":
        yield Check("clock", "ok", detail)
    else:  # the same rule as the running agent's clock condition
        yield Check("clock", "FAIL", detail, "enable NTP: timedatectl set-ntp true")


def _model(conf: cfg.Config) -> Check:
    if not conf.screening.use_model:
        return Check("model", "warn", "disabled: screening rules-only", "set screening.use_model = true")
    from prescreen.models.runner import load_risk_model

    try:
        model = load_risk_model(conf.screening.model_path or None)
    except ModelError as exc:
        return Check("model", "FAIL", str(exc), "reinstall the package or fix screening.model_path")
    return Check("model", "ok", f"{model.version} loads on {model.runtime}")


HTS_TABLE_STALE_DAYS = 120  # USITC publishes several revisions a year; an old table misses new lines


def _hts_table(conf: cfg.Config) -> Check:
    """The optional US HTS table: loads, which revision, how old."""
    path = conf.screening.hts_table
    if not path:
        return Check("hts", "ok", "none: codes checked to six digits (HS 2022 nomenclature)")
    from prescreen.core.errors import ModelError
    from prescreen.models.nomenclature import load_hts_table

    try:
        table = load_hts_table(path)
        age_days = (time.time() - os.stat(path).st_mtime) / 86_400
    except (ModelError, OSError) as exc:
        return Check("hts", "FAIL", str(exc), "export the HTS again from hts.usitc.gov (CSV or JSON)")
    detail = f"{table.revision}, {len(table.codes)} ten-digit lines, file {age_days:.0f} days old"
    if age_days > HTS_TABLE_STALE_DAYS:
        return Check("hts", "warn", detail, "load the current revision from hts.usitc.gov")
    return Check("hts", "ok", detail)


def run_checks(config_path: str) -> list[Check]:
    """Every check, in the order an engineer would look; a bad config stops the rest."""
    try:
        conf = cfg.load_station(config_path)
    except PrescreenError as exc:
        return [Check("config", "FAIL", str(exc), "fix the file; `prescreen doctor` again")]
    checks = [Check("config", "ok", config_path)]
    steps: list[Callable[[], Check]] = [
        lambda: _http(conf),
        lambda: _port("scanner", conf.scanner.url),
        lambda: _port("scale", conf.scale.url),
        lambda: _orders(conf),
        lambda: _disk(conf),
        lambda: _model(conf),
        lambda: _hts_table(conf),
        lambda: _signing_key(conf),
        lambda: _tls(conf),
    ]
    checks += [step() for step in steps]
    if checks[-1].level == "FAIL":  # an MQTT connect would only time out on the same TLS problem
        checks.append(Check("broker", "FAIL", "not tried: TLS to the broker failed (above)", "fix TLS first"))
    else:
        checks.append(_broker(conf))
    checks += list(_outbox_and_clock(conf))
    return checks
