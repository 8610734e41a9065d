"""One identity: a station never quietly becomes a new one, nor starts its sequence numbers again.

Probes from the issue with a whole demo station (real broker, receiver verifying signatures): an
emptied outbox, a deleted outbox, a deleted device key; and records the receiver rejected, queued
again by an operator after review.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest
from prescreen.commands.main import main
from prescreen.core.errors import ConfigError
from prescreen.packing.app import Agent
from prescreen.sim.demo_station import DemoStation
from prescreen.sim.samples import Step, generate
from prescreen.sync.store import Filters


@pytest.fixture
def bench(tmp_path: Path) -> Iterator[tuple[DemoStation, list[Step]]]:
    orders, steps = generate(12, seed=5)
    station = DemoStation(tmp_path / "station", orders)
    try:
        yield station, [s for s in steps if s.kind == "parcel"]
    finally:
        station.close()


def _restart(station: DemoStation) -> None:
    """Stop the agent and start it again on the same config (as systemd would)."""
    assert station.agent is not None
    config = station.agent.config
    station.agent.stop()
    station.agent = None
    station.agent = Agent(config).start()
    station.agent.station.listeners.append(station.events.put)


def _stored_seqs(station: DemoStation) -> list[int]:
    assert station.receiver is not None
    return sorted(int(r["seq"]) for r in station.receiver.store.query(Filters(device_id="station-01")))


@pytest.mark.slow
def test_an_emptied_outbox_goes_on_after_the_last_seq_and_the_receiver_takes_it(
    bench: tuple[DemoStation, list[Step]],
) -> None:
    station, steps = bench
    for step in steps[:3]:
        station.run(step)
    station.drain()
    before = _stored_seqs(station)
    assert station.agent is not None
    path = station.agent.outbox.path
    station.agent.stop()
    with sqlite3.connect(path) as db:  # emptied by hand, or swapped for a fresh file
        db.execute("DELETE FROM records")
        db.execute("DELETE FROM meta WHERE key = 'seq_floor'")
    station.agent = Agent(station.agent.config).start()
    station.agent.station.listeners.append(station.events.put)
    event, _ = station.run(steps[3])
    assert event.record is not None
    assert event.record["seq"] == max(before) + 1  # was 1: refused by the receiver as a replay
    station.drain()
    assert _stored_seqs(station) == [*before, max(before) + 1]
    assert station.receiver is not None
    assert station.receiver.store.stats()["rejected_replayed"] == 0


@pytest.mark.slow
def test_a_missing_outbox_or_key_stops_the_start_until_told(
    bench: tuple[DemoStation, list[Step]], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    station, steps = bench
    station.run(steps[0])
    assert station.agent is not None
    config = station.agent.config
    outbox, key = Path(config.outbox.path), station.workdir / "device.key"
    last = station.agent.outbox.rows("SELECT MAX(seq) FROM records")[0][0]
    station.agent.stop()
    station.agent = None
    for suffix in ("", "-wal", "-shm"):
        Path(f"{outbox}{suffix}").unlink(missing_ok=True)
    with pytest.raises(ConfigError, match=rf"signed records up to seq {last} but the outbox .* is missing"):
        Agent(config)
    assert not outbox.exists()  # nothing was created behind the operator's back
    toml = tmp_path / "agent.toml"
    toml.write_text(f'[station]\nkey_path = "{key}"\n[outbox]\npath = "{outbox}"\n')
    assert main(["key", "new", "--config", str(toml)]) == 1  # not without --i-know
    assert main(["key", "new", "--config", str(toml), "--i-know"]) == 0
    assert '"public_key"' in capsys.readouterr().out
    assert list(key.parent.glob("device.key.replaced-*"))
    agent = Agent(config).start()  # a new identity, on purpose; its seqs go on after the old key's
    try:
        record = agent.outbox.append(lambda seq: _outcome_like(seq, agent))
        assert record["seq"] == last + 1
    finally:
        agent.stop()
    key.unlink()  # now the key goes missing while the outbox is there
    with pytest.raises(ConfigError, match=r"exists but its device key .* does not"):
        Agent(config)
    assert not key.exists()  # no new key made silently


def _outcome_like(seq: int, agent: Agent) -> dict[str, object]:
    from prescreen.packing.outcomes import outcome_record

    return outcome_record(
        seq, agent.config.station, refers_to="none", tracking_number=None, outcome="held_on_shelf", shelf="A"
    )


def test_rejected_records_are_sent_again_after_review(
    bench: tuple[DemoStation, list[Step]], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    station, steps = bench
    station.run(steps[0])
    station.drain()
    assert station.agent is not None
    outbox = station.agent.outbox
    (record_id,) = outbox.rows("SELECT record_id FROM records ORDER BY seq LIMIT 1")[0]
    (seq,) = outbox.rows("SELECT seq FROM records WHERE record_id = ?", (record_id,))[0]
    with sqlite3.connect(outbox.path) as db:  # as a forged "rejected" ack once did (now refused)
        db.execute("UPDATE acks SET state = 'rejected' WHERE seq = ?", (seq,))
    assert outbox.counts().get("rejected") == 1
    toml = tmp_path / "agent.toml"
    toml.write_text(f'[outbox]\npath = "{outbox.path}"\n')
    assert main(["outbox", "requeue", "--config", str(toml), "--record", record_id]) == 0
    assert "1 rejected record(s) queued again" in capsys.readouterr().out
    station.drain()
    assert outbox.counts().get("rejected", 0) == 0
    assert "pending" not in outbox.counts()
