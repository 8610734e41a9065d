"""The station's side of the downlink: each admitted message applied once, with its evidence.

:func:`attach` builds a station's :class:`~prescreen.sync.downlink.Downlink` (which parses,
authenticates and acks) and registers the station's handlers with it, one per message type
(parcels, settings, models). :class:`Journal` runs a handler on the station thread, the outbox's
only writer, and commits its effect together with a ``downlink`` record of it and the answer
customs gets, in one transaction, so the effect and its evidence cannot part. A message id seen
before is answered again with the first answer and never applied twice (MQTT QoS 1 redelivers);
the same id with other content is refused as a replay.
"""

from __future__ import annotations

import dataclasses
import json
import logging
from collections.abc import Callable
from concurrent.futures import Future
from typing import Any

from prescreen.core.records import Record, envelope
from prescreen.core.signing import DeviceKey
from prescreen.ops.config import SyncConfig
from prescreen.packing.downlink_models import ModelMessages
from prescreen.packing.downlink_parcels import ParcelMessages
from prescreen.packing.downlink_settings import SettingsMessages
from prescreen.packing.events import StationEvent
from prescreen.packing.side_tables import SideChanges
from prescreen.packing.station import Station
from prescreen.sync.downlink import Downlink, DownlinkError, DownlinkRefused, Effect, digest
from prescreen.sync.mqtt import MqttConnection

log = logging.getLogger("prescreen.downlink")


class Journal:
    """Applies admitted messages on the station thread and keeps their answers (an Applier)."""

    def __init__(self, station: Station, signer: DeviceKey | None = None) -> None:
        self.station = station
        self.outbox = station.outbox
        self.signer = signer  # customs can tell the station's answer from a forgery
        self.applied = 0
        self.rejected = 0

    def apply(self, message: dict[str, Any], handle: Callable[[], Effect]) -> Future[str]:
        """Queue ``handle`` for the station thread; the future resolves to the answer once committed."""
        answer: Future[str] = Future()

        def task() -> StationEvent:
            event, ack = self._apply(message, handle)
            answer.set_result(ack)
            return event

        def failed(done: Future[StationEvent]) -> None:
            error = done.exception()
            if error is not None:
                answer.set_exception(error)

        self.station.submit(task).add_done_callback(failed)
        return answer

    def _apply(self, message: dict[str, Any], handle: Callable[[], Effect]) -> tuple[StationEvent, str]:
        message_id, kind = str(message["message_id"]), str(message["type"])
        content = digest(message)
        seen = self.outbox.answer_of(message_id)
        if seen is not None:
            if json.loads(seen).get("message_sha256") != content:
                raise DownlinkRefused("replayed", f"message id {message_id} was used for other content")
            log.info("downlink message seen before, acked again", extra={"message_id": message_id})
            return StationEvent("downlink", message_id, None), seen
        try:
            effect, status = handle(), "applied"
        except DownlinkError as exc:
            effect, status = Effect(str(exc)), "rejected"
        changes = effect.changes if status == "applied" and isinstance(effect.changes, SideChanges) else None
        changes = dataclasses.replace(changes or SideChanges(), message=(message_id, kind))
        answers: list[str] = []

        def answer(record: Record) -> dict[str, Any]:
            ack: dict[str, Any] = {
                "message_id": message_id,
                "message_sha256": content,
                "status": status,
                "record_id": record["record_id"],
                "detail": effect.text[:500],
                "parcel_state": effect.parcel_state,
            }
            if self.signer is not None:
                ack = self.signer.sign(ack)
            answers.append(json.dumps(ack))
            return ack

        record = self.outbox.append_with(  # OutboxError: not acked, so customs sends it again
            lambda seq: self._record(seq, message_id, kind, status, effect), changes, answer
        )
        if status == "applied":
            self.applied += 1
            if effect.after is not None:
                effect.after()
        else:
            self.rejected += 1
        log.info(
            "downlink message",
            extra={"message_id": message_id, "type": kind, "status": status, "effect": effect.text[:200]},
        )
        event = effect.event if status == "applied" else "downlink"
        return StationEvent(event, effect.tracking_number or message_id, record), answers[-1]

    def _record(self, seq: int, message_id: str, kind: str, status: str, effect: Effect) -> Record:
        record = envelope("downlink", seq, self.station.config.station)
        record["downlink"] = {
            "message_id": message_id,
            "type": kind,
            "status": status,
            "tracking_number": effect.tracking_number if status == "applied" else None,
            "effect": effect.text[:500],
            "parcel_state": effect.parcel_state if status == "applied" else None,
            **(effect.details if status == "applied" else {}),
        }
        return record


@dataclasses.dataclass
class StationDownlink:
    """A station's downlink and the parts that apply it (kept for status, tests and tools)."""

    downlink: Downlink
    journal: Journal
    models: ModelMessages


def attach(
    station: Station, mqtt: MqttConnection, sync: SyncConfig, signer: DeviceKey | None = None
) -> StationDownlink:
    """The downlink of ``station`` (topics, customs and update keys from ``sync``) with every
    message type's handler registered, and what customs set before a restart (holds, settings,
    rotated keys, models) applied again."""
    journal = Journal(station, signer)
    cfg = station.config.station
    downlink = Downlink(
        mqtt,
        sync.topic_prefix,
        site_id=cfg.site_id,
        device_id=cfg.device_id,
        applier=journal,
        customs_keys=sync.customs_keys,
    )
    parcels = ParcelMessages(station)
    settings = SettingsMessages(station, downlink)
    models = ModelMessages(station, update_key=sync.update_key)
    parcels.register(downlink)
    settings.register()
    models.register(downlink)
    settings.load()
    parcels.load()
    models.load()
    return StationDownlink(downlink, journal, models)
