"""The reference receiver for the customs side: verify, deduplicate, store, acknowledge.

Exactly-once in the store on top of at-least-once delivery: records are inserted with their id
as primary key inside one transaction per batch, the transaction is committed, and only then is
the ack published. A crash between commit and ack just means the station re-sends and the
receiver acks the duplicates without storing them twice.
"""

from __future__ import annotations

import json
import logging
import os
import queue
import threading
import zlib
from pathlib import Path
from typing import Any

from prescreen.core.errors import RecordError, SyncError
from prescreen.core.records import dumps, utc_now, validate
from prescreen.core.signing import DeviceKey, Rejection, TrustStore
from prescreen.sync.mqtt import MqttConnection
from prescreen.sync.store import Store, open_store
from prescreen.sync.topics import (
    acks_topic,
    parse_records_topic,
    receiver_presence_topic,
    records_subscription,
)

log = logging.getLogger("prescreen.receiver")


# A batch is refused whole beyond these (a station's batch_size is at most 10,000): a cheap batch
# must not buy expensive work, memory or a huge ack.
MAX_BATCH_RECORDS = 10_000
MAX_SEQ = 2**53 - 1  # the record schema's maximum: exact in JSON and in a signed 64-bit column
MAX_RAW_BYTES = 16 * 2**20  # as received (compressed or not)
MAX_BATCH_BYTES = 64 * 2**20  # inflated
QUEUED_BATCHES = 32  # waiting for the worker; beyond, a batch is dropped and the station re-sends it
_RECORDS = ',"records":['
_DECODER = json.JSONDecoder()


def _is_seq(value: object) -> bool:
    """A sequence number the store can hold (the schema refuses the others, record by record)."""
    return type(value) is int and 1 <= value <= MAX_SEQ


class BatchRefused(ValueError):
    """A batch refused whole, before any record in it is looked at."""


def split_records(joined: str, limit: int = MAX_BATCH_RECORDS) -> tuple[list[Any], list[str]]:
    """Parse comma-joined JSON records, keeping each record's exact text.

    Raises:
        ValueError: not a comma-separated sequence of JSON values.
        BatchRefused: more than ``limit`` records.
    """
    records: list[Any] = []
    bodies: list[str] = []
    pos, end = 0, len(joined)
    while pos < end:
        if len(records) == limit:
            raise BatchRefused(f"more than {limit} records in one batch")
        record, stop = _DECODER.raw_decode(joined, pos)
        records.append(record)
        bodies.append(joined[pos:stop])
        pos = stop
        if pos < end:
            if joined[pos] != ",":
                raise ValueError(f"records are not comma-separated at {pos}")
            pos += 1
    return records, bodies


def inflate(payload: bytes) -> bytes:
    """A batch as JSON bytes: zlib-compressed batches (``[sync] compress``) are inflated, with a
    size cap so a hostile payload cannot exhaust memory.

    Raises:
        ValueError: not JSON-looking, corrupt, or larger than :data:`MAX_BATCH_BYTES` inflated.
    """
    if len(payload) > MAX_RAW_BYTES:
        raise BatchRefused(f"batch of {len(payload)} bytes, more than {MAX_RAW_BYTES}")
    if payload[:1] in (b"{", b" ", b"\n"):
        return payload
    try:
        inflater = zlib.decompressobj()
        data = inflater.decompress(payload, MAX_BATCH_BYTES)
    except zlib.error as exc:
        raise ValueError(f"neither JSON nor a zlib batch: {exc}") from None
    if inflater.unconsumed_tail:
        raise BatchRefused(f"batch inflates beyond {MAX_BATCH_BYTES} bytes")
    return data


