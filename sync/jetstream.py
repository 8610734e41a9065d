"""Receivers on a replicated stream: station batches from NATS JetStream, acks back over MQTT.

Stations publish their batches over MQTT (3.1.1, QoS 1) to any node of a NATS cluster; the
cluster's MQTT gateway turns each topic into a subject (``/`` becomes ``.``), and a JetStream
stream with work-queue retention, replicated on three nodes, keeps every batch until a receiver
has committed it. Receivers pull through one durable consumer, so any number of them share the
load and a batch is handed to one receiver at a time. Each batch goes through the receiver's own
code path (:meth:`Receiver.handle`: inflate, batch signature, schema, dedupe, one transaction,
signed ack over MQTT); only when that says the batch is done is the message acked to JetStream,
which removes it. A receiver killed mid-batch leaves the message unacked, and JetStream hands it
to another receiver after ``ack_wait``: stored once (dedupe on record id), acked again.

NATS 2.9's MQTT gateway refuses topics with ``.`` or spaces (it closes the client), so on such a
cluster site and device ids must not contain a dot.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
import time
from dataclasses import dataclass
from typing import Any

from prescreen.core.errors import BrokerUnavailable, SyncError
from prescreen.sync.receiver import Receiver
from prescreen.sync.topics import records_subscription

log = logging.getLogger("prescreen.receiver")
_STREAM_NAME_IN_USE = 10058  # JetStream's error code when a stream of that name exists
STALE_S = 8.0  # a connection down this long is replaced by a new one


@dataclass(frozen=True)
class StreamSettings:
    """The stream and consumer the receivers share (the first receiver to start creates them)."""

    stream: str = "PRESCREEN_RECORDS"
    durable: str = "receivers"
    replicas: int = 3
    ack_wait_s: float = 10.0  # a batch not acked by then goes to another receiver
    fetch: int = 4  # batches pulled at once by one receiver
    # -1: bounded by the nodes' JetStream store (max_file_store); when full, new batches are
    # refused (the stations keep them and re-send), never old ones dropped.
    max_bytes: int = -1


def subject_of(topic: str) -> str:
    """The NATS subject the MQTT gateway maps ``topic`` (or an MQTT filter) to."""
    if "." in topic or " " in topic:
        raise SyncError(f"MQTT topic {topic!r} has '.' or ' ', which NATS's MQTT gateway refuses")
    return topic.replace("/", ".").replace("+", "*").replace("#", ">")


def topic_of(subject: str) -> str:
    """The MQTT topic a batch's subject came from."""
    return subject.replace(".", "/")


