"""Receivers on a replicated stream: stations over the cluster's MQTT, receivers on JetStream."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import Callable
from pathlib import Path

import pytest
from prescreen.core.signing import DeviceKey, TrustStore
from prescreen.ops.config import StationConfig, SyncConfig
from prescreen.packing.outbox import Outbox
from prescreen.sim.syncbench import fill
from prescreen.sync.cluster import NatsCluster
from prescreen.sync.delivery import check_delivery, ledger_of
from prescreen.sync.jetstream import JetStreamReceiver, StreamSettings, subject_of, topic_of
from prescreen.sync.mqtt import parse_endpoints
from prescreen.sync.receiver import Receiver
from prescreen.sync.store import open_store
from prescreen.sync.uplink import Uplink


def test_topics_map_to_the_subjects_nats_gives_them_and_dots_are_refused() -> None:
    assert subject_of("prescreen/v1/+/+/records") == "prescreen.v1.*.*.records"
    assert topic_of("prescreen.v1.szx-dc1.bench-07.records") == "prescreen/v1/szx-dc1/bench-07/records"
    with pytest.raises(Exception, match="NATS"):
        subject_of("prescreen/v1/site.1/dev/records")


def _stream_replicas(cluster: NatsCluster, stream: str) -> int:
    import nats

    async def ask() -> int:
        client = await nats.connect(cluster.urls)
        try:
            info = await client.jetstream().stream_info(stream)
            return int(info.config.num_replicas or 0)
        finally:
            await client.close()

    return asyncio.run(ask())


@pytest.mark.slow
def test_stations_on_three_nodes_and_two_receivers_on_the_stream_store_each_record_once(
    nats_cluster: NatsCluster, pg_url: str, tmp_path: Path, wait_until: Callable[..., bool]
) -> None:
    prefix = f"t{uuid.uuid4().hex[:8]}/v1"
    settings = StreamSettings(stream=f"T{uuid.uuid4().hex[:8]}", ack_wait_s=5)
    receiver_key = DeviceKey.load_or_create(tmp_path / "receiver.key")
    stations, entries, outboxes = [], [], []
    for index in range(3):
        station = StationConfig(device_id=f"st-{index}", site_id="site-a")
        key = DeviceKey.load_or_create(tmp_path / f"{station.device_id}.key")
        entries.append(key.trust_entry(station.site_id, station.device_id))
        outbox = Outbox(tmp_path / f"{station.device_id}.db", signer=key)
        fill(outbox, 300, station)
        outbox.close()
        # Each station lists the nodes from another one first, so all three nodes carry stations.
        hosts = nats_cluster.mqtt_hosts[index:] + nats_cluster.mqtt_hosts[:index]
        sync = SyncConfig(
            hosts=hosts, topic_prefix=prefix, batch_size=25, receiver_keys=(receiver_key.public_b64,)
        )
        stations.append((station, sync, key))
        outboxes.append(tmp_path / f"{station.device_id}.db")
    (tmp_path / "trust.json").write_text(json.dumps({"keys": entries}))
    trust = TrustStore.load(tmp_path / "trust.json")
    receivers = [
        JetStreamReceiver(
            Receiver(
                pg_url,
                trust=trust,
                prefix=prefix,
                signer=receiver_key,
                records_via_mqtt=False,
                mqtt_options={"endpoints": parse_endpoints(nats_cluster.mqtt_hosts, 1883)},
            ),
            nats_cluster.urls[i:] + nats_cluster.urls[:i],
            settings,
        ).start()
        for i in range(2)
    ]
    uplinks: list[Uplink] = []
    queues: list[Outbox] = []
    try:
        assert all(r.wait_ready(20) for r in receivers)
        uplinks = [
            Uplink(Outbox(path), sync, station, signer=key).start()
            for path, (station, sync, key) in zip(outboxes, stations, strict=True)
        ]
        assert wait_until(lambda: all(u.records_acked == 300 for u in uplinks), 60)
        assert all(u.mqtt.broker in nats_cluster.mqtt_hosts for u in uplinks)
        assert _stream_replicas(nats_cluster, settings.stream) == 3
        assert all(r.batches > 0 for r in receivers)  # both took a share
    finally:
        for uplink in uplinks:
            uplink.stop()
        for queue in queues:
            queue.close()
        for receiver in receivers:
            receiver.stop()
    ledgers = []
    for path, (station, _, _) in zip(outboxes, stations, strict=True):
        outbox = Outbox(path)
        ledgers.append(ledger_of(station.site_id, station.device_id, outbox.sequence()))
        outbox.close()
    store = open_store(pg_url)
    try:
        report = check_delivery(store, ledgers, resent=sum(u.copies_sent_again for u in uplinks))
    finally:
        store.close()
    # Per device: rows = distinct seqs = committed, no gaps, the same record ids.
    assert report.problems == []
    assert report.committed == report.stored == 900
