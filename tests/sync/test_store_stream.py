"""Reading a big store (review finding 11): ``records labels`` and ``records shadow-report`` select
only the kinds they use in SQL and read rows as they go, on SQLite and PostgreSQL alike."""

from __future__ import annotations

import csv
import io
import tracemalloc
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from prescreen.core.records import dumps
from prescreen.sync.store import Filters, Store, open_store
from record_fixtures import record


@pytest.fixture(params=["sqlite", "postgresql"])
def where(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A new store's path or URL, for each back end."""
    if request.param == "sqlite":
        return str(tmp_path / "rx.db")
    return str(request.getfixturevalue("pg_url"))


@pytest.fixture
def store(where: str) -> Iterator[Store]:
    opened = open_store(where)
    try:
        yield opened
    finally:
        opened.close()


def _put(store: Store, bodies: list[tuple[str, Any]]) -> None:
    """(kind, body) pairs into the store as a receiver stores them; a str body is stored as is."""
    rows = []
    for seq, (kind, body) in enumerate(bodies, start=1):
        head = record(seq)
        text = body if isinstance(body, str) else dumps({**head, **body, "kind": kind})
        rows.append(
            (head["record_id"] if isinstance(body, str) else body.get("record_id", head["record_id"]),
             "dev-1", "site-a", seq, kind, None, f"1ZT{seq}", head["created_at"], head["created_at"],
             text, head["schema"])
        )  # fmt: skip
    with store.transaction() as cur:
        store.insert_many(cur, rows)


def _labelled_history() -> list[tuple[str, Any]]:
    verdict = {**record(1), "record_id": "rec-verdict-1"}
    verdict["order"] = {"items": [{"description": "mug", "quantity": 1, "unit_value_usd": 4.0}]}
    outcome = {
        "downlink": {
            "message_id": "m-1",
            "type": "outcome",
            "status": "applied",
            "effect": "seized",
            "customs_outcome": {
                "outcome": "seized",
                "reason_code": "T",
                "customs_reference": "C-1",
                "refers_to": "rec-verdict-1",
            },
        }
    }
    # A record of another kind whose body is not even JSON: labels must never read it.
    return [("verdict", verdict), ("rfi_response", "not json: never loaded"), ("downlink", outcome)]


def test_kinds_are_selected_in_sql_and_a_stream_gives_what_a_query_does(store: Store) -> None:
    _put(store, [(kind, {}) for kind in ("verdict", "rfi_response", "downlink", "screening", "verdict")])
    wanted = Filters(kinds=("verdict", "downlink"))
    assert [r["kind"] for r in store.query(wanted)] == ["verdict", "downlink", "verdict"]
    assert [r["seq"] for r in store.query(Filters(kinds=("screening",)))] == [4]
    assert store.query(Filters(kinds=())) == []
    queried = store.query(wanted)
    with store.stream(wanted, chunk=2) as rows:
        assert list(rows) == queried
    with store.stream(Filters(kinds=("verdict",), since="2999-01-01T00:00:00Z")) as rows:
        assert list(rows) == []


def test_records_labels_reads_only_verdicts_and_downlinks(
    where: str, store: Store, capsys: pytest.CaptureFixture[str]
) -> None:
    from prescreen.commands.main import main

    _put(store, _labelled_history())
    assert main(["records", "labels", "--db", where]) == 0
    (row,) = csv.DictReader(io.StringIO(capsys.readouterr().out))
    assert (row["record_id"], row["label"], row["customs_reference"]) == ("rec-verdict-1", "1", "C-1")
    assert main(["records", "shadow-report", "--db", where, "--json"]) == 0


def test_a_receiver_commits_while_a_stream_is_read(where: str, store: Store) -> None:
    _put(store, [("verdict", {}) for _ in range(5)])
    other = open_store(where)  # a receiver's own connection to the same store
    try:
        with store.stream(Filters(), chunk=1) as rows:
            first = next(rows)
            late = record(6)
            with other.transaction() as cur:  # would wait for the reader if it held a write turn
                other.insert_many(
                    cur,
                    [(late["record_id"], "dev-1", "site-a", 6, "verdict", None, None, late["created_at"],
                      late["created_at"], dumps(late), late["schema"])],
                )  # fmt: skip
            assert [first["seq"], *(r["seq"] for r in rows)] == [1, 2, 3, 4, 5]  # one snapshot
    finally:
        other.close()
    assert store.count() == 6


def test_a_stream_holds_a_chunk_of_rows_not_the_whole_store(store: Store) -> None:
    # 300 verdicts of ~20 KB: a query holds ~6 MB of bodies at once, a stream of 10 rows ~200 KB.
    padding = {"order": {"items": [{"description": "x" * 20_000, "quantity": 1}]}}
    _put(store, [("verdict", padding)] * 300)

    def peak(read: Any) -> int:
        tracemalloc.start()
        try:
            read()
            return tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()

    def streamed() -> None:
        with store.stream(Filters(kinds=("verdict",)), chunk=10) as rows:
            assert sum(len(r["body"]) for r in rows) > 300 * 20_000

    queried = peak(lambda: store.query(Filters(kinds=("verdict",))))
    read_as_streamed = peak(streamed)
    print(f"peak traced memory: query {queried / 2**20:.1f} MB, stream {read_as_streamed / 2**20:.2f} MB")
    assert read_as_streamed * 5 < queried
