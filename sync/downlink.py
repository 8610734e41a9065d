"""Messages from the customs side to one station: parsed, authenticated, handed over, acked.

Modelled on the EU ICS2 / Canada PACT referrals: a hold, a request for information (RFI), a
request for screening (RFS) or do-not-load (DNL) on a tracking number, a release, watchlist
updates, feedback to the trade, screening settings, model updates and customs outcomes (what
customs finally decided about a parcel: the labels a model learns from).

This module is the wire side only: it parses a message, checks it is signed by a customs key the
station trusts, addressed to this station and valid now, and publishes the station's ack. What a
message *does* is the station's business: the station registers one :data:`Handler` per message
type (:meth:`Downlink.register`) and an :class:`Applier` that runs a handler on its own thread and
commits the effect, so this module imports nothing of the station (the dependency points from
the agent to sync). A message refused here is one log line and a counter, and is not answered.
"""

from __future__ import annotations

import collections
import dataclasses
import hashlib
import json
import logging
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from typing import Any, Protocol

from prescreen.core.errors import SyncError
from prescreen.core.records import epoch_s
from prescreen.core.signing import KeyRing, signed_bytes
from prescreen.sync.mqtt import MqttConnection
from prescreen.sync.topics import addressed_to, downlink_acks_topic

log = logging.getLogger("prescreen.downlink")

