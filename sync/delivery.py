"""Did every committed record reach the receiver's store exactly once? A check that can fail.

Why this and not ``COUNT(*) - COUNT(DISTINCT record_id)``: the record id is the store's primary
key, so that difference is 0 by construction and proves nothing. What can go wrong is a record
that never arrives, a sequence number stored twice under two ids (a replay let through), a record
stored under an id the station never committed, or a receiver that deduplicates copies nobody
sent. So, per device, what the station committed (a :class:`Ledger`: how many records, their
first and last sequence number, and a digest of the ``(seq, record_id)`` pairs in sequence order)
is compared with what the store holds: rows = distinct seqs = committed, the same range, no gaps
and the same digest. And the receiver's own dedupe counter is compared with the copies the
stations sent more than once: it may be lower (a copy lost on the way, or dropped by a busy
receiver, is never deduplicated) but never higher.

One function, :func:`check_delivery`, used by ``prescreen bench sync``, ``make bench``,
``make chaos`` and the demo.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from prescreen.sync.store import Store


@dataclass(frozen=True)
class Ledger:
    """One device's records: how many, their sequence range and a digest of who holds each seq."""

    site_id: str
    device_id: str
    rows: int
    distinct_seqs: int
    first_seq: int | None
    last_seq: int | None
    digest: str

    @property
    def key(self) -> tuple[str, str]:
        """(site id, device id): devices are named within their site."""
        return self.site_id, self.device_id


def ledger_of(site_id: str, device_id: str, pairs: Iterable[tuple[int, str]]) -> Ledger:
    """The ledger of ``(seq, record_id)`` pairs given in sequence order (outbox or store)."""
    digest = hashlib.sha256()
    rows, seqs, first, last = 0, set(), None, None
    for seq, record_id in pairs:
        digest.update(f"{int(seq)}:{record_id}\n".encode())
        rows += 1
        seqs.add(int(seq))
        first = int(seq) if first is None else min(first, int(seq))
        last = int(seq) if last is None else max(last, int(seq))
    return Ledger(site_id, device_id, rows, len(seqs), first, last, digest.hexdigest())


def stored_ledgers(store: Store) -> dict[tuple[str, str], Ledger]:
    """The ledger of every device with records in ``store``."""
    with store.transaction() as cur:
        cur.execute("SELECT site_id, device_id, seq, record_id FROM records ORDER BY site_id, device_id, seq")
        rows = cur.fetchall()
    by_device: dict[tuple[str, str], list[tuple[int, str]]] = {}
    for site, device, seq, record_id in rows:
        by_device.setdefault((str(site), str(device)), []).append((int(seq), str(record_id)))
    return {key: ledger_of(key[0], key[1], pairs) for key, pairs in by_device.items()}


@dataclass
class DeliveryReport:
    """What the check found; ``problems`` is empty when every record arrived exactly once."""

    committed: int
    stored: int
    deduplicated: int  # the receiver's durable counter: copies it acked without storing again
    rejected: int
    resent: int | None  # copies sent more than once (uplink re-sends, transport re-publishes, injected)
    problems: list[str] = field(default_factory=list)

    @property
    def lost(self) -> int:
        """Committed records the store does not hold (by count; ``problems`` says which)."""
        return max(0, self.committed - self.stored)

    @property
    def ok(self) -> bool:
        """True when the check found nothing wrong."""
        return not self.problems

    def as_json(self) -> dict[str, Any]:
        """The figures for a ``--json`` summary."""
        return {
            "committed": self.committed,
            "stored": self.stored,
            "lost": self.lost,
            "resent": self.resent,
            "deduplicated": self.deduplicated,
            "rejected": self.rejected,
            "exactly_once": self.ok,
            "problems": self.problems,
        }


def _compare(committed: Ledger, stored: Ledger | None) -> list[str]:
    """What is wrong with one device's stored records, against what it committed."""
    name = f"{committed.site_id}/{committed.device_id}"
    if stored is None:
        return [f"{name}: none of {committed.rows} committed records stored"] if committed.rows else []
    problems = []
    if stored.rows != stored.distinct_seqs:
        problems.append(f"{name}: {stored.rows - stored.distinct_seqs} stored rows reuse another row's seq")
    if stored.distinct_seqs != committed.rows:
        problems.append(f"{name}: {stored.distinct_seqs} distinct seqs stored, {committed.rows} committed")
    if (stored.first_seq, stored.last_seq) != (committed.first_seq, committed.last_seq):
        problems.append(
            f"{name}: stored seqs {stored.first_seq}..{stored.last_seq}, "
            f"committed {committed.first_seq}..{committed.last_seq}"
        )
    if stored.first_seq is not None and stored.last_seq is not None:
        missing = stored.last_seq - stored.first_seq + 1 - stored.distinct_seqs
        if missing:
            problems.append(f"{name}: {missing} seqs missing in {stored.first_seq}..{stored.last_seq}")
    if not problems and stored.digest != committed.digest:
        problems.append(f"{name}: stored (seq, record id) pairs differ from the committed ones")
    return problems


def check_delivery(
    store: Store,
    committed: Iterable[Ledger],
    *,
    resent: int | Callable[[], int] | None,
    injected: int = 0,
) -> DeliveryReport:
    """Compare ``store`` with what the stations ``committed``.

    ``resent``: record copies the stations' uplinks sent more than once (``None`` when unknown,
    e.g. the uplink was killed; the dedupe counter is then not compared), or a function reading
    a live uplink's count: it is read after the store's counter, so a copy sent in between cannot
    make the check fail. ``injected``: copies published behind the uplinks' backs (a test's
    duplicated network).
    """
    expected = {ledger.key: ledger for ledger in committed}
    found = stored_ledgers(store)
    stats = store.stats()
    if callable(resent):
        resent = resent()
    problems = [p for key, ledger in expected.items() for p in _compare(ledger, found.get(key))]
    problems += [
        f"{site}/{device}: {ledger.rows} records stored that no station here committed"
        for (site, device), ledger in found.items()
        if (site, device) not in expected
    ]
    sent_again = None if resent is None else resent + injected
    if sent_again is not None and stats["duplicates"] > sent_again:
        problems.append(
            f"the receiver deduplicated {stats['duplicates']} copies, but only {sent_again} were sent again"
        )
    return DeliveryReport(
        committed=sum(ledger.rows for ledger in expected.values()),
        stored=sum(found[key].rows for key in expected if key in found),
        deduplicated=stats["duplicates"],
        rejected=stats["rejected"],
        resent=sent_again,
        problems=problems,
    )
