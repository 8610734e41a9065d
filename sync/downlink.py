"""Messages from the customs side to one station, and what the station does with each.

Modelled on the EU ICS2 / Canada PACT referrals: a hold, a request for information (RFI), a
request for screening (RFS) or do-not-load (DNL) on a tracking number, a release, watchlist
updates, feedback to the trade, screening settings, and customs outcomes (what customs finally
decided about a parcel: the labels a model learns from). Every message:

1. is checked (one clear log line and a ``rejected`` ack if malformed);
2. is applied on the station thread, the outbox's only writer, together with a ``downlink``
   record of its effect, in one transaction, so the effect and its evidence cannot part;
3. is acked on the device's ``downlink-acks`` topic with that record's id.

A message id seen before is acked again with the first answer and never applied twice (MQTT
QoS 1 redelivers). A hold on a parcel that was already scanned is reported with the parcel's
state (its verdict, whether it is on the hold shelf, its outcomes), so customs knows whether it
still sits at the station.
"""

from __future__ import annotations

import collections
import dataclasses
import hashlib
import json
import logging
import threading
import time
import uuid
from collections.abc import Sequence
from concurrent.futures import Future
from pathlib import Path
from typing import Any

from prescreen import model_monitor
from prescreen.config import ScreeningConfig, SyncConfig, check_value
from prescreen.errors import ConfigError, ModelError, SyncError
from prescreen.outbox import Statement
from prescreen.records import Record, envelope, epoch_s, utc_now
from prescreen.signing import DeviceKey, KeyRing, signed_bytes
from prescreen.station import Station, StationEvent
from prescreen.sync import model_update
from prescreen.sync.mqtt import MqttConnection
from prescreen.sync.topics import addressed_to, downlink_acks_topic

log = logging.getLogger("prescreen.downlink")

PARCEL_HOLDS = {
    "hold": "customs hold",
    "rfi": "request for information: cargo held until the data is supplied",
    "rfs": "request for screening: hold until screened by high-risk methods",
    "dnl": "DO NOT LOAD: isolate the parcel and follow the emergency protocol",
}
# What customs finally decided about a parcel (issue 17): the labels the model learns from.
CUSTOMS_OUTCOMES = {
    "released": "released",
    "assessment_complete": "assessment complete",
    "seized": "seized",
    "denied_entry": "denied entry",
    "penalty": "penalty",
    "destroyed": "destroyed",
    "abandoned": "abandoned",
    "returned": "returned",
}
# Outcomes that let the parcel go: they lift the station's hold on its tracking number.
FREEING_OUTCOMES = frozenset({"released", "assessment_complete"})
TYPES = (*PARCEL_HOLDS, "release", "watchlist", "feedback", "config", "model", "keys", "outcome")
# Clocks of customs and a station may differ this much; a message may be valid at most this long.
MAX_SKEW_S = 300.0
MAX_LIFETIME_S = 7 * 86_400.0
# Screening settings the customs side may change remotely (never paths, devices or credentials);
# each value passes the same type and bounds check as in the config file (config.check_value).
REMOTE_SETTINGS = (
    "model_review_budget",
    "review_score",
    "hold_score",
    "weight_tolerance_pct",
    "weight_tolerance_g",
    "split_window_s",
    "split_max_parcels",
)


_SET_HOLD = (  # a newer hold on a tracking number replaces the older one
    "INSERT OR REPLACE INTO holds (tracking_number, type, reason, message_id, received_at) "
    "VALUES (?, ?, ?, ?, ?)"
)


class DownlinkError(SyncError):
    """A downlink message that cannot be applied; it is acked as rejected, with this reason."""


class DownlinkRefused(DownlinkError):
    """A message not from customs, or not for now or for this station: refused without an answer.

    ``kind`` names the counter: unsigned, forged, tampered, mistargeted, stale, future, replayed.
    """

    def __init__(self, kind: str, reason: str) -> None:
        super().__init__(reason)
        self.kind = kind


def digest(message: dict[str, Any]) -> str:
    """SHA-256 of exactly what the signature covers: the same id with other content is a replay."""
    return hashlib.sha256(signed_bytes(message)).hexdigest()


def _text(message: dict[str, Any], key: str, *, required: bool = True, limit: int = 500) -> str | None:
    value = message.get(key)
    if value is None and not required:
        return None
    if not isinstance(value, str) or not value.strip() or len(value) > limit:
        raise DownlinkError(f"{key} must be a non-empty string of at most {limit} characters")
    return value.strip()