class Receiver:
    """Subscribes to every station's records, stores each once, and acks per batch.

    With a ``trust`` store every record must carry a valid signature by the key of the station it
    names; without one (library use and tests only: the CLI insists) signatures are not checked.
    """

    def __init__(
        self,
        store: str | Path | Store,
        *,
        trust: TrustStore | None = None,
        host: str = "127.0.0.1",
        port: int = 1883,
        prefix: str = "prescreen/v1",
        shared: bool = True,
        mqtt_options: dict[str, Any] | None = None,
        signer: DeviceKey | None = None,
        records_via_mqtt: bool = True,
    ) -> None:
        self.prefix = prefix
        self.signer = signer
        self.store = store if isinstance(store, Store) else open_store(store)
        self.trust = trust
        self.counts = dict.fromkeys(("stored", "duplicates", "rejected", "rejected_batches", "dropped"), 0)
        # Batches are checked and stored on a worker thread: paho's network thread only queues
        # them, so keepalives and other batches never wait behind an expensive one.
        self._inbox: queue.Queue[tuple[str, bytes] | None] = queue.Queue(QUEUED_BATCHES)
        self._worker = threading.Thread(target=self._work, name="receiver-batches", daemon=True)
        self.batches_verified = 0  # batches whose one signature stood for all their records
        if trust is None:
            log.warning("receiver does not verify signatures (no trust store)")
        self.receiver_id = f"receiver-{os.getpid()}-{id(self):x}"
        self.mqtt = MqttConnection(
            client_id=self.receiver_id,
            host=host,
            port=port,
            on_message=self._enqueue,
            # Batches from a replicated stream (sync.jetstream) wait there for a receiver, so a
            # receiver reading them neither subscribes nor asks stations to re-send on connect.
            subscriptions=(records_subscription(prefix, shared=shared),) if records_via_mqtt else (),
            on_connect=self._announce if records_via_mqtt else None,
            **(mqtt_options or {}),
        )

    @property
    def stored(self) -> int:
        """Records this receiver stored since it started."""
        return self.counts["stored"]

    @property
    def duplicates(self) -> int:
        """Records this receiver acked again without storing them (already stored)."""
        return self.counts["duplicates"]

    @property
    def rejected(self) -> int:
        """Records and batches this receiver refused since it started."""
        return self.counts["rejected"]

    def _announce(self) -> None:
        """Tell the stations this receiver is (back) online: batches they sent while no receiver
        was subscribed were dropped by the broker, and they re-send them now rather than after
        their ack timeout."""
        presence = json.dumps({"receiver": self.receiver_id, "online": True, "at": utc_now()}).encode()
        try:
            self.mqtt.publish(receiver_presence_topic(self.prefix, self.receiver_id), presence)
        except SyncError as exc:
            log.warning("presence not announced", extra={"reason": str(exc)})

    def start(self) -> Receiver:
        """Start the batch worker, then connect (paho's network thread queues batches for it)."""
        self._worker.start()
        self.mqtt.start()
        return self

    def stop(self) -> None:
        """Disconnect, finish the queued batches; everything acked is already committed."""
        self.mqtt.stop()
        if self._worker.is_alive():
            self._inbox.put(None)
            self._worker.join(timeout=30)
        self.store.close()

    def _enqueue(self, topic: str, payload: bytes) -> None:
        """paho's thread: hand the batch to the worker, or drop it if the worker is that far behind
        (nothing is acked, so its station re-sends it after the ack timeout)."""
        try:
            self._inbox.put_nowait((topic, payload))
        except queue.Full:
            self.counts["dropped"] += 1
            log.warning("receiver busy, batch dropped: its station re-sends it", extra={"topic": topic})

    def _work(self) -> None:
        while (item := self._inbox.get()) is not None:
            try:
                self.handle(*item)
            except Exception:  # a bug on one batch must not stop the receiver
                log.exception("batch not handled", extra={"topic": item[0]})

    def handle(self, topic: str, payload: bytes) -> bool:
        """Process one batch message: check, store new records, then ack all of them.

        If the store fails the batch is not acked, so the station sends it again. Returns whether
        the batch is done with (committed, or refused whole for good): a replicated stream keeps
        a batch until then.
        """
        try:
            site, device = parse_records_topic(self.prefix, topic)
            text = inflate(payload).decode("utf-8")
            signed = self._signed_batch(text, site, device)
            if signed is not None:
                batch, records, bodies = signed
                batch_key: str | None = str(batch["key_id"])
            else:
                batch = json.loads(text)
                records = batch["records"]
                if not isinstance(records, list):
                    raise TypeError("records is not a list")
                if len(records) > MAX_BATCH_RECORDS:
                    raise BatchRefused(f"{len(records)} records in one batch, more than {MAX_BATCH_RECORDS}")
                bodies = [dumps(r) for r in records]  # canonical text, as a signature covers it
                batch_key = None
        except (SyncError, ValueError, TypeError, KeyError, UnicodeDecodeError) as exc:
            self._reject_batch(topic, payload, exc)
            return True
        self.batches_verified += batch_key is not None
        try:
            acked, rejected = self._store(site, device, records, bodies, batch_key)
        except Exception as exc:  # the store is down or a race aborted the transaction
            log.error("batch not stored, not acked", extra={"topic": topic, "reason": str(exc)[:300]})
            return False
        ack: dict[str, Any] = {"batch_id": batch.get("batch_id"), "acked": acked, "rejected": rejected}
        if self.signer is not None:  # the station takes an ack only from a receiver key it trusts
            ack = self.signer.sign(ack)
        try:
            self.mqtt.publish(acks_topic(self.prefix, site, device), json.dumps(ack).encode())
        except SyncError as exc:  # stored already; the station re-sends and gets the ack then
            log.warning("ack not sent", extra={"topic": topic, "reason": str(exc)})
        return True

    def _reject_batch(self, topic: str, payload: bytes, exc: Exception) -> None:
        """One log line and the durable ``rejected_batches`` counter for a batch refused whole."""
        self.counts["rejected"] += 1
        self.counts["rejected_batches"] += 1
        log.warning("batch rejected", extra={"topic": topic, "bytes": len(payload), "reason": str(exc)[:200]})
        try:
            with self.store.transaction() as cur:
                self.store.add_counts(cur, {"rejected_batches": 1})
        except Exception as error:  # the store is down: the log line stands
            log.error("rejected batch not counted", extra={"reason": str(error)[:300]})

    def _signed_batch(
        self, text: str, site: str, device: str
    ) -> tuple[dict[str, Any], list[Any], list[str]] | None:
        """(head, records, their exact texts) of a batch whose signature by this station's key
        verifies over the records as sent; None for any other batch (checked record by record).

        The fast path: one signature check for the whole batch, and each record's text is stored
        exactly as signed, without serialising it again.
        """
        if self.trust is None:
            return None
        at = text.find(_RECORDS)
        if at < 0 or not text.endswith("]}"):
            return None
        try:
            head = json.loads(text[:at] + "}")
        except ValueError:
            return None
        key_id, signature = head.get("key_id"), head.get("signature")
        joined = text[at + len(_RECORDS) : -2]
        if not isinstance(key_id, str) or not isinstance(signature, str):
            return None
        if not self.trust.verify_batch(key_id, site, device, joined.encode("utf-8"), signature):
            return None
        records, bodies = split_records(joined)
        return head, records, bodies

    def _check(self, record: Any, site: str, device: str, batch_key: str | None) -> Rejection | None:
        if not isinstance(record, dict):
            return Rejection("invalid", "record is not an object")
        try:
            validate(record)
        except RecordError as exc:
            return Rejection("invalid", str(exc))
        if record["device_id"] != device or record["site_id"] != site:
            return Rejection(
                "forged", f"record of {record['site_id']}/{record['device_id']} sent on {site}/{device}"
            )
        if self.trust is None:
            return None
        if batch_key is not None and (record.get("signature") or {}).get("key_id") == batch_key:
            return None  # these exact bytes were signed by this station's key (the batch signature)
        return self.trust.check(record)

    @staticmethod
    def _replayed(owners: dict[int, str], record: dict[str, Any]) -> Rejection | None:
        owner = owners.get(record["seq"])
        if owner is None or owner == record["record_id"]:
            return None
        return Rejection(
            "replayed",
            f"seq {record['seq']} already belongs to record {owner}: a replayed record, or an "
            "outbox restored from a backup or cloned to a second station",
        )

    def _store(
        self, site: str, device: str, records: list[Any], bodies: list[str], batch_key: str | None
    ) -> tuple[list[str], list[dict[str, str]]]:
        acked: list[str] = []
        rejected: list[dict[str, str]] = []
        now = utc_now()
        counts: dict[str, int] = {}
        rows: list[tuple[Any, ...]] = []
        with self.store.transaction() as cur:
            seqs = [r["seq"] for r in records if isinstance(r, dict) and _is_seq(r.get("seq"))]
            owners = self.store.seq_owners(cur, site, device, seqs)
            for record, body in zip(records, bodies, strict=True):
                record_id = str(record.get("record_id")) if isinstance(record, dict) else "?"
                problem = self._check(record, site, device, batch_key) or self._replayed(owners, record)
                if problem is not None:
                    for key in ("rejected", f"rejected_{problem.kind}"):
                        counts[key] = counts.get(key, 0) + 1
                    log.warning(
                        "record rejected",
                        extra={"record_id": record_id, "why": problem.kind, "reason": problem.reason[:300]},
                    )
                    rejected.append(
                        {"record_id": record_id, "reason": f"{problem.kind}: {problem.reason[:300]}"}
                    )
                    continue
                rows.append(
                    (
                        record_id,
                        device,
                        site,
                        record["seq"],
                        record["kind"],
                        (record.get("screening") or {}).get("verdict"),
                        (record.get("parcel") or record.get("outcome") or record.get("downlink") or {}).get(
                            "tracking_number"
                        ),
                        record["created_at"],
                        now,
                        body,
                        record["schema"],
                    )
                )
                owners.setdefault(record["seq"], record_id)
                acked.append(record_id)
            stored = self.store.insert_many(cur, rows)
            counts["stored"], counts["duplicates"] = stored, len(rows) - stored
            self.store.add_counts(cur, counts)
        for key in self.counts:
            self.counts[key] += counts.get(key, 0)
        return acked, rejected

    def count(self) -> int:
        """How many distinct records the store holds."""
        return self.store.count()
