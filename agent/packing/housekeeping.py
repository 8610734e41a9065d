"""Outbox housekeeping: retention, early purge of personal data, and limits with an alarm.

The outbox must never fill the disk of a box nobody watches, and must never drop a record that
has not reached the receiver. So, in this order:

1. acked records older than ``retention_days`` are pruned (the receiver holds them);
2. in acked records older than ``pii_days`` the names, addresses and ids of private persons
   (consignee, final recipient, an importer of record without an EIN; in an RFI answer every
   field but the goods' and the seller's, and the note) are erased from the stored body: the
   station keeps the evidence it needs (verdict, reasons, parcel, goods, seller) and no personal
   data longer than it must (the receiver holds the records whole);
3. over ``max_rows``/``max_mb`` or under the disk floor, acked records are pruned oldest first
   regardless of retention; if it is still over (a long outage: everything is pending), nothing
   pending is dropped, screening goes on, and an alarm is raised (log line, ``/healthz``, metrics);
4. below the disk floor, records of lower priority are refused first (see
   :data:`SHED_ORDER`): downlink effect records, then outcomes; verdicts last, only when SQLite
   itself can no longer write (the operator then sees NOT RECORDED).

The last sequence number is kept in ``meta`` before rows are pruned, so a station whose outbox
was emptied by pruning never reuses a sequence number (the receiver would reject it as replayed).
"""

from __future__ import annotations

import json
import logging
import shutil
import sqlite3
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any

from prescreen.core.records import dumps
from prescreen.ops.config import OutboxConfig
from prescreen.packing.outbox import Outbox

log = logging.getLogger("prescreen.outbox")

# Kinds refused first when the disk is at its floor; verdicts are never refused by policy.
SHED_ORDER = ("downlink", "outcome")
PRIVATE_PARTIES = ("consignee", "final_recipient")
_PRUNE_CHUNK = 5000


@dataclass
class Report:
    """What one housekeeping pass did and found."""

    pruned: int = 0
    purged: int = 0
    rows: int = 0
    mb: float = 0.0
    free_mb: float = 0.0
    alarm: str | None = None
    shed: tuple[str, ...] = field(default_factory=tuple)


def _cutoff(days: float, now: datetime) -> str:
    return (now - timedelta(days=days)).isoformat(timespec="milliseconds").replace("+00:00", "Z")


# The RFI answer fields kept after ``pii_days``: they describe the goods, or the seller (kept as
# in the order). Every other field is erased, a field added later included: consignee_tax_id (a
# private person's id), importer_of_record (free text, so whether it is a business's EIN or a
# buyer's SSN is unknown: erased, where the order's importer is kept only with an EIN), invoice
# (an invoice names the buyer and their address) and photo (a parcel's photo shows its label).
KEPT_RFI_FIELDS = frozenset(
    {"hts_code", "description", "manufacturer", "origin_country", "unit_value", "seller"}
)
ERASED = "[erased]"


def purge_personal_data(body: dict[str, Any]) -> dict[str, Any]:
    """``body`` without the names, addresses and ids of private persons."""
    order = body.get("order")
    if isinstance(order, dict):
        for party in PRIVATE_PARTIES:
            if isinstance(order.get(party), dict):
                order[party] = {"name": None, "address": None, "id": None}
        importer = order.get("importer_of_record")
        # An importer of record with an SSN or a CBP-assigned number is a private person (the
        # buyer importing for themself); one with an EIN is a business, kept like the seller.
        if isinstance(importer, dict) and importer.get("id_type") != "ein":
            order["importer_of_record"] = {"name": None, "address": None, "id": None}
    # An RFI answer: the erased fields stay, so the record keeps its shape and says what was asked.
    answer = body.get("rfi_response")
    if isinstance(answer, dict):
        if isinstance(answer.get("fields"), dict):
            for name in set(answer["fields"]) - KEPT_RFI_FIELDS:
                answer["fields"][name] = ERASED
        if answer.get("note") is not None:  # free text: it may name anyone
            answer["note"] = ERASED
    return body


def free_mb(outbox: Outbox) -> float:
    """Free space on the outbox's file system, in MB."""
    return shutil.disk_usage(outbox.path.parent).free / 2**20