def parse(payload: bytes) -> dict[str, Any]:
    """A downlink message as a dict with a valid ``message_id`` and ``type``.

    Raises:
        DownlinkError: not JSON, or no usable id or type.
    """
    try:
        message = json.loads(payload)
    except ValueError as exc:
        raise DownlinkError(f"not JSON: {exc}") from None
    if not isinstance(message, dict):
        raise DownlinkError("a downlink message is a JSON object")
    _text(message, "message_id", limit=64)
    if message.get("type") not in TYPES:
        raise DownlinkError(f"type must be one of {', '.join(TYPES)}, got {message.get('type')!r}")
    return message


class Downlink:
    """Applies downlink messages to one station; wire :meth:`on_message` to its MQTT client."""

    def __init__(
        self,
        station: Station,
        mqtt: MqttConnection,
        prefix: str,
        *,
        update_key: str = "",
        models_dir: Path | None = None,
        customs_keys: Sequence[str] = (),
        signer: DeviceKey | None = None,
    ) -> None:
        self.station = station
        self.update_key = update_key
        self.signer = signer
        # Who may send this station messages: the configured keys until a signed rotation.
        self.customs = KeyRing(customs_keys)
        self.refused: collections.Counter[str] = collections.Counter()
        self._updating = threading.Lock()
        self._refused_lock = threading.Lock()
        self.models_dir = models_dir or station.outbox.path.parent / "models"
        self.outbox = station.outbox
        self.mqtt = mqtt
        cfg = station.config.station
        self._acks_topic = downlink_acks_topic(prefix, cfg.site_id, cfg.device_id)
        self.applied = 0
        self.rejected = 0
        self._load_state()
        station.on_quarantine.append(self._roll_back)

    def _load_state(self) -> None:
        """Holds, remote settings and rotated customs keys survive restarts: they live in the outbox."""
        rotated = self._setting("customs_keys")
        if rotated is not None:
            self.customs = KeyRing(json.loads(rotated))
            log.info("customs keys as rotated by customs", extra={"keys": ",".join(self.customs.key_ids)})
        self._load_holds()
        self._load_screening()
        model_path = self._setting("model_path")
        if model_path is not None:
            try:
                self._swap_model(model_update.load(Path(json.loads(model_path))))
            except model_update.UpdateError as exc:
                log.error("updated model not loaded, using the configured one", extra={"reason": str(exc)})
        shadow_path = self._setting("shadow_model_path")
        if shadow_path is not None:
            try:
                shadow = model_update.load(Path(json.loads(shadow_path)))
                self.station.screener = self.station.screener.with_shadow(shadow)
            except model_update.UpdateError as exc:
                log.error("shadow model not loaded, screening without one", extra={"reason": str(exc)})

    def _setting(self, key: str) -> str | None:
        rows = self.outbox.rows("SELECT value FROM settings WHERE key = ?", (key,))
        return str(rows[0][0]) if rows else None

    def _load_holds(self) -> None:
        """The station's hold list is the holds table, read again whenever a message changed it."""
        rows = self.outbox.rows("SELECT tracking_number, type, reason FROM holds")
        holds = {
            tracking: f"{kind.upper()}: {reason}" if reason else kind.upper()
            for tracking, kind, reason in rows
        }
        self.station.holds.clear()
        self.station.holds.update(holds)

    def _load_screening(self) -> None:
        """Apply the screening settings saved from the customs side, if any.

        They are checked again on load (a value saved by an older version, or edited in the
        database, gets no pass): if refused, the configured settings stay and one line says why.
        """
        values = self._setting("screening")
        if values is None:
            return
        try:
            config = self._screening_config(json.loads(values))
        except (DownlinkError, ValueError) as exc:
            log.error(
                "saved screening settings refused, using the configured ones", extra={"reason": str(exc)}
            )
            return
        self.station.screener = self.station.screener.with_config(config)

    # --- the MQTT side (paho's thread) -------------------------------------------------------

    def on_message(self, topic: str, payload: bytes) -> None:
        """Queue a message from customs for the station thread; ack it once its effect is committed.

        Anything else (unsigned, signed by a key not trusted, changed, expired, from the future,
        meant for another station) is refused here with one log line and a counter, unanswered.
        """
        try:
            message = parse(payload)
        except DownlinkError as exc:
            self.rejected += 1
            log.warning("downlink message rejected", extra={"reason": str(exc), "bytes": len(payload)})
            return
        try:
            self.admit(message)
        except DownlinkRefused as exc:
            self._refuse(message, exc)
            return
        if message["type"] == "model":  # fetched off the station and network threads
            threading.Thread(
                target=self._prepare_model, args=(message,), name="model-update", daemon=True
            ).start()
            return
        self._submit(message)

    def admit(self, message: dict[str, Any], now: float | None = None) -> None:
        """Check that ``message`` is from customs, for this station, and valid now.

        Raises:
            DownlinkRefused: why not, with the counter's name.
        """
        rejection = self.customs.check(message)
        if rejection is not None:
            raise DownlinkRefused(rejection.kind, f"{rejection.reason} (customs keys: {len(self.customs)})")
        station = self.station.config.station
        target = message.get("target")
        if not addressed_to(target, station.site_id, station.device_id):
            raise DownlinkRefused("mistargeted", f"addressed to {str(target)[:120]}")
        try:
            issued, expires = epoch_s(str(message["issued_at"])), epoch_s(str(message["expires_at"]))
        except (KeyError, ValueError) as exc:
            raise DownlinkRefused("stale", f"issued_at and expires_at must be RFC 3339: {exc}") from None
        now = time.time() if now is None else now
        if issued > now + MAX_SKEW_S:
            raise DownlinkRefused("future", f"issued {message['issued_at']}, in the future")
        if now > expires:
            raise DownlinkRefused("stale", f"expired at {message['expires_at']}")
        if expires - issued > MAX_LIFETIME_S:
            raise DownlinkRefused("stale", f"valid for more than {MAX_LIFETIME_S:.0f} s")

    def _refuse(self, message: dict[str, Any], exc: DownlinkRefused) -> None:
        with self._refused_lock:
            self.refused[exc.kind] += 1
        log.warning(
            "downlink message refused",
            extra={"why": exc.kind, "reason": str(exc)[:300], "message_id": str(message["message_id"])},
        )

    def _submit(self, message: dict[str, Any], prepared: Any = None) -> None:
        future = self.station.submit(lambda: self.apply(message, prepared))
        future.add_done_callback(lambda done: self._ack(message, done))

    def _prepare_model(self, message: dict[str, Any]) -> None:
        """Verify, fetch and load a model update; the swap and its record happen on the station thread.

        One update at a time: a second one arriving while the first is fetched is rejected (customs
        sends it again), so two never write the models directory at once.
        """
        seen = self.outbox.rows("SELECT 1 FROM downlink WHERE message_id = ?", (str(message["message_id"]),))
        prepared: Any
        if seen:
            prepared = None
        elif not self._updating.acquire(blocking=False):
            prepared = model_update.UpdateError("another model update is being installed: send it again")
        else:
            try:
                station = self.station.config.station
                manifest = model_update.verify_manifest(
                    message,
                    self.update_key,
                    site=station.site_id,
                    device=station.device_id,
                    installed_serial=self._model_serial(),
                )
                if _is_promotion(message):
                    prepared = self._shadow_to_promote(manifest)
                else:
                    prepared = model_update.load(model_update.fetch(manifest, self.models_dir))
            except (model_update.UpdateError, OSError) as exc:
                prepared = exc
            finally:
                self._updating.release()
        self._submit(message, prepared)

    def _shadow_to_promote(self, manifest: dict[str, Any]) -> Any:
        """The running shadow model, if it is the one the promotion's signed manifest names."""
        shadow = self.station.screener.shadow
        version = getattr(shadow, "version", None)
        if shadow is None or version != manifest["version"]:
            raise model_update.UpdateError(
                f"no shadow model {manifest['version']} to promote (shadow: {version or 'none'})"
            )
        model_update.check_installed(manifest, Path(getattr(shadow, "directory", "")))
        return shadow

    def _model_serial(self) -> int:
        """The serial of the newest manifest installed here (0: none yet)."""
        serial = self._setting("model_serial")
        return int(serial) if serial is not None else 0

    def _ack(self, message: dict[str, Any], done: Future[StationEvent]) -> None:
        error = done.exception()
        if isinstance(error, DownlinkRefused):
            self._refuse(message, error)
            return
        if error is not None:  # the outbox refused: no ack, so customs sends it again
            log.error(
                "downlink message not recorded",
                extra={"message_id": message["message_id"], "reason": str(error)},
            )
            return
        # The ack recorded with the effect: the same answer the first time and on a redelivery.
        (ack,) = self.outbox.rows(
            "SELECT ack FROM downlink WHERE message_id = ?", (str(message["message_id"]),)
        )[0]
        try:
            self.mqtt.publish(self._acks_topic, str(ack).encode())
        except SyncError as exc:  # applied and recorded; the record itself reaches customs too
            log.warning(
                "downlink ack not sent", extra={"message_id": message["message_id"], "reason": str(exc)}
            )

    # --- the station side (station thread) ---------------------------------------------------

    def apply(self, message: dict[str, Any], prepared: Any = None) -> StationEvent:
        """Apply one message and commit its effect record (stored with the ack it is answered with).

        ``prepared`` is, for a model update, the loaded model or the error that stopped it.
        """
        message_id = str(message["message_id"])
        content = digest(message)
        seen = self.outbox.rows("SELECT ack FROM downlink WHERE message_id = ?", (message_id,))
        if seen:
            if json.loads(seen[0][0]).get("message_sha256") != content:
                raise DownlinkRefused("replayed", f"message id {message_id} was used for other content")
            log.info("downlink message seen before, acked again", extra={"message_id": message_id})
            return StationEvent("downlink", message_id, None)
        kind = str(message["type"])
        outcome: dict[str, Any] | None = None
        try:
            if kind == "outcome":
                outcome, (effect, tracking, parcel_state, statements) = self._customs_outcome(message)
            else:
                effect, tracking, parcel_state, statements = self._effect(message, prepared)
            status = "applied"
        except DownlinkError as exc:
            effect, tracking, parcel_state, statements, status = str(exc), None, None, [], "rejected"

        def build(seq: int) -> Record:
            record = envelope("downlink", seq, self.station.config.station)
            record["downlink"] = {
                "message_id": message_id,
                "type": kind,
                "status": status,
                "tracking_number": tracking,
                "effect": effect[:500],
                "parcel_state": parcel_state,
            }
            if outcome is not None:
                record["downlink"]["customs_outcome"] = outcome
            return record

        def also(records: list[Record]) -> list[Statement]:
            ack = {
                "message_id": message_id,
                "message_sha256": content,
                "status": status,
                "record_id": records[0]["record_id"],
                "detail": effect[:500],
                "parcel_state": parcel_state,
            }
            if self.signer is not None:  # customs can tell the station's answer from a forgery
                ack = self.signer.sign(ack)
            return [
                *statements,
                (
                    "INSERT INTO downlink (message_id, type, received_at, record_id, ack) "
                    "VALUES (?, ?, ?, ?, ?)",
                    (message_id, kind, utc_now(), records[0]["record_id"], json.dumps(ack)),
                ),
            ]

        (record,) = self.outbox.append_many([build], also=also)  # OutboxError: not acked, resent
        if status == "applied":
            self.applied += 1
            self._apply_in_memory(message, prepared, parcel_state)
        else:
            self.rejected += 1
        log.info(
            "downlink message",
            extra={"message_id": message_id, "type": kind, "status": status, "effect": effect[:200]},
        )
        applied = status == "applied"
        late = kind in PARCEL_HOLDS and applied and bool((parcel_state or {}).get("scanned"))
        on_shelf = kind == "outcome" and applied and bool((parcel_state or {}).get("on_hold_shelf"))
        event_kind = "late_hold" if late else "shelf_outcome" if on_shelf else "downlink"
        return StationEvent(event_kind, tracking or message_id, record)

    def _effect(
        self, message: dict[str, Any], prepared: Any = None
    ) -> tuple[str, str | None, dict[str, Any] | None, list[Statement]]:
        """(what it did, tracking number, parcel state, SQL to commit with the record)."""
        kind = message["type"]
        now = utc_now()
        if kind == "model":
            if isinstance(prepared, BaseException) or prepared is None:
                raise DownlinkError(str(prepared or "model update not prepared"))
            serial = int(message["manifest"]["serial"])  # verified when it was prepared
            if serial <= self._model_serial():  # another update was installed meanwhile
                raise DownlinkError(f"serial {serial} is not newer than the installed {self._model_serial()}")
            before = getattr(self.station.screener.model, "version", None)
            shadow = _is_shadow(message)
            done = (
                f"model {prepared.version} in shadow beside live {before}"
                if shadow
                else f"model {prepared.version} promoted from shadow to live (was {before})"
                if _is_promotion(message)
                else f"model {prepared.version} active (was {before})"
            )
            return (
                done,
                None,
                None,
                [
                    *self._promotion_statements(message, now),
                    (
                        "INSERT OR REPLACE INTO settings (key, value, updated_at) VALUES (?, ?, ?)",
                        (
                            "shadow_model_path" if shadow else "model_path",
                            json.dumps(str(prepared.directory)),
                            now,
                        ),
                    ),
                    (
                        "INSERT OR REPLACE INTO settings (key, value, updated_at) "
                        "VALUES ('model_serial', ?, ?)",
                        (str(serial), now),
                    ),
                ],
            )
        if kind == "keys":
            keys = self._rotated_keys(message.get("keys"))
            return (
                "customs keys now " + ", ".join(KeyRing(keys).key_ids),
                None,
                None,
                [
                    (
                        "INSERT OR REPLACE INTO settings (key, value, updated_at) "
                        "VALUES ('customs_keys', ?, ?)",
                        (json.dumps(keys), now),
                    )
                ],
            )
        if kind in PARCEL_HOLDS:
            tracking = _text(message, "tracking_number", limit=64)
            reason = _text(message, "reason", required=False) or PARCEL_HOLDS[kind]
            state = self.parcel_state(str(tracking))
            where = "already scanned: retrieve it" if state["scanned"] else "held when scanned"
            return (
                f"{kind.upper()} on {tracking}: {reason} ({where})",
                tracking,
                state,
                [(_SET_HOLD, (tracking, kind, reason, message["message_id"], now))],
            )
        if kind == "release":
            tracking = _text(message, "tracking_number", limit=64)
            return (
                f"released {tracking}",
                tracking,
                self.parcel_state(str(tracking)),
                [("DELETE FROM holds WHERE tracking_number = ?", (tracking,))],
            )
        if kind == "watchlist":
            add, remove = message.get("add") or [], message.get("remove") or []
            if not all(isinstance(t, str) and 0 < len(t) <= 64 for t in [*add, *remove]):
                raise DownlinkError("watchlist add/remove must be lists of tracking numbers")
            statements: list[Statement] = [
                (_SET_HOLD, (t, "hold", message.get("reason") or "watchlist", message["message_id"], now))
                for t in add
            ]
            statements += [("DELETE FROM holds WHERE tracking_number = ?", (t,)) for t in remove]
            return f"watchlist: {len(add)} added, {len(remove)} removed", None, None, statements
        if kind == "feedback":
            text = _text(message, "text")
            record_id = _text(message, "record_id", required=False, limit=64)
            seller = _text(message, "seller", required=False, limit=200)
            if not record_id and not seller:
                raise DownlinkError("feedback names a record_id or a seller")
            sql = (
                "INSERT INTO feedback (message_id, received_at, record_id, seller, text) "
                "VALUES (?, ?, ?, ?, ?)"
            )
            return (
                f"feedback stored for {record_id or seller}: {text}",
                None,
                None,
                [(sql, (message["message_id"], now, record_id, seller, text))],
            )
        config = self._screening_config(message.get("settings"))
        changed = sorted(message["settings"])  # a dict: _screening_config checked it
        merged = {k: getattr(config, k) for k in REMOTE_SETTINGS}
        return (
            "screening settings: " + ", ".join(f"{k}={merged[k]}" for k in changed),
            None,
            None,
            [
                (
                    "INSERT OR REPLACE INTO settings (key, value, updated_at) VALUES ('screening', ?, ?)",
                    (json.dumps(merged), now),
                )
            ],
        )

    def _customs_outcome(
        self, message: dict[str, Any]
    ) -> tuple[dict[str, Any], tuple[str, str | None, dict[str, Any] | None, list[Statement]]]:
        """What customs decided about a parcel scanned here, named by its record or tracking number.

        The outcome names the verdict record it settles (the newest for the tracking number),
        so the receiver can join the two into a training label. A release lifts the station's
        hold on the tracking number; the operator is told when the parcel sits on the hold shelf.
        """
        value = message.get("outcome")
        if value not in CUSTOMS_OUTCOMES:
            raise DownlinkError(
                f"outcome must be one of {', '.join(CUSTOMS_OUTCOMES)}, got {str(value)[:40]!r}"
            )
        reason_code = _text(message, "reason_code", limit=64)
        reference = _text(message, "customs_reference", limit=64)
        record_id = _text(message, "record_id", required=False, limit=64)
        tracking = _text(message, "tracking_number", required=False, limit=64)
        if record_id is not None:
            verdict = self.outbox.get(record_id)
            if verdict is None or verdict.get("kind") != "verdict":
                raise DownlinkError(f"no verdict record {record_id} at this station")
            named = verdict["parcel"].get("tracking_number")
            if tracking is not None and tracking != named:
                raise DownlinkError(f"record {record_id} is tracking number {named}, not {tracking}")
            tracking = named
        elif tracking is not None:
            verdict = self.outbox.latest_verdict(tracking)
            if verdict is None:
                raise DownlinkError(f"no parcel {tracking} was scanned at this station")
        else:
            raise DownlinkError("outcome names a record_id or a tracking_number")
        state = (
            self.parcel_state(tracking)
            if tracking
            else {"scanned": True, "verdict_record_id": verdict["record_id"], "on_hold_shelf": False}
        )
        details = {
            "outcome": value,
            "reason_code": reason_code,
            "customs_reference": reference,
            "refers_to": verdict["record_id"],
        }
        frees = value in FREEING_OUTCOMES
        where = ""
        if state.get("on_hold_shelf"):
            where = "; on the hold shelf: " + ("take it off" if frees else "keep it for customs")
        statements: list[Statement] = (
            [("DELETE FROM holds WHERE tracking_number = ?", (tracking,))] if frees and tracking else []
        )
        effect = (
            f"customs outcome {CUSTOMS_OUTCOMES[value]} ({reason_code}, {reference}) for "
            f"{tracking or record_id}{where}"
        )
        return details, (effect, tracking, state, statements)

    def _promotion_statements(self, message: dict[str, Any], now: str) -> list[Statement]:
        """A promotion ends the shadow run and remembers the live model it replaces (the rollback
        target: ``""`` for the configured one); a model sent straight to live forgets it."""
        if _is_shadow(message):
            return []
        if not _is_promotion(message):  # a model sent live: a later quarantine has nothing to roll back to
            return [("DELETE FROM settings WHERE key = 'previous_model_path'", ())]
        return [
            ("DELETE FROM settings WHERE key = 'shadow_model_path'", ()),
            (
                "INSERT OR REPLACE INTO settings (key, value, updated_at) "
                "VALUES ('previous_model_path', ?, ?)",
                (self._setting("model_path") or json.dumps(""), now),
            ),
        ]

    def _roll_back(self, quarantine: model_monitor.Quarantine) -> None:
        """A promoted model that trips the quarantine gives way to the live model it replaced.

        Runs on the station thread. Only after a promotion (``previous_model_path`` is set); any
        other quarantined model stays quarantined until a new model or an operator's reinstate.
        The rollback is a signed ``downlink`` record (type ``model``) like the promotion was.
        """
        previous = self._setting("previous_model_path")
        if previous is None:
            return
        from prescreen.models.runner import load_risk_model

        path = str(json.loads(previous))
        configured = self.station.config.screening.model_path or None
        try:
            model = load_risk_model(path or configured)
        except ModelError as exc:
            log.error("promoted model quarantined, previous model not loaded", extra={"reason": str(exc)})
            return
        effect = (
            f"model {quarantine.version} rolled back to {model.version} after its quarantine: "
            f"{quarantine.detail()}"
        )
        now = utc_now()
        statements: list[Statement] = [
            ("DELETE FROM settings WHERE key IN ('previous_model_path', ?)", (model_monitor.SETTING,)),
            (
                (
                    "INSERT OR REPLACE INTO settings (key, value, updated_at) VALUES ('model_path', ?, ?)",
                    (previous, now),
                )
                if path
                else ("DELETE FROM settings WHERE key = 'model_path'", ())
            ),
        ]

        def build(seq: int) -> Record:
            record = envelope("downlink", seq, self.station.config.station)
            record["downlink"] = {
                "message_id": f"rollback-{uuid.uuid4().hex}",
                "type": "model",
                "status": "applied",
                "tracking_number": None,
                "effect": effect[:500],
                "parcel_state": None,
            }
            return record

        self.outbox.append_many([build], also=lambda records: statements)
        self.station.screener = self.station.screener.with_model(model)
        self.station.quarantine = None
        self.station.monitor = None
        log.error("promoted model rolled back", extra={"effect": effect[:300]})

    def _screening_config(self, settings: Any) -> ScreeningConfig:
        """The running screening config with ``settings`` applied, each value checked like the
        config file's and the rules between them too, or why they are refused."""
        if not isinstance(settings, dict) or not settings:
            raise DownlinkError("config needs a settings object")
        unknown = set(settings) - set(REMOTE_SETTINGS)
        if unknown:
            raise DownlinkError(f"settings not changeable remotely: {', '.join(sorted(unknown))}")
        try:
            parsed = {k: check_value(ScreeningConfig, k, v) for k, v in settings.items()}
            return dataclasses.replace(self.station.screener.config, **parsed)  # rules between keys
        except ConfigError as exc:
            raise DownlinkError(f"bad setting value: {exc}") from None

    @staticmethod
    def _rotated_keys(keys: Any) -> list[str]:
        """The new customs keys of a ``keys`` message, checked like ``[sync] customs_keys``."""
        if not isinstance(keys, list) or not 0 < len(keys) <= 8:
            raise DownlinkError("keys needs a list of 1 to 8 customs public keys")
        try:
            check_value(SyncConfig, "customs_keys", keys)
        except ConfigError as exc:
            raise DownlinkError(str(exc)) from None
        return [str(k) for k in keys]

    def _swap_model(self, model: Any) -> None:
        self.station.screener = self.station.screener.with_model(model)

    def _apply_in_memory(
        self, message: dict[str, Any], prepared: Any, parcel_state: dict[str, Any] | None
    ) -> None:
        """Bring the running station in line with what was just committed."""
        kind = message["type"]
        if kind == "model" and _is_shadow(message):
            self.station.screener = self.station.screener.with_shadow(prepared)
        elif kind == "model" and _is_promotion(message):
            self.station.screener = self.station.screener.with_model(prepared).with_shadow(None)
        elif kind == "model":
            self._swap_model(prepared)
        elif kind == "keys":
            self.customs = KeyRing(message["keys"])
            log.warning("customs keys rotated", extra={"keys": ",".join(self.customs.key_ids)})
        elif kind == "config":
            self._load_screening()
        elif kind in (*PARCEL_HOLDS, "release", "watchlist", "outcome"):
            self._load_holds()
        if (
            kind in PARCEL_HOLDS
            and parcel_state
            and parcel_state["scanned"]
            and not parcel_state["on_hold_shelf"]
        ):
            # the parcel is fetched back: its shelf confirmation is awaited like any HOLD's
            self.station.awaiting_shelf[parcel_state["verdict_record_id"]] = message[
                "tracking_number"
            ].strip()

    def parcel_state(self, tracking: str) -> dict[str, Any]:
        """Whether the parcel was scanned here, its verdict, and what happened to it since."""
        verdict = self.outbox.latest_verdict(tracking)
        if verdict is None:
            return {"scanned": False, "on_hold_shelf": False, "outcomes": []}
        outcomes = [
            str(o)
            for (o,) in self.outbox.rows(
                "SELECT json_extract(body, '$.outcome.outcome') FROM records WHERE kind = 'outcome' "
                "AND json_extract(body, '$.outcome.tracking_number') = ? ORDER BY seq",
                (tracking,),
            )
        ]
        return {
            "scanned": True,
            "verdict_record_id": verdict["record_id"],
            "verdict": verdict["screening"]["verdict"],
            "scanned_at": verdict["created_at"],
            "on_hold_shelf": "held_on_shelf" in outcomes,
            "outcomes": outcomes,
        }


def _is_promotion(message: dict[str, Any]) -> bool:
    """A model message whose *signed* manifest makes the running shadow model live."""
    manifest = message.get("manifest")
    return isinstance(manifest, dict) and manifest.get("promote") is True and not _is_shadow(message)


def _is_shadow(message: dict[str, Any]) -> bool:
    """A model message whose *signed* manifest asks for shadow mode (scores recorded, no verdicts)."""
    manifest = message.get("manifest")
    return isinstance(manifest, dict) and manifest.get("shadow") is True