class JetStreamReceiver:
    """Feeds a :class:`Receiver` (made with ``records_via_mqtt=False``) from the stream.

    Runs its own asyncio loop on a thread; the receiver's store work runs on another thread, so
    the NATS client keeps answering pings while a batch commits.
    """

    def __init__(
        self, receiver: Receiver, servers: list[str], settings: StreamSettings | None = None
    ) -> None:
        self.receiver = receiver
        self.servers = servers
        self.settings = settings or StreamSettings()
        self.subject = subject_of(records_subscription(receiver.prefix, shared=False))
        self.batches = 0  # batches done with and acked to the stream
        self.redelivered = 0  # of them, handed out before (another receiver died holding them)
        self.ready = threading.Event()  # the consumer exists and the first pull went out
        self._stop = threading.Event()
        self._failed: BaseException | None = None
        self._thread = threading.Thread(target=self._main, name="jetstream", daemon=True)

    def start(self) -> JetStreamReceiver:
        """Start the receiver (its MQTT connection for acks), then pulling from the stream."""
        self.receiver.start()
        self._thread.start()
        return self

    def wait_ready(self, timeout: float) -> bool:
        """True once the stream and consumer exist; raises what stopped the thread, if it died."""
        self.ready.wait(timeout)
        if self._failed is not None:
            raise BrokerUnavailable(f"JetStream: {self._failed}") from self._failed
        return self.ready.is_set()

    def stop(self) -> None:
        """Stop pulling after the batch in hand (committed and acked, or left for redelivery)."""
        self._stop.set()
        self._thread.join(timeout=30)
        self.receiver.stop()

    def _main(self) -> None:
        try:
            asyncio.run(self._run())
        except Exception as exc:  # reported by wait_ready; the log line says why
            self._failed = exc
            log.error("jetstream receiver stopped", extra={"reason": str(exc)[:300]})

    async def _run(self) -> None:
        """Connect, pull until stopped; a connection that stays down past :data:`STALE_S` is
        dropped and a new one made with the next server first (nats-py's own reconnect can hang
        waiting for a dead socket to close, nats.py issue 671: seen here when a node was killed
        under load, the receiver then pulled nothing for minutes)."""
        servers = list(self.servers)
        while not self._stop.is_set():
            try:
                client = await self._connect(servers)
            except Exception as exc:  # no node answers yet: try again, the next one first
                log.warning("nats connect failed", extra={"reason": str(exc)[:200]})
                await asyncio.sleep(1)
            else:
                try:
                    await self._serve(client)
                except Exception as exc:  # this connection is no use: a new one, next node first
                    log.warning("stream connection given up", extra={"reason": str(exc)[:200]})
                finally:
                    with contextlib.suppress(Exception):
                        await asyncio.wait_for(client.close(), 2)
            servers = servers[1:] + servers[:1]

    async def _connect(self, servers: list[str]) -> Any:
        import nats

        return await nats.connect(
            servers,
            name=self.receiver.receiver_id,
            connect_timeout=2,
            reconnect_time_wait=0.25,
            max_reconnect_attempts=-1,
            dont_randomize=True,
            ping_interval=2,  # a dead or cut-off node is noticed in a few seconds
            max_outstanding_pings=2,
            error_cb=_log_error,
            disconnected_cb=_disconnected,
            reconnected_cb=_reconnected,
        )

    async def _serve(self, client: Any) -> None:
        """Pull and handle batches until stopped, or until the connection has been down too long."""
        pull = await self._subscribe(client)
        self.ready.set()
        down_since: float | None = None
        while not self._stop.is_set():
            if client.is_connected:
                down_since = None
                await self._pull_once(pull)
                continue
            down_since = down_since or time.monotonic()
            if time.monotonic() - down_since > STALE_S:
                log.warning("nats reconnect stalled: starting a new connection", extra={"after_s": STALE_S})
                return
            await asyncio.sleep(0.2)

    async def _subscribe(self, client: Any) -> Any:
        """The stream and the shared consumer, made if missing. A cluster that has just started
        (or lost its quorum) answers "unavailable" for a while: tried again every second."""
        import nats.errors

        js = client.jetstream(timeout=5)
        started = time.monotonic()
        while True:
            try:
                await self._ensure_stream(js)
                return await js.pull_subscribe(
                    self.subject,
                    durable=self.settings.durable,
                    stream=self.settings.stream,
                    config=self._consumer(),
                )
            except (nats.errors.Error, TimeoutError) as exc:
                if self._stop.is_set() or (not client.is_connected and time.monotonic() - started > STALE_S):
                    raise
                log.warning("stream not ready, trying again", extra={"reason": str(exc)[:200]})
                await asyncio.sleep(1)

    def _consumer(self) -> Any:
        from nats.js.api import AckPolicy, ConsumerConfig

        return ConsumerConfig(
            durable_name=self.settings.durable,
            ack_policy=AckPolicy.EXPLICIT,
            ack_wait=self.settings.ack_wait_s,
            max_deliver=-1,  # a batch is never given up on: it is redelivered until stored
            max_ack_pending=1024,
            num_replicas=self.settings.replicas,
        )

    async def _ensure_stream(self, js: Any) -> None:
        from nats.js.api import DiscardPolicy, RetentionPolicy, StorageType, StreamConfig
        from nats.js.errors import BadRequestError, NotFoundError

        try:
            await js.stream_info(self.settings.stream)
            return
        except NotFoundError:
            pass
        config = StreamConfig(
            name=self.settings.stream,
            subjects=[self.subject],
            retention=RetentionPolicy.WORK_QUEUE,  # a batch is removed when a receiver acks it
            num_replicas=self.settings.replicas,
            storage=StorageType.FILE,
            max_bytes=self.settings.max_bytes,
            discard=DiscardPolicy.NEW,
        )
        try:
            await js.add_stream(config)
            log.info("stream created", extra={"stream": config.name, "replicas": config.num_replicas})
        except BadRequestError as exc:
            if exc.err_code != _STREAM_NAME_IN_USE:  # else another receiver made it first
                raise

    async def _pull_once(self, pull: Any) -> None:
        import nats.errors

        try:
            messages = await pull.fetch(self.settings.fetch, timeout=1)
        except (TimeoutError, nats.errors.TimeoutError):
            return
        except nats.errors.Error as exc:  # no leader yet, node lost: the client reconnects
            log.warning("stream pull failed", extra={"reason": str(exc)[:200]})
            await asyncio.sleep(0.25)
            return
        # The fetched batches go to the receiver together: one transaction (one fsync) for all,
        # their redeliveries counted inside it; each is removed from the stream only after it.
        again = [message.metadata.num_delivered > 1 for message in messages]
        done = await asyncio.to_thread(
            self.receiver.handle_many, [(topic_of(m.subject), m.data) for m in messages], again
        )
        for message, ok, repeat in zip(messages, done, again, strict=True):
            try:
                if ok:
                    await message.ack_sync(timeout=5)  # removed from the stream only now
                    self.batches += 1
                    self.redelivered += repeat
                else:
                    await message.nak(delay=1)
            except (nats.errors.Error, TimeoutError) as exc:  # redelivered after ack_wait; deduped
                log.warning("stream ack failed", extra={"reason": str(exc)[:200]})


async def _log_error(exc: Exception) -> None:
    log.warning("nats error", extra={"reason": str(exc)[:200]})


async def _disconnected() -> None:
    log.info("nats disconnected: reconnecting to another node")


async def _reconnected() -> None:
    log.info("nats reconnected")