def _usage(outbox: Outbox) -> tuple[int, float]:
    """Rows and MB of records, read on a connection of its own: the count reads the whole table,
    and on the outbox's connection it would hold the lock every verdict's commit needs (a WAL
    reader blocks no writer)."""
    conn = sqlite3.connect(f"file:{outbox.path}?mode=ro", uri=True, timeout=10)
    try:
        rows, size = conn.execute("SELECT COUNT(*), IFNULL(SUM(size), 0) FROM records").fetchone()
    finally:
        conn.close()
    return int(rows), float(size) / 2**20


def _prune(outbox: Outbox, where: str, params: tuple[Any, ...], limit: int, *, oldest: str = "seq") -> int:
    """Delete up to ``limit`` acked rows matching ``where``, ``oldest`` first (their seq, or their
    ack time: the acks index then finds them without a scan of every ack), remembering the last seq."""
    with outbox.transaction() as conn:
        conn.execute(
            "INSERT INTO meta (key, value) VALUES ('seq_floor', (SELECT IFNULL(MAX(seq), 0) FROM records)) "
            "ON CONFLICT (key) DO UPDATE "
            "SET value = MAX(CAST(value AS INTEGER), CAST(excluded.value AS INTEGER))"
        )
        # The outbox's records_gone trigger deletes each one's ack with it.
        first = f"SELECT seq FROM acks WHERE state = 'acked' AND {where} ORDER BY {oldest}, seq LIMIT ?"
        cursor = conn.execute(f"DELETE FROM records WHERE seq IN ({first})", (*params, limit))
        return int(cursor.rowcount)


def _purge(outbox: Outbox, before: str) -> int:
    rows = outbox.rows(
        "SELECT r.seq, r.body FROM records r JOIN acks a ON a.seq = r.seq "
        "WHERE a.state = 'acked' AND r.pii_purged = 0 AND r.created_at < ? LIMIT ?",
        (before, _PRUNE_CHUNK),
    )
    if not rows:
        return 0
    with outbox.transaction() as conn:
        for seq, body in rows:
            text = dumps(purge_personal_data(json.loads(body)))
            conn.execute(
                "UPDATE records SET body = ?, size = ?, pii_purged = 1 WHERE seq = ?", (text, len(text), seq)
            )
    return len(rows)


def housekeep(outbox: Outbox, limits: OutboxConfig, now: datetime | None = None) -> Report:
    """One pass of retention, purge and limits; sets ``outbox.shed`` for the kinds to refuse."""
    now = now or datetime.now(timezone.utc)
    report = Report()
    try:
        expired = (_cutoff(limits.retention_days, now),)
        while (pruned := _prune(outbox, "acked_at < ?", expired, _PRUNE_CHUNK, oldest="acked_at")) > 0:
            report.pruned += pruned
        while (purged := _purge(outbox, _cutoff(limits.pii_days, now))) > 0:
            report.purged += purged
        report.rows, report.mb = _usage(outbox)
        report.free_mb = free_mb(outbox)

        def over() -> bool:
            return (
                report.rows > limits.max_rows
                or report.mb > limits.max_mb
                or report.free_mb < limits.min_free_mb
            )

        while over() and (pruned := _prune(outbox, "1 = 1", (), _PRUNE_CHUNK)) > 0:
            report.pruned += pruned
            report.rows, report.mb = _usage(outbox)
            report.free_mb = free_mb(outbox)
    except sqlite3.Error as exc:
        report.alarm = f"outbox housekeeping failed: {exc}"
        log.error("outbox housekeeping failed", extra={"reason": str(exc)})
        return report
    if over():
        pending = outbox.backlog()["pending"]
        report.alarm = (
            f"outbox over its limits ({report.rows} rows, {report.mb:.0f} MB, {report.free_mb:.0f} MB free; "
            f"{pending} pending, none dropped): restore the link to the broker or add disk"
        )
        log.error(
            "outbox over its limits", extra={"rows": report.rows, "mb": round(report.mb), "pending": pending}
        )
    report.shed = SHED_ORDER if report.free_mb < limits.min_free_mb else ()
    outbox.shed = frozenset(report.shed)
    if report.pruned or report.purged:
        log.info(
            "outbox housekeeping",
            extra={"pruned": report.pruned, "purged": report.purged, "rows": report.rows},
        )
    return report