PARCEL_HOLDS = {
    "hold": "customs hold",
    "rfi": "request for information: cargo held until the data is supplied",
    "rfs": "request for screening: hold until screened by high-risk methods",
    "dnl": "DO NOT LOAD: isolate the parcel and follow the emergency protocol",
}
# What an RFI may ask for; the station answers with an ``rfi_response`` record carrying them.
RFI_FIELDS = (
    "invoice",
    "hts_code",
    "description",
    "consignee_tax_id",
    "manufacturer",
    "origin_country",
    "unit_value",
    "seller",
    "importer_of_record",
    "photo",
)
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
# Screening settings the customs side may change remotely (never paths, devices or credentials).
REMOTE_SETTINGS = (
    "model_review_budget",
    "review_score",
    "hold_score",
    "weight_tolerance_pct",
    "weight_tolerance_g",
    "split_window_s",
    "split_max_parcels",
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


@dataclasses.dataclass(frozen=True)
class Effect:
    """What a handler decided a message does, before anything is committed.

    ``changes`` is opaque here: the station commits it with the ``downlink`` record of the
    effect in one transaction; ``after`` then brings the running station in line with it.
    ``details`` are extra fields of that record (e.g. ``customs_outcome``); ``event`` is the
    kind of station event the listeners (the station page) hear.
    """

    text: str
    tracking_number: str | None = None
    parcel_state: dict[str, Any] | None = None
    details: dict[str, Any] = dataclasses.field(default_factory=dict)
    changes: Any = None
    after: Callable[[], None] | None = None
    event: str = "downlink"


# A handler turns one admitted message (and, for a prepared type, what was prepared off the
# station thread) into its effect, or raises DownlinkError to have it acked as rejected.
Handler = Callable[[dict[str, Any], Any], Effect]
# A preparer runs on a thread of its own before the handler (e.g. fetching a model's files).
Preparer = Callable[[dict[str, Any]], Any]


class Applier(Protocol):
    """The station side: runs ``handle`` on its thread, commits the effect with its record, and
    resolves to the ack text (the same one again for a redelivered message)."""

    def apply(self, message: dict[str, Any], handle: Callable[[], Effect]) -> Future[str]:
        """Apply one admitted message; DownlinkRefused in the future for a replayed id."""


def digest(message: dict[str, Any]) -> str:
    """SHA-256 of exactly what the signature covers: the same id with other content is a replay."""
    return hashlib.sha256(signed_bytes(message)).hexdigest()


def text_field(message: dict[str, Any], key: str, *, required: bool = True, limit: int = 500) -> str | None:
    """A string field of a message, stripped, or why it is unusable (DownlinkError)."""
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
    text_field(message, "message_id", limit=64)
    if message.get("type") not in TYPES:
        raise DownlinkError(f"type must be one of {', '.join(TYPES)}, got {message.get('type')!r}")
    return message


class Downlink:
    """One station's downlink; wire :meth:`on_message` to its MQTT client."""

    def __init__(
        self,
        mqtt: MqttConnection,
        prefix: str,
        *,
        site_id: str,
        device_id: str,
        applier: Applier,
        customs_keys: Sequence[str] = (),
    ) -> None:
        self.mqtt = mqtt
        self.site_id, self.device_id = site_id, device_id
        self.applier = applier
        # Who may send this station messages: the configured keys until a signed rotation.
        self.customs = KeyRing(customs_keys)
        self.refused: collections.Counter[str] = collections.Counter()
        self.rejected = 0  # messages that were not even parseable
        self._refused_lock = threading.Lock()
        self._acks_topic = downlink_acks_topic(prefix, site_id, device_id)
        self._handlers: dict[str, tuple[Handler, Preparer | None]] = {}
        # Message ids handed over and not yet answered: a copy of one (customs re-publishes until
        # acked, MQTT redelivers) is dropped, so it cannot race the first, e.g. be refused while
        # the first still fetches a model and burn the id with that answer. The first one's ack
        # answers every copy; a copy arriving after it is answered again by the applier.
        self._in_flight: set[str] = set()
        self._in_flight_lock = threading.Lock()

    def register(self, kind: str, handler: Handler, prepare: Preparer | None = None) -> None:
        """Have ``handler`` apply messages of type ``kind`` (after ``prepare``, off the threads
        of the station and the network, if given)."""
        if kind not in TYPES:
            raise ValueError(f"no downlink message type {kind!r}")
        self._handlers[kind] = (handler, prepare)

    def trust(self, keys: Sequence[str]) -> None:
        """Trust these customs keys from now on (a signed rotation, or the one saved before)."""
        self.customs = KeyRing(keys)

    # --- paho's thread --------------------------------------------------------------------

    def on_message(self, topic: str, payload: bytes) -> None:
        """Hand a message from customs to the station; ack it once its effect is committed.

        Anything else (unparseable, unsigned, signed by a key not trusted, changed, expired, from
        the future, meant for another station) is refused here with one log line, unanswered.
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
        handler, prepare = self._handlers.get(message["type"], (None, None))
        if handler is None:
            self.rejected += 1
            log.warning("downlink message rejected", extra={"reason": "no handler", "type": message["type"]})
        elif self._take(message):
            if prepare is None:
                self._apply(message, handler, None)
            else:
                threading.Thread(
                    target=self._prepare_and_apply,
                    args=(message, handler, prepare),
                    name=f"downlink-{message['type']}",
                    daemon=True,
                ).start()

    def admit(self, message: dict[str, Any], now: float | None = None) -> None:
        """Check that ``message`` is from customs, for this station, and valid now.

        Raises:
            DownlinkRefused: why not, with the counter's name.
        """
        rejection = self.customs.check(message)
        if rejection is not None:
            raise DownlinkRefused(rejection.kind, f"{rejection.reason} (customs keys: {len(self.customs)})")
        target = message.get("target")
        if not addressed_to(target, self.site_id, self.device_id):
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

    def _take(self, message: dict[str, Any]) -> bool:
        """Mark ``message`` in flight; False (one log line) for a copy of one already in flight."""
        message_id = str(message["message_id"])
        with self._in_flight_lock:
            if message_id not in self._in_flight:
                self._in_flight.add(message_id)
                return True
        log.info("downlink message already being applied, copy dropped", extra={"message_id": message_id})
        return False

    def _release(self, message: dict[str, Any]) -> None:
        with self._in_flight_lock:
            self._in_flight.discard(str(message["message_id"]))

    def _prepare_and_apply(self, message: dict[str, Any], handler: Handler, prepare: Preparer) -> None:
        try:
            prepared = prepare(message)
        except Exception:  # a bug in a preparer: logged; a later copy may try again
            self._release(message)
            log.exception("downlink message not prepared", extra={"message_id": message["message_id"]})
            return
        self._apply(message, handler, prepared)

    def _apply(self, message: dict[str, Any], handler: Handler, prepared: Any) -> None:
        try:
            future = self.applier.apply(message, lambda: handler(message, prepared))
        except BaseException:
            self._release(message)
            raise
        future.add_done_callback(lambda done: self._ack(message, done))

    def _refuse(self, message: dict[str, Any], exc: DownlinkRefused) -> None:
        with self._refused_lock:
            self.refused[exc.kind] += 1
        log.warning(
            "downlink message refused",
            extra={"why": exc.kind, "reason": str(exc)[:300], "message_id": str(message["message_id"])},
        )

    def _ack(self, message: dict[str, Any], done: Future[str]) -> None:
        self._release(message)  # answered (or not committed): a later copy goes to the applier
        error = done.exception()
        if isinstance(error, DownlinkRefused):
            self._refuse(message, error)
            return
        if error is not None:  # not committed: no ack, so customs sends it again
            log.error(
                "downlink message not recorded",
                extra={"message_id": message["message_id"], "reason": str(error)},
            )
            return
        try:
            self.mqtt.publish(self._acks_topic, done.result().encode())
        except SyncError as exc:  # applied and recorded; the record itself reaches customs too
            log.warning(
                "downlink ack not sent", extra={"message_id": message["message_id"], "reason": str(exc)}
            )
