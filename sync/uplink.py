"""Drain the outbox to the broker in batches; a record is done only when the receiver acks it.

At-least-once on the wire: a batch is re-sent after a reconnect or when its ack is overdue, and
the receiver deduplicates on record id. The in-flight window bounds how much is unacknowledged at
once, so a crash re-sends at most ``inflight_batches × batch_size`` records. Nothing waits only in
RAM: the outbox is the queue, and the uplink can die at any moment without losing a record.
"""

from __future__ import annotations

import collections
import logging
import queue
import threading
import time
import uuid
import zlib
from collections.abc import Iterable
from typing import Protocol

from prescreen.core.errors import OutboxError, SyncError
from prescreen.core.records import StationIdentity
from prescreen.core.signing import DeviceKey, KeyRing
from prescreen.core.wire import decode_ack, encode_joined
from prescreen.sync.mqtt import (
    Backoff,
    BrokerSettings,
    MessageHandler,
    MqttConnection,
    Security,
    parse_endpoints,
)
from prescreen.sync.topics import acks_topic, downlink_topic, receiver_presence_subscription, records_topic

log = logging.getLogger("prescreen.sync")
_RETIRED_BATCHES = 256  # batches re-sent whose late ack is still taken for their own records
# A receiver's presence message makes the station re-send its window at once (instead of after
# the ack timeout). Presence is not signed and anyone allowed to publish on its topic could send a
# stream of them, each making every station re-send up to inflight × batch_size records: at most
# one such re-send per this many seconds (the ack timeout still covers whatever it leaves).
PRESENCE_RESEND_GAP_S = 5.0


class AckRefused(SyncError):
    """An ack the station does not act on; ``kind`` names the counter."""

    def __init__(self, kind: str, reason: str) -> None:
        super().__init__(reason)
        self.kind = kind


class RecordQueue(Protocol):
    """What the uplink needs of the station's outbox (the outbox is the queue: nothing waits in RAM)."""

    def pending(self, limit: int, *, after_seq: int = 0) -> list[tuple[int, str, bytes]]: ...
    def mark_acked_seqs(self, seqs: Iterable[int], *, state: str = "acked") -> int: ...


class UplinkSettings(BrokerSettings, Protocol):
    """The ``[sync]`` settings the uplink reads (the agent's config section satisfies it)."""

    @property
    def topic_prefix(self) -> str: ...
    @property
    def batch_size(self) -> int: ...
    @property
    def batch_age_ms(self) -> int: ...
    @property
    def inflight_batches(self) -> int: ...
    @property
    def ack_timeout_s(self) -> float: ...
    @property
    def compress(self) -> bool: ...
    @property
    def compress_min_bytes(self) -> int: ...
    @property
    def receiver_keys(self) -> tuple[str, ...]: ...
    @property
    def subscribe_qos(self) -> int: ...


def security_of(sync: BrokerSettings) -> Security:
    """The broker security settings from the ``[sync]`` section."""
    return Security(sync.cafile, sync.certfile, sync.keyfile, sync.username, sync.password)


