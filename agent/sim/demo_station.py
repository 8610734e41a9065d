"""The demo's simulated packing station: pty scanner and scale read by the real drivers, the
agent, a local broker and the reference receiver, driven as an operator would drive a bench.

Used by ``prescreen demo`` (:mod:`prescreen.sim.demo`), the benchmark and the tests that need a
whole station; kept apart from the demo's story (parcels, compliance and learning rounds, summary).
"""

from __future__ import annotations

import json
import queue
import subprocess
import time
from pathlib import Path
from typing import Any

from prescreen.core.errors import ConfigError
from prescreen.core.signing import DeviceKey, TrustStore
from prescreen.drivers.registry import scale_protocol
from prescreen.drivers.sim import ScaleSimulator, ScannerSimulator
from prescreen.ops import config as cfg
from prescreen.packing.app import Agent
from prescreen.packing.events import StationEvent
from prescreen.sim.samples import ACCOUNT_CHANNELS, DEMO_RATES, Step
from prescreen.sim.syncbench import enrol, start_receiver, stop_process
from prescreen.sync.broker import LocalBroker
from prescreen.sync.customs import CustomsLink, seal, send_downlink
from prescreen.sync.delivery import check_delivery, ledger_of
from prescreen.sync.receiver import Receiver
from prescreen.sync.store import open_store
from prescreen.web.server import api_headers


def demo_config(
    workdir: Path,
    scale_port: str,
    scanner_port: str,
    broker: LocalBroker,
    *,
    customs: DeviceKey | None = None,
    receiver: DeviceKey | None = None,
    update: DeviceKey | None = None,
    http_port: int = 0,
) -> cfg.Config:
    """The station config the demo runs with: fast polling, everything under ``workdir`` (where the
    demo's USD rate table is written), the demo's customs and receiver keys trusted, and a broker
    on loopback without TLS or a login (``allow_insecure``: the demo says so when it starts)."""
    config = cfg.Config()
    config = cfg.replace(
        config,
        "scale",
        url=scale_port,
        protocol="mt-sics",
        poll_interval_ms=10,
        settle_readings=3,
        settle_ms=20,
    )
    config = cfg.replace(config, "scanner", url=scanner_port)
    config = cfg.replace(config, "orders", path=str(workdir / "orders.ndjson"))
    config = cfg.replace(config, "outbox", path=str(workdir / "outbox.db"))
    config = cfg.replace(config, "http", port=http_port)
    rates = workdir / "usd-rates.json"  # the demo's illustrative rate table, written with the config
    rates.write_text(json.dumps(DEMO_RATES))
    config = cfg.replace(config, "entry", account_channels=ACCOUNT_CHANNELS, usd_rates_path=str(rates))
    return cfg.replace(
        config,
        "sync",
        host=broker.host,
        port=broker.port,
        batch_age_ms=20,
        customs_keys=(customs.public_b64,) if customs else (),
        receiver_keys=(receiver.public_b64,) if receiver else (),
        update_key=update.public_b64 if update else "",
        allow_insecure=True,
    )


_SIDE_EVENTS = frozenset(
    {"downlink", "late_hold", "shelf_outcome", "correction", "outcome", "rfi_response", "screening"}
)


