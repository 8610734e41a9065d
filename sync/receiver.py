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
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from prescreen.core.errors import RecordError, SyncError
from prescreen.core.records import dumps, tracking_number_of, utc_now, validate
from prescreen.core.signing import DeviceKey, Rejection, TrustStore
from prescreen.core.wire import Batch, decode_batch, decode_record, encode_ack
from prescreen.sync.mqtt import MqttConnection
from prescreen.sync.store import Cursor, Store, open_store
from prescreen.sync.topics import (
    acks_topic,
    parse_records_topic,
    receiver_presence_topic,
    records_subscription,
)

log = logging.getLogger("prescreen.receiver")


QUEUED_BATCHES = 32  # waiting for the worker; beyond, a batch is dropped and the station re-sends it
GROUP_BATCHES = 8  # batches waiting together are stored in one transaction (one fsync), then acked


@dataclass
class _Checked:
    """A batch read and checked, waiting for its transaction.

    ``rows`` are the store rows of the records that passed every check the store is not needed
    for (shape, schema, station, signature); ``refused`` are the others. Both are made before the
    transaction: receivers sharing a store (``--workers``) take turns only for what needs it (the
    replay check against stored sequence numbers, the insert and the commit).
    """

    topic: str
    site: str
    device: str
    batch_id: Any
    count: int  # records in the batch
    rows: list[tuple[Any, ...]]
    refused: list[tuple[str, Rejection]]
    acked: list[str] = field(default_factory=list)
    rejected: list[dict[str, str]] = field(default_factory=list)
    redelivered: bool = False  # handed out again by a replicated stream (counted with the commit)


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
        self._closing = False  # set by stop(): batches arriving after it are not taken
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
        """Take no more batches, store the queued ones and ack them while still connected, then
        disconnect. Everything acked is committed; a batch that arrives once the stop has begun is
        not taken, and its station sends it again. (Disconnecting first lost the acks of the
        batches stored meanwhile: their stations sent them again as duplicates.)"""
        self._closing = True
        if self._worker.is_alive():
            self._inbox.put(None)
            self._worker.join(timeout=30)
        self.mqtt.stop()
        self.store.close()

    def _enqueue(self, topic: str, payload: bytes) -> None:
        """paho's thread: hand the batch to the worker, or drop it if the worker is that far behind
        (nothing is acked, so its station re-sends it after the ack timeout)."""
        if self._closing:
            return  # not acked: its station sends it again
        try:
            self._inbox.put_nowait((topic, payload))
        except queue.Full:
            self.counts["dropped"] += 1
            log.warning("receiver busy, batch dropped: its station re-sends it", extra={"topic": topic})

    def _work(self) -> None:
        stopping = False
        while not stopping:
            group: list[tuple[str, bytes]] = []
            item = self._inbox.get()
            while item is not None:  # take the batches already waiting, up to GROUP_BATCHES
                group.append(item)
                if len(group) == GROUP_BATCHES:
                    break
                try:
                    item = self._inbox.get_nowait()
                except queue.Empty:
                    break
            else:
                stopping = True
            try:
                self.handle_many(group)
            except Exception:  # a bug on one batch must not stop the receiver
                log.exception("batches not handled", extra={"batches": len(group)})

    def handle(self, topic: str, payload: bytes) -> bool:
        """Process one batch message (see :meth:`handle_many`); True when it is done with (committed,
        or refused whole for good): a replicated stream keeps a batch until then."""
        return self.handle_many([(topic, payload)])[0]

    def handle_many(self, messages: list[tuple[str, bytes]], redelivered: Sequence[bool] = ()) -> list[bool]:
        """Check batch messages, store their new records in one transaction, then ack each.

        One commit (one fsync) for the batches that waited together, and no ack before it. Per
        message, True when it is done for good (stored and acked, or refused whole); False when
        the store failed: nothing is acked, so the stations send those batches again.
        ``redelivered`` marks the messages a replicated stream handed out again: their records are
        counted (``redelivered``) in the same transaction, so a delivery check can tell those
        copies from the stations' re-sends whatever crashes when.
        """
        results = [True] * len(messages)
        checked: list[tuple[int, _Checked]] = []
        for index, (topic, payload) in enumerate(messages):
            batch = self._read(topic, payload)
            if batch is not None:
                batch.redelivered = index < len(redelivered) and redelivered[index]
                checked.append((index, batch))
        if not checked:
            return results
        try:
            self._store([batch for _, batch in checked])
        except Exception as exc:  # the store is down or a race aborted the transaction
            log.error(
                "batch not stored, not acked",
                extra={"topic": checked[0][1].topic, "batches": len(checked), "reason": str(exc)[:300]},
            )
            for index, _ in checked:
                results[index] = False
            return results
        for _, batch in checked:
            self._ack(batch)
        return results

    def _read(self, topic: str, payload: bytes) -> _Checked | None:
        """A batch decoded and checked for storing, or None if it was refused whole (logged and
        counted).

        Each record is decoded, checked and turned into its row before the next is decoded: its
        objects are freed at once instead of living (and being traversed by the garbage
        collector) until the whole group of batches is stored.
        """
        try:
            site, device = parse_records_topic(self.prefix, topic)
            batch = decode_batch(payload)
            # True: the batch signature covers each text as sent, so each is stored exactly as signed.
            batch_key = str(batch.key_id) if self._verified(batch, site, device) else None
            checked = _Checked(topic, site, device, batch.batch_id, len(batch.texts), [], [])
            received = utc_now()
            for text in batch.texts:
                self._add(checked, decode_record(text), text, batch_key, received)
        # RecursionError: a record nested thousands deep (a 4 KB message), refused like any other
        except (SyncError, ValueError, TypeError, KeyError, UnicodeDecodeError, RecursionError) as exc:
            self._reject_batch(topic, payload, exc)
            return None
        self.batches_verified += batch_key is not None
        return checked

    def _add(self, checked: _Checked, record: Any, text: bytes, batch_key: str | None, received: str) -> None:
        """Add one record to ``checked``: its store row, or its refusal."""
        problem = self._check(record, checked.site, checked.device, batch_key)
        if problem is not None:
            record_id = str(record.get("record_id")) if isinstance(record, dict) else "?"
            checked.refused.append((record_id, problem))
            return
        # Exactly as signed when the batch signature covers it; else the canonical text a
        # record's own signature covers.
        body = text.decode("utf-8") if batch_key is not None else dumps(record)
        checked.rows.append(
            (
                str(record["record_id"]),
                checked.device,
                checked.site,
                record["seq"],
                record["kind"],
                (record.get("screening") or {}).get("verdict"),
                tracking_number_of(record),
                record["created_at"],
                received,
                body,
                record["schema"],
            )
        )

    def _verified(self, batch: Batch, site: str, device: str) -> bool:
        """True if the batch signature by this station's key covers its records exactly as sent:
        one signature check stands for the whole batch, and each text is stored as signed."""
        if self.trust is None:
            return False
        if not isinstance(batch.key_id, str) or not isinstance(batch.signature, str):
            return False
        message = batch.signed_message()
        if message is None or not batch.signed_texts:
            return False
        return self.trust.verify_batch(batch.key_id, site, device, message, batch.signature)

    def _ack(self, batch: _Checked) -> None:
        """Publish the ack of a committed batch (signed when the receiver has a key)."""
        payload = encode_ack(batch.batch_id, batch.acked, batch.rejected, self.signer)
        try:
            self.mqtt.publish(acks_topic(self.prefix, batch.site, batch.device), payload)
        except SyncError as exc:  # stored already; the station re-sends and gets the ack then
            log.warning("ack not sent", extra={"topic": batch.topic, "reason": str(exc)})

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
    def _replayed(owners: dict[int, str], seq: int, record_id: str) -> Rejection | None:
        owner = owners.get(seq)
        if owner is None or owner == record_id:
            return None
        return Rejection(
            "replayed",
            f"seq {seq} already belongs to record {owner}: a replayed record, or an "
            "outbox restored from a backup or cloned to a second station",
        )

    def _store(self, batches: list[_Checked]) -> None:
        """Store the batches' new records and the counters in one transaction."""
        counts: dict[str, int] = {}
        with self.store.transaction() as cur:
            for batch in batches:
                rows = self._unreplayed(cur, batch, counts)
                stored = self.store.insert_many(cur, rows)
                lost = self._lost_races(cur, batch, rows, counts) if stored < len(rows) else 0
                counts["stored"] = counts.get("stored", 0) + stored
                counts["duplicates"] = counts.get("duplicates", 0) + len(rows) - stored - lost
                if batch.redelivered:
                    counts["redelivered"] = counts.get("redelivered", 0) + batch.count
            self.store.add_counts(cur, counts)
        for key in self.counts:
            self.counts[key] += counts.get(key, 0)

    def _unreplayed(self, cur: Cursor, batch: _Checked, counts: dict[str, int]) -> list[tuple[Any, ...]]:
        """The batch's checked rows whose device seq is free or their own; fills its ``acked`` and
        ``rejected`` (the refused records first, then the replayed ones)."""
        for record_id, problem in batch.refused:
            self._reject(batch, record_id, problem, counts)
        owners = self.store.seq_owners(cur, batch.site, batch.device, [row[3] for row in batch.rows])
        rows: list[tuple[Any, ...]] = []
        for row in batch.rows:
            record_id, seq = row[0], row[3]
            replayed = self._replayed(owners, seq, record_id)
            if replayed is not None:
                self._reject(batch, record_id, replayed, counts)
                continue
            rows.append(row)
            owners.setdefault(seq, record_id)
            batch.acked.append(record_id)
        return rows

    def _lost_races(
        self, cur: Cursor, batch: _Checked, rows: list[tuple[Any, ...]], counts: dict[str, int]
    ) -> int:
        """Reject as replayed the rows the store refused because another receiver committed a record
        under the same device seq after this batch's check (the UNIQUE (site_id, device_id, seq)
        index); returns how many. The rest of the rows not inserted are duplicates."""
        owners = self.store.seq_owners(cur, batch.site, batch.device, [row[3] for row in rows])
        lost = 0
        for row in rows:
            problem = self._replayed(owners, row[3], row[0])
            if problem is not None:
                batch.acked.remove(row[0])
                self._reject(batch, row[0], problem, counts)
                lost += 1
        return lost

    @staticmethod
    def _reject(batch: _Checked, record_id: str, problem: Rejection, counts: dict[str, int]) -> None:
        """One log line, the counters and the ack's ``rejected`` entry for a refused record."""
        for key in ("rejected", f"rejected_{problem.kind}"):
            counts[key] = counts.get(key, 0) + 1
        log.warning(
            "record rejected",
            extra={"record_id": record_id, "why": problem.kind, "reason": problem.reason[:300]},
        )
        batch.rejected.append({"record_id": record_id, "reason": f"{problem.kind}: {problem.reason[:300]}"})

    def count(self) -> int:
        """How many distinct records the store holds."""
        return self.store.count()
