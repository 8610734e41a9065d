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
import threading
from pathlib import Path
from typing import Any

import sqlite_utils
from prescreen.errors import RecordError, SyncError
from prescreen.outbox import open_durable
from prescreen.records import utc_now, validate
from prescreen.sync.mqtt import MqttConnection
from prescreen.sync.topics import acks_topic, parse_records_topic, records_subscription

log = logging.getLogger("prescreen.receiver")


def open_store(path: str | Path) -> sqlite_utils.Database:
    """The receiver's SQLite store, created on first use."""
    db = open_durable(path)
    if not db.table("records").exists():
        db.table("records").create(
            {
                "record_id": str,
                "device_id": str,
                "site_id": str,
                "seq": int,
                "kind": str,
                "verdict": str,
                "tracking_number": str,
                "created_at": str,
                "received_at": str,
                "body": str,
            },
            pk="record_id",
            not_null={"device_id", "site_id", "seq", "body"},
        )
        db.table("records").create_index(["device_id", "seq"])
        db.table("records").create_index(["tracking_number"])
    if not db.table("stats").exists():
        # Counters that survive restarts, updated in the same transaction as the records.
        db.table("stats").insert_all(
            [{"key": k, "value": 0} for k in ("stored", "duplicates", "rejected")], pk="key"
        )
    return db


def stats(db: sqlite_utils.Database) -> dict[str, int]:
    """Stored, duplicate and rejected record counts over the store's whole life."""
    return {k: int(v) for k, v in db.conn.execute("SELECT key, value FROM stats")}


class Receiver:
    """Subscribes to every station's records, stores each once, and acks per batch."""

    def __init__(
        self,
        db_path: str | Path,
        *,
        host: str = "127.0.0.1",
        port: int = 1883,
        prefix: str = "prescreen/v1",
        shared: bool = True,
    ) -> None:
        self.prefix = prefix
        self.db = open_store(db_path)
        self._lock = threading.Lock()
        self.stored = 0
        self.duplicates = 0
        self.rejected = 0
        self.mqtt = MqttConnection(
            client_id=f"receiver-{os.getpid()}-{id(self):x}",
            host=host,
            port=port,
            on_message=self.handle,
            subscriptions=(records_subscription(prefix, shared=shared),),
        )

    def start(self) -> Receiver:
        """Connect and start receiving in paho's network thread."""
        self.mqtt.start()
        return self

    def stop(self) -> None:
        """Disconnect; everything acked is already committed."""
        self.mqtt.stop()

    def handle(self, topic: str, payload: bytes) -> None:
        """Process one batch message: validate, store new records, then ack all of them."""
        try:
            site, device = parse_records_topic(self.prefix, topic)
            batch = json.loads(payload)
            records = batch["records"]
            if not isinstance(records, list):
                raise TypeError("records is not a list")
        except (SyncError, ValueError, TypeError, KeyError) as exc:
            self.rejected += 1
            log.warning("batch rejected", extra={"topic": topic, "reason": str(exc)[:200]})
            return
        acked, rejected = self._store(site, device, records)
        ack = {"batch_id": batch.get("batch_id"), "acked": acked, "rejected": rejected}
        self.mqtt.publish(acks_topic(self.prefix, site, device), json.dumps(ack).encode())

    def _check(self, record: Any, site: str, device: str) -> str | None:
        try:
            validate(record)
        except RecordError as exc:
            return str(exc)
        if record["device_id"] != device or record["site_id"] != site:
            return f"record of {record['site_id']}/{record['device_id']} sent on {site}/{device}"
        return None

    def _store(self, site: str, device: str, records: list[Any]) -> tuple[list[str], list[dict[str, str]]]:
        acked: list[str] = []
        rejected: list[dict[str, str]] = []
        now = utc_now()
        counts = {"stored": 0, "duplicates": 0, "rejected": 0}
        with self._lock:
            conn = self.db.conn
            conn.execute("BEGIN IMMEDIATE")
            for record in records:
                problem = self._check(record, site, device)
                record_id = str(record.get("record_id")) if isinstance(record, dict) else "?"
                if problem is not None:
                    counts["rejected"] += 1
                    log.warning("record rejected", extra={"record_id": record_id, "reason": problem[:300]})
                    rejected.append({"record_id": record_id, "reason": problem[:300]})
                    continue
                cursor = conn.execute(
                    "INSERT OR IGNORE INTO records (record_id, device_id, site_id, seq, kind, "
                    "verdict, tracking_number, created_at, received_at, body) "
                    "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    (
                        record_id,
                        device,
                        site,
                        record["seq"],
                        record["kind"],
                        (record.get("screening") or {}).get("verdict"),
                        (record.get("parcel") or record.get("outcome") or {}).get("tracking_number"),
                        record["created_at"],
                        now,
                        # records arrive key-sorted from the agent and json keeps their order, so
                        # this is the canonical form without the cost of sorting again
                        json.dumps(record, separators=(",", ":"), ensure_ascii=False),
                    ),
                )
                counts["stored" if cursor.rowcount else "duplicates"] += 1
                acked.append(record_id)
            conn.executemany(
                "UPDATE stats SET value = value + ? WHERE key = ?", [(v, k) for k, v in counts.items()]
            )
            conn.execute("COMMIT")
        self.stored += counts["stored"]
        self.duplicates += counts["duplicates"]
        self.rejected += counts["rejected"]
        return acked, rejected

    def count(self) -> int:
        """How many distinct records the store holds."""
        with self._lock:
            row = self.db.conn.execute("SELECT COUNT(*) FROM records").fetchone()
        return int(row[0])