class DemoStation:
    """One simulated station with its broker and receiver, for the demo and the browser tests.

    ``run(step)`` is the simulated operator: place the parcel, scan its label, wait for the
    verdict, take the parcel off; a HOLD is then put on the shelf and confirmed with a scan of the
    shelf label, as at a real bench.
    """

    def __init__(
        self,
        workdir: Path,
        orders: list[dict[str, Any]],
        broker_kind: str = "mosquitto",
        *,
        receiver_process: bool = False,
        http_port: int = 0,
        models: bool = False,
    ) -> None:
        workdir.mkdir(parents=True, exist_ok=True)
        (workdir / "orders.ndjson").write_text("".join(json.dumps(o) + "\n" for o in orders))
        self.workdir = workdir
        self.broker = LocalBroker.start(prefer=broker_kind)
        # The station's key is made before the agent's first start (as `prescreen key show` does
        # at enrolment), so the receiver trusts exactly this station and verifies every record.
        _, trust = enrol(workdir, cfg.StationConfig(), workdir / "device.key")
        self.station_keys = TrustStore.load(trust)  # the station's acks to customs are checked too
        # The customs side's keys: one signs downlink messages, one the receiver's acks.
        self.customs_key = DeviceKey.load_or_create(workdir / "customs.key")
        self.receiver_key = DeviceKey.load_or_create(workdir / "receiver.key")
        # With ``models``, the station trusts the demo's model update key (the learning loop).
        self.update_key = DeviceKey.load_or_create(workdir / "update.key") if models else None
        self.receiver: Receiver | None = None
        self._receiver_process: subprocess.Popen[bytes] | None = None
        self._start_receiver(trust, in_process=not receiver_process)
        self.scale = ScaleSimulator(scale_protocol("mt-sics"))
        self.scanner = ScannerSimulator()
        self.events: queue.Queue[StationEvent] = queue.Queue()
        self.agent: Agent | None = None
        try:
            self.agent = self._start_agent(http_port)
        except BaseException:
            self.close()
            raise
        self.agent.station.listeners.append(self.events.put)

    def _start_receiver(self, trust: Path, *, in_process: bool) -> None:
        """In-process for tests that look inside the receiver; its own process (as deployed, on
        another machine) for the demo and the benchmark, so it does not share the agent's GIL."""
        shared = self.broker.kind == "mosquitto"
        if not in_process:
            extra = (
                "--key",
                str(self.workdir / "receiver.key"),
                *(("--prefix", "prescreen/v1") if shared else ("--no-share",)),
            )
            self._receiver_process = start_receiver(
                self.workdir / "receiver.db", self.broker, self.workdir / "receiver.sock", trust, *extra
            )
            return
        self.receiver = Receiver(
            self.workdir / "receiver.db",
            trust=TrustStore.load(trust),
            host=self.broker.host,
            port=self.broker.port,
            shared=shared,
            signer=self.receiver_key,
        ).start()
        self.receiver.mqtt.wait_connected(10)

    def _start_agent(self, http_port: int) -> Agent:
        config = demo_config(
            self.workdir,
            self.scale.port,
            self.scanner.port,
            self.broker,
            http_port=http_port,
            customs=self.customs_key,
            receiver=self.receiver_key,
            update=self.update_key,
        )
        try:
            return Agent(config).start()
        except ConfigError:
            if http_port == 0:
                raise
            # The documented port was taken between the check and the start (another demo, a
            # test run): the page on any free port rather than no demo.
            return Agent(cfg.replace(config, "http", port=0)).start()

    @property
    def url(self) -> str:
        """The station page."""
        if self.agent is None or self.agent.http is None:
            raise RuntimeError("the demo station has no HTTP server")
        return self.agent.http.url + "/station"

    def page_url(self, query: str = "") -> str:
        """The station page with the local API's token, as ``prescreen page-url`` prints it."""
        if self.agent is None or self.agent.http is None:
            raise RuntimeError("the demo station has no HTTP server")
        return f"{self.url}{query}#token={self.agent.http.token}"

    def api_headers(self) -> dict[str, str]:
        """What a local client of this station's API sends with a POST (token from the 0600 file)."""
        assert self.agent is not None
        return api_headers(self.agent.config.api_token_path())

    def api_config(self, path: Path) -> Path:
        """A TOML config with which ``prescreen correct|outcome|rfi|rfs`` on this machine reach this
        station's local API (its port and the 0600 token file), written to ``path``."""
        assert self.agent is not None
        assert self.agent.http is not None
        port = self.agent.http.url.rsplit(":", 1)[1]
        token = self.agent.config.api_token_path()
        path.write_text(f'[http]\nhost = "127.0.0.1"\nport = {port}\ntoken_file = "{token}"\n')
        return path

    def run(self, step: Step, *, shelf: str | None = "SHELF-A1") -> tuple[StationEvent, StationEvent | None]:
        """One parcel at the bench; returns its verdict event and, for a HOLD, its confirmation
        (``shelf`` None leaves the HOLD waiting for the operator, e.g. a touch on the page)."""
        if step.weight_kg is not None:
            self.scale.place(step.weight_kg, motion=2)
        self.scanner.scan(step.payload, aim=step.aim)
        event = self._next_scan_event()
        if step.weight_kg is not None:
            self.scale.place("0", motion=1)
        confirmation = None
        if shelf is not None and event.record is not None and event.record["screening"]["verdict"] == "HOLD":
            self.scanner.scan(shelf)
            confirmation = self._next_scan_event()
        return event, confirmation

    def shelve(self, shelf: str = "SHELF-A1") -> StationEvent:
        """The operator puts a fetched-back parcel on the hold shelf and scans the shelf label."""
        self.scanner.scan(shelf)
        return self._next_scan_event()

    def _next_scan_event(self) -> StationEvent:
        # Events of other sources (downlink messages, corrections, outcomes) may come in between.
        while True:
            event = self.events.get(timeout=30)
            if event.kind not in _SIDE_EVENTS:
                return event

    def send(
        self, message: dict[str, Any], *, sealed: bool = False, wait_s: float = 10.0
    ) -> dict[str, Any] | None:
        """Send the station a downlink message as the customs side (signed with the demo's customs
        key unless ``sealed`` already); returns its ack, or None if none came in ``wait_s``."""
        station = cfg.StationConfig()
        return send_downlink(
            message,
            site=station.site_id,
            device=station.device_id,
            host=self.broker.host,
            port=self.broker.port,
            key=None if sealed else self.customs_key,
            wait_s=wait_s,
            stations=self.station_keys,
        )

    def send_all(
        self, messages: list[dict[str, Any]], *, wait_s: float = 10.0
    ) -> list[dict[str, Any] | None]:
        """Send several downlink messages over one customs connection, pipelined (as :meth:`send`
        each, without a connection and a round trip per message); their acks, in order."""
        station = cfg.StationConfig()
        link = CustomsLink(
            station.site_id,
            station.device_id,
            host=self.broker.host,
            port=self.broker.port,
            stations=self.station_keys,
        )
        try:
            site, device = station.site_id, station.device_id
            sealed = [seal(m, self.customs_key, site=site, device=device) for m in messages]
            return link.exchange_all(sealed, wait_s=wait_s)
        finally:
            link.close()

    def delivery(self) -> dict[str, Any]:
        """Whether every committed record reached the receiver's store exactly once
        (:func:`prescreen.sync.delivery.check_delivery`), with its counts."""
        assert self.agent is not None
        uplink = self.agent.uplink
        committed = ledger_of(
            self.agent.config.station.site_id,
            self.agent.config.station.device_id,
            self.agent.outbox.sequence(),
        )
        store = self.receiver.store if self.receiver is not None else open_store(self.workdir / "receiver.db")
        try:
            report = check_delivery(store, [committed], resent=lambda: uplink.copies_sent_again)
        finally:
            if self.receiver is None:
                store.close()
        return {
            "received": report.stored,
            "duplicates": report.deduplicated,
            "resent": report.resent,
            "rejected": report.rejected,
            "exactly_once": report.ok,
            "delivery_problems": report.problems,
        }

    def drain(self, timeout_s: float = 30) -> None:
        """Wait until the receiver acked every committed record."""
        assert self.agent is not None
        deadline = time.monotonic() + timeout_s
        while self.agent.outbox.counts().get("pending", 0) and time.monotonic() < deadline:
            time.sleep(0.05)

    def close(self) -> None:
        """Stop everything, agent first."""
        if self.agent is not None:
            self.agent.stop()
        if self.receiver is not None:
            self.receiver.stop()
        if self._receiver_process is not None:
            stop_process(self._receiver_process)
        self.scale.close()
        self.scanner.close()
        self.broker.stop()
