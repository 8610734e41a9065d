"""``where_in`` selects exactly the values it is given, as a range only when they have no gap."""

from __future__ import annotations

import sqlite3

from prescreen.core.db import where_in


def test_a_run_without_a_gap_is_a_range_and_any_other_set_an_in_list() -> None:
    conn = sqlite3.connect(":memory:")
    conn.execute("CREATE TABLE t (seq INTEGER PRIMARY KEY)")
    conn.executemany("INSERT INTO t VALUES (?)", [(n,) for n in range(1, 21)])
    for values in ([3, 4, 5, 6], [7], [2, 4, 9], [1, 2, 3, 5]):
        sql, params = where_in("seq", values)
        assert ("BETWEEN" in sql) == (values[-1] - values[0] + 1 == len(values))
        found = [row[0] for row in conn.execute(f"SELECT seq FROM t WHERE {sql} ORDER BY seq", params)]
        assert found == values
