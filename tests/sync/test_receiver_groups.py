"""A receiver's transaction holds at most one batch a station: the station's next batch is sent
when one of its window is acked, so a group holding its whole window left the station idle until
that group's commit (and the receiver idle while the station then built its next window)."""

from __future__ import annotations

import queue
from collections import deque
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from prescreen.core.records import dumps
from prescreen.core.wire import encode_batch
from prescreen.sync import receiver as receiver_module
from prescreen.sync.broker import LocalBroker
from prescreen.sync.receiver import GROUP_BATCHES, Receiver
from record_fixtures import record

PREFIX = "rg/v1"


def _topic(device: str) -> str:
    return f"{PREFIX}/site-a/{device}/records"


def test_a_group_takes_one_batch_a_station_oldest_first_and_keeps_the_rest_in_order() -> None:
    waiting = deque(
        (_topic(device), f"{device}-{n}".encode())
        for device, n in (("a", 1), ("a", 2), ("b", 1), ("a", 3), ("b", 2), ("c", 1))
    )
    group = receiver_module._next_group(waiting)
    assert [payload for _, payload in group] == [b"a-1", b"b-1", b"c-1"]
    assert [payload for _, payload in waiting] == [b"a-2", b"a-3", b"b-2"]
    assert [payload for _, payload in receiver_module._next_group(waiting)] == [b"a-2", b"b-2"]
    assert [payload for _, payload in waiting] == [b"a-3"]


def test_a_group_of_many_stations_stops_at_group_batches() -> None:
    waiting = deque((_topic(f"dev-{n}"), b"") for n in range(GROUP_BATCHES + 3))
    assert len(receiver_module._next_group(waiting)) == GROUP_BATCHES
    assert len(waiting) == 3


class _Groups(Receiver):
    """The real receiver, noting the stations of each group it stores."""

    groups: queue.Queue[list[str]]

    def _check_group(self, messages: list[tuple[str, bytes]], redelivered: Sequence[bool] = ()) -> Any:
        self.groups.put([topic.split("/")[3] for topic, _ in messages])
        return super()._check_group(messages, redelivered)


def test_a_window_waiting_together_is_stored_and_acked_a_batch_at_a_time(
    tmp_path: Path, broker: LocalBroker
) -> None:
    receiver = _Groups(tmp_path / "rx.db", host=broker.host, port=broker.port, prefix=PREFIX)
    receiver.groups = queue.Queue()
    # Two stations' windows are already waiting when the worker starts (it was busy meanwhile).
    for n in range(1, 5):
        receiver._inbox.put((_topic("dev-1"), encode_batch(f"one-{n}", "dev-1", [dumps(record(n, "dev-1"))])))
    for n in range(1, 3):
        receiver._inbox.put((_topic("dev-2"), encode_batch(f"two-{n}", "dev-2", [dumps(record(n, "dev-2"))])))
    receiver.start()
    try:
        groups = [receiver.groups.get(timeout=30) for _ in range(4)]
        assert groups == [["dev-1", "dev-2"], ["dev-1", "dev-2"], ["dev-1"], ["dev-1"]]
    finally:
        receiver.stop()
    assert receiver.stored == 6