class Uplink:
    """Background thread that moves pending records from the outbox to the receiver."""

    def __init__(
        self,
        outbox: RecordQueue,
        sync: UplinkSettings,
        station: StationIdentity,
        *,
        signer: DeviceKey | None = None,
    ) -> None:
        self.sync = sync
        self.signer = signer
        self.station = station
        # The caller owns the queue. Given the station's own outbox, the uplink shares its
        # connection and lock: a verdict's commit then waits at most for one ack transaction, woken
        # at once, instead of SQLite's busy handler, which sleeps 10-100 ms between retries on a
        # second connection.
        self.outbox = outbox
        self._records_topic = records_topic(sync.topic_prefix, station.site_id, station.device_id)
        self._downlink_topic = downlink_topic(sync.topic_prefix, station.site_id, station.device_id)
        self._presence_prefix = receiver_presence_subscription(sync.topic_prefix)[:-1]
        # Set by the agent: messages from customs on this device's downlink topic go here.
        self.on_downlink: MessageHandler | None = None
        self._acks: queue.Queue[bytes] = queue.Queue()
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._reset = threading.Event()
        # batch id -> ({record id: seq}, time sent)
        self._inflight: dict[str, tuple[dict[str, int], float]] = {}
        # Batches given up on for a re-send, whose late ack still counts (for their own records).
        self._retired: collections.OrderedDict[str, dict[str, int]] = collections.OrderedDict()
        # Whose acks count: the receivers' keys; none configured, acks are not authenticated
        # (library use and test benches: `prescreen run` insists unless allow_insecure).
        self._receivers = KeyRing(sync.receiver_keys) if sync.receiver_keys else None
        if self._receivers is None:
            log.warning("acks are not authenticated: no [sync] receiver_keys")
        self.acks_refused: collections.Counter[str] = collections.Counter()
        self._presence_resend_at = -PRESENCE_RESEND_GAP_S  # the first presence always counts
        self.presence_ignored = 0  # presence messages within the gap (no re-send: see above)
        self._cursor = 0
        self._waiting_since: float | None = None
        self.batches_sent = 0
        self.records_acked = 0
        self.records_sent = 0  # record copies handed to the broker, re-sends included
        self.records_resent = 0  # of those, copies of records this uplink had sent before
        # The highest seq sent: records go out in seq order, so one at or below it is a re-send.
        self._high_water = 0
        self.mqtt = self._connection()
        self._thread = threading.Thread(target=self._run, name="uplink", daemon=True)

    def _connection(self) -> MqttConnection:
        """The broker connection: acks, this device's downlink and receiver presence subscribed,
        each node of ``[sync] hosts`` tried in turn with the reconnect backoff."""
        return MqttConnection(
            client_id=f"station-{self.station.site_id}-{self.station.device_id}",
            host=self.sync.host,
            port=self.sync.port,
            on_message=self._on_message,
            subscriptions=(
                acks_topic(self.sync.topic_prefix, self.station.site_id, self.station.device_id),
                self._downlink_topic,
                receiver_presence_subscription(self.sync.topic_prefix),
            ),
            keepalive=self.sync.keepalive_s,
            on_connect=self._reset.set,
            security=security_of(self.sync),
            backoff=Backoff(cap_s=self.sync.reconnect_max_s),
            endpoints=parse_endpoints(self.sync.hosts, self.sync.port),
            subscribe_qos=self.sync.subscribe_qos,
        )

    def start(self) -> Uplink:
        """Connect and start draining; returns at once even if the broker is down."""
        self.mqtt.start()
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop draining; pending records stay in the outbox for next time."""
        self._stop.set()
        self._wake.set()
        self._thread.join(timeout=5)
        self.mqtt.stop()

    @property
    def alive(self) -> bool:
        """True while the drain thread runs."""
        return self._thread.is_alive()

    def notify(self) -> None:
        """Tell the uplink a record was committed (saves it waiting for the next poll)."""
        self._wake.set()

    def _on_message(self, topic: str, payload: bytes) -> None:
        if topic == self._downlink_topic:
            if self.on_downlink is not None:
                self.on_downlink(topic, payload)
            return
        if topic.startswith(self._presence_prefix):  # a receiver came (back) online
            now = time.monotonic()
            if now - self._presence_resend_at < PRESENCE_RESEND_GAP_S:
                self.presence_ignored += 1
                return
            self._presence_resend_at = now
            self._reset.set()
            self._wake.set()
            return
        self._acks.put(payload)
        self._wake.set()

    def _apply_acks(self) -> None:
        while True:
            try:
                payload = self._acks.get_nowait()
            except queue.Empty:
                return
            try:
                batch_id, acked, rejected = self._admit_ack(payload)
            except AckRefused as exc:
                self.acks_refused[exc.kind] += 1
                log.warning("ack refused", extra={"why": exc.kind, "reason": str(exc)[:300]})
                continue
            try:
                self.records_acked += self.outbox.mark_acked_seqs(acked)
                if rejected:
                    self.outbox.mark_acked_seqs(rejected, state="rejected")
                    log.error("receiver rejected records", extra={"records": len(rejected)})
            except OutboxError as exc:
                log.error("ack not recorded", extra={"reason": str(exc)})
                continue
            self._inflight.pop(batch_id, None)
            self._retired.pop(batch_id, None)

    def _admit_ack(self, payload: bytes) -> tuple[str, list[int], list[int]]:
        """(batch id, seqs acked, seqs rejected) of an ack signed by a trusted receiver, for a
        batch this station sent, naming only records of that batch; anything else is refused.

        Raises:
            AckRefused: why (malformed, unsigned, forged, tampered, unknown_batch, foreign_records).
        """
        try:
            ack = decode_ack(payload)
        except ValueError as exc:
            raise AckRefused("malformed", str(exc)) from None
        batch_id, acked, rejected = ack.batch_id, ack.acked, ack.rejected
        if self._receivers is not None:
            problem = self._receivers.check(ack.document)
            if problem is not None:
                raise AckRefused(problem.kind, f"batch {batch_id[:64]}: {problem.reason}")
        sent = self._inflight[batch_id][0] if batch_id in self._inflight else self._retired.get(batch_id)
        if sent is None:
            raise AckRefused("unknown_batch", f"batch {batch_id[:64]} is not one this station has in flight")
        foreign = [i for i in (*acked, *rejected) if i not in sent]
        if foreign:
            raise AckRefused("foreign_records", f"batch {batch_id}: {len(foreign)} record(s) not in it")
        return batch_id, [sent[i] for i in acked], [sent[i] for i in rejected]

    def _resend_all(self, why: str) -> None:
        if self._inflight:
            log.info("resending unacked batches", extra={"batches": len(self._inflight), "why": why})
        for batch_id, (sent, _) in self._inflight.items():
            self._retired[batch_id] = sent
        while len(self._retired) > _RETIRED_BATCHES:
            self._retired.popitem(last=False)
        self._inflight.clear()
        self._cursor = 0

    def _fill_window(self) -> None:
        now = time.monotonic()
        while len(self._inflight) < self.sync.inflight_batches:
            rows = self.outbox.pending(self.sync.batch_size, after_seq=self._cursor)
            if not rows:
                self._waiting_since = None
                if not self._inflight:  # all acked: look from the start again (records re-queued)
                    self._cursor = 0
                return
            if len(rows) < self.sync.batch_size:
                # Let a small batch grow for up to batch_age_ms: fewer, larger messages.
                self._waiting_since = self._waiting_since or now
                if (now - self._waiting_since) * 1000 < self.sync.batch_age_ms:
                    return
            self._waiting_since = None
            batch_id = uuid.uuid4().hex
            try:
                joined = b",".join([r[2] for r in rows])
                payload = encode_joined(batch_id, self.station.device_id, joined, self.signer)
                if self.sync.compress and len(payload) >= self.sync.compress_min_bytes:
                    payload = zlib.compress(payload, 1)
                self.mqtt.publish(self._records_topic, payload, weight=len(rows))
            except SyncError as exc:
                log.warning("batch not sent", extra={"reason": str(exc)})
                return
            self._inflight[batch_id] = ({r[1]: r[0] for r in rows}, now)
            self._cursor = rows[-1][0]
            self.batches_sent += 1
            self.records_sent += len(rows)
            self.records_resent += sum(1 for r in rows if r[0] <= self._high_water)
            self._high_water = max(self._high_water, rows[-1][0])

    @property
    def copies_sent_again(self) -> int:
        """Record copies sent more than once: this uplink's re-sends, and the batches its MQTT
        client published again after a reconnect (the receiver can deduplicate no more)."""
        return self.records_resent + self.mqtt.republished

    def _run(self) -> None:
        while not self._stop.is_set():
            self._wake.wait(self.sync.batch_age_ms / 1000)
            self._wake.clear()
            try:
                self._apply_acks()
                if self._reset.is_set():
                    self._reset.clear()
                    self._resend_all("reconnected, or a receiver came online")
                if not self.mqtt.connected.is_set():
                    continue
                overdue = [
                    b
                    for b, (_, sent) in self._inflight.items()
                    if time.monotonic() - sent > self.sync.ack_timeout_s
                ]
                if overdue:
                    self._resend_all("ack overdue")
                    # On a cluster the node may be cut off from the others: try the next one
                    # (the reconnect then re-sends what is in flight).
                    if self.mqtt.fail_over("acks overdue"):
                        continue
                self._fill_window()
            except OutboxError as exc:
                log.error("outbox unavailable to uplink", extra={"reason": str(exc)})
                self._stop.wait(1)
