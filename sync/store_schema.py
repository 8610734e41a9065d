"""The receiver store's tables, counters and migrations (:mod:`prescreen.sync.store` runs them
when it opens a store). One SQL text for SQLite and PostgreSQL."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, Protocol

from prescreen.core.errors import ConfigError

COUNTERS = (
    "stored",
    "duplicates",
    "rejected",  # all rejections; the kinds below say why
    "rejected_invalid",
    "rejected_unsigned",
    "rejected_forged",
    "rejected_tampered",
    "rejected_replayed",
    "rejected_batches",  # batches refused whole (malformed, too many records, too many bytes)
    # records in batches a replicated stream handed out again (a receiver died or its ack to the
    # stream was lost after its commit): copies sent again that no station re-sent
    "redelivered",
)
_SCHEMA = (
    "CREATE TABLE IF NOT EXISTS records (record_id TEXT PRIMARY KEY, device_id TEXT NOT NULL, "
    "site_id TEXT NOT NULL, seq BIGINT NOT NULL, kind TEXT NOT NULL, verdict TEXT, "
    "tracking_number TEXT, created_at TEXT NOT NULL, received_at TEXT NOT NULL, body TEXT NOT NULL)",
    "CREATE INDEX IF NOT EXISTS records_tracking ON records (tracking_number)",
    "CREATE INDEX IF NOT EXISTS records_created ON records (created_at)",
    # Counters survive restarts and are updated in the same transaction as the records.
    "CREATE TABLE IF NOT EXISTS stats (key TEXT PRIMARY KEY, value BIGINT NOT NULL)",
    # The store's own schema version (a store from before this table is version 1).
    "CREATE TABLE IF NOT EXISTS store_meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)",
)
# Store migrations, by the version they produce; each runs in the setup transaction with the
# version bump, so a crash half-way leaves the old version intact. One SQL text for both back ends.
MIGRATIONS: dict[int, tuple[str, ...]] = {
    2: (
        # Rows stored before are v1 by construction: no station wrote v2 before this version.
        "ALTER TABLE records ADD COLUMN record_schema TEXT NOT NULL DEFAULT 'prescreen.record/v1'",
    ),
    # One record per device sequence number, enforced by the database: receivers sharing a store
    # check "seq already taken" before they insert, and two of them could both pass that check.
    3: (
        "DROP INDEX IF EXISTS records_device_seq",
        "CREATE UNIQUE INDEX records_device_seq ON records (site_id, device_id, seq)",
    ),
}
# Run before a migration's statements; rows found stop the upgrade with them named (below).
_MIGRATION_CHECKS = {
    3: "SELECT site_id, device_id, seq, COUNT(*) FROM records GROUP BY site_id, device_id, seq "
    "HAVING COUNT(*) > 1 ORDER BY site_id, device_id, seq",
}
STORE_VERSION = max(MIGRATIONS)


class Cursor(Protocol):
    """The DB-API cursor subset the store uses (sqlite3 and psycopg both provide it)."""

    @property
    def rowcount(self) -> int: ...

    def execute(self, sql: str, params: Sequence[Any] = ...) -> Any: ...

    def executemany(self, sql: str, params: Sequence[Sequence[Any]]) -> Any: ...

    def fetchone(self) -> Any: ...

    def fetchall(self) -> list[Any]: ...


def setup(cur: Cursor, sql: Callable[[str], str], lock_row: str) -> None:
    """Create the tables, migrate them to :data:`STORE_VERSION` and add missing counters, in the
    caller's transaction. ``sql`` adapts placeholders to the back end; ``lock_row`` (PostgreSQL:
    FOR UPDATE) makes two receivers starting together migrate once."""
    for statement in _SCHEMA:
        cur.execute(statement)
    _migrate(cur, sql, lock_row)
    for key in COUNTERS:
        cur.execute(sql("INSERT INTO stats (key, value) VALUES (?, 0) ON CONFLICT (key) DO NOTHING"), (key,))


def _migrate(cur: Cursor, sql: Callable[[str], str], lock_row: str) -> None:
    """Bring the tables up to :data:`STORE_VERSION` (inside the setup transaction).

    Raises:
        ConfigError: the store was written by a newer receiver: refuse rather than guess.
    """
    cur.execute(
        sql("INSERT INTO store_meta (key, value) VALUES ('schema_version', '1') ON CONFLICT (key) DO NOTHING")
    )
    cur.execute(f"SELECT value FROM store_meta WHERE key = 'schema_version'{lock_row}")
    found = int(cur.fetchone()[0])
    if found > STORE_VERSION:
        raise ConfigError(
            f"receiver store schema v{found} is newer than this receiver understands "
            f"(v{STORE_VERSION}): upgrade the receiver instead of downgrading it"
        )
    for version in range(found + 1, STORE_VERSION + 1):
        _check_before(cur, version)
        for statement in MIGRATIONS[version]:
            cur.execute(statement)
        cur.execute(sql("UPDATE store_meta SET value = ? WHERE key = 'schema_version'"), (str(version),))


def _check_before(cur: Cursor, version: int) -> None:
    """Refuse a migration its data would break, naming what is in the way, rather than fail
    on an error from the database (or, worse, drop rows to make it pass).

    Raises:
        ConfigError: for v3, device sequence numbers held by more than one record (replays
            stored before the database enforced one record per number); a person chooses.
    """
    if version not in _MIGRATION_CHECKS:
        return
    cur.execute(_MIGRATION_CHECKS[version])
    found = cur.fetchall()
    if found:
        named = "; ".join(f"{site}/{device} seq {seq} ({n} records)" for site, device, seq, n in found[:10])
        raise ConfigError(
            f"receiver store cannot be upgraded to v{version} (one record per device sequence "
            f"number): {len(found)} sequence numbers are held by more than one record, e.g. "
            f"{named}. Keep one record per number (prescreen records query --device D shows "
            "them), then start again; nothing was changed"
        )
