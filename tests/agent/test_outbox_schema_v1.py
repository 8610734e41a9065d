"""A new outbox is made with plain SQL (no sqlite-utils import in the running agent): the same tables,
columns, defaults and indexes sqlite-utils made for version 1, which the migrations start from."""

from __future__ import annotations

import sqlite3

import sqlite_utils
from prescreen.packing.outbox_schema import OutboxFile, _create_v1


def _shape(conn: sqlite3.Connection) -> dict[str, object]:
    tables = [r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name")]
    return {
        table: (
            conn.execute(f"PRAGMA table_info({table})").fetchall(),
            sorted(
                (name, unique, conn.execute(f"PRAGMA index_info({name})").fetchall())
                for _, name, unique, *_ in conn.execute(f"PRAGMA index_list({table})")
            ),
            conn.execute(f"SELECT * FROM {table}").fetchall(),
        )
        for table in tables
    }


def test_version_1_is_what_sqlite_utils_made() -> None:
    ours = sqlite3.connect(":memory:", isolation_level=None)
    _create_v1(OutboxFile(ours))
    _create_v1(OutboxFile(ours))  # idempotent: a crash half-way is simply redone
    theirs = sqlite_utils.Database(sqlite3.connect(":memory:", isolation_level=None))
    theirs.table("records").create(
        {"seq": int, "record_id": str, "kind": str, "created_at": str, "body": str, "state": str}
        | {"acked_at": str},
        pk="seq",
        not_null={"record_id", "body", "state"},
        defaults={"state": "pending"},
    )
    theirs.table("records").create_index(["record_id"], unique=True)
    theirs.table("records").create_index(["state", "seq"])
    theirs.table("meta").insert({"key": "schema_version", "value": "1"}, pk="key", replace=True)
    assert _shape(ours) == _shape(theirs.conn)
