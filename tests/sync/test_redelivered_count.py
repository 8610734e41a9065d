"""Batches a replicated stream hands out again are counted in the batch's own transaction
(review #10): the delivery check compares that counter with the dedupes, so it must never lag."""

from __future__ import annotations

from pathlib import Path

from prescreen.core.records import dumps
from prescreen.core.signing import DeviceKey, TrustStore
from prescreen.core.wire import encode_batch
from prescreen.sync.broker import LocalBroker
from prescreen.sync.receiver import Receiver
from record_fixtures import record

TOPIC = "rd/v1/site-a/dev-1/records"


def test_redelivered_batches_are_counted_with_their_commit(tmp_path: Path, broker: LocalBroker) -> None:
    key = DeviceKey.load_or_create(tmp_path / "station.key")
    trust = TrustStore([key.trust_entry("site-a", "dev-1")])
    receiver = Receiver(tmp_path / "rx.db", trust=trust, host=broker.host, port=broker.port, prefix="rd/v1")
    first = encode_batch("b1", "dev-1", [dumps(key.sign(record(n))) for n in (1, 2, 3)], key)
    second = encode_batch("b2", "dev-1", [dumps(key.sign(record(n))) for n in (4, 5)], key)
    try:
        # The stream delivers b1 first time and b2 again; then b1 again (a receiver died holding it).
        assert receiver.handle_many([(TOPIC, first), (TOPIC, second)], [False, True]) == [True, True]
        assert receiver.store.stats()["redelivered"] == 2
        assert receiver.handle_many([(TOPIC, first)], [True]) == [True]
        stats = receiver.store.stats()
        assert stats["redelivered"] == 5
        assert stats["duplicates"] == 3  # b1's three again: no more than the stream handed out again
        assert receiver.count() == 5
    finally:
        receiver.store.close()
