"""The customs side of the downlink: send one station a message and wait for its ack.

For the reference receiver's operators (``prescreen downlink send``) and the tests. The ack names
the station's record of the effect, which also reaches the receiver's store through the uplink.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import queue
import time
import uuid
from pathlib import Path
from typing import Any

from prescreen.core.errors import SyncError
from prescreen.core.records import dumps, epoch_s, rfc3339, utc_now
from prescreen.core.signing import DeviceKey, TrustStore
from prescreen.sync.downlink import digest
from prescreen.sync.mqtt import Endpoint, MqttConnection, Security
from prescreen.sync.topics import downlink_acks_topic, downlink_topic

DEFAULT_LIFETIME_S = 3600.0
log = logging.getLogger("prescreen.customs")


class AckCheck:
    """Which acks customs believes: the answer to a message it sent (``message_sha256`` of exactly
    that message), and, with the station keys (the receiver's trust store), signed by that
    station's own key. Anything else (not JSON, not an object, another content, forged) is
    skipped with one log line: whoever can publish on the ack topic cannot make a hold, a DNL or
    a promotion look applied."""

    def __init__(self, site: str, device: str, stations: TrustStore | None = None) -> None:
        self.site, self.device, self.stations = site, device, stations

    def admit(self, payload: bytes, sent: dict[str, dict[str, Any]]) -> dict[str, Any] | None:
        """The ack in ``payload`` if it answers one of ``sent`` (by message id) and passes."""
        try:
            ack = json.loads(payload)
        except ValueError:
            self._refuse("not JSON")
            return None
        if not isinstance(ack, dict):
            self._refuse("not an object")
            return None
        message = sent.get(str(ack.get("message_id")))
        if message is None:
            return None  # the answer to another message (an earlier send): not ours to judge
        if ack.get("message_sha256") != digest(message):
            self._refuse("answers other content under this message id")
            return None
        if self.stations is not None:
            rejection = self.stations.check_from(ack, self.site, self.device)
            if rejection is not None:
                self._refuse(f"{rejection.kind}: {rejection.reason}")
                return None
        return ack

    def _refuse(self, why: str) -> None:
        """One log line for an ack not believed (the caller then returns None)."""
        log.warning("downlink ack refused", extra={"station": f"{self.site}/{self.device}", "why": why})


def new_message(kind: str, **fields: Any) -> dict[str, Any]:
    """A downlink message with a fresh id and the time it was issued."""
    return {"message_id": uuid.uuid4().hex, "type": kind, "issued_at": utc_now(), **fields}


def model_manifest(directory: Path, base_url: str, version: str) -> dict[str, Any]:
    """The manifest of a model directory published at ``base_url``: its version, and each file
    with its URL and SHA-256 (what the station fetches and checks)."""
    files = [
        {
            "name": path.name,
            "url": f"{base_url.rstrip('/')}/{path.name}",
            "sha256": hashlib.sha256(path.read_bytes()).hexdigest(),
        }
        for path in sorted(directory.iterdir())
        if path.is_file()
    ]
    return {"version": version, "files": files}


def model_message(
    manifest: dict[str, Any],
    update_key: DeviceKey,
    *,
    site: str,
    device: str,
    shadow: bool = False,
    promote: bool = False,
    serial: int | None = None,
) -> dict[str, Any]:
    """A ``model`` message: ``manifest`` bound to the station (``target``), for an hour, newer than
    any before (``serial``, default now), in shadow or as a promotion (both *inside* the signed
    manifest, so nobody can flip them on the way), signed by the model update key.

    Raises:
        ValueError: both shadow and promote (one delivers beside the live model, one makes it live).
    """
    if shadow and promote:
        raise ValueError(
            "--shadow delivers a model beside the live one, --promote makes it live: one of them"
        )
    manifest = {**manifest, **({"shadow": True} if shadow else {}), **({"promote": True} if promote else {})}
    manifest.setdefault("target", {"site_id": site, "device_id": device})
    manifest.setdefault("expires_at", rfc3339(time.time() + DEFAULT_LIFETIME_S))
    manifest.setdefault("serial", serial if serial is not None else int(time.time()))
    return new_message(
        "model", manifest=manifest, manifest_signature=update_key.sign_bytes(dumps(manifest).encode())
    )


def seal(
    message: dict[str, Any],
    key: DeviceKey,
    *,
    site: str,
    device: str,
    lifetime_s: float = DEFAULT_LIFETIME_S,
) -> dict[str, Any]:
    """``message`` addressed to ``site``/``device`` (``*`` for every device of a site, or both
    ``*`` for the fleet), valid for ``lifetime_s``, and signed by the customs key.

    The signature covers every field (id, type, target, issued-at, expires-at, body), so none can
    be changed or the message re-sent under a new id without the key.
    """
    issued = epoch_s(message.get("issued_at") or utc_now())
    sealed = {
        **{k: v for k, v in message.items() if k != "signature"},
        "issued_at": rfc3339(issued),
        "expires_at": rfc3339(issued + lifetime_s),
        "target": {"site_id": site, "device_id": device},
    }
    return key.sign(sealed)


def send_downlink(
    message: dict[str, Any],
    *,
    site: str,
    device: str,
    host: str = "127.0.0.1",
    port: int = 1883,
    prefix: str = "prescreen/v1",
    security: Security | None = None,
    wait_s: float = 10.0,
    key: DeviceKey | None = None,
    endpoints: tuple[Endpoint, ...] = (),
    resend_s: float = 2.0,
    subscribe_qos: int = 1,
    stations: TrustStore | None = None,
) -> dict[str, Any] | None:
    """Publish ``message`` to one station and return its ack (None if none came in ``wait_s``).

    Only an ack of exactly this message counts; with ``stations`` (the receiver's trust store) it
    must also be signed by that station's key (:class:`AckCheck`).

    With ``key`` the message is sealed (addressed, given a lifetime and signed) first; without
    one it goes as given (already sealed, or a test of what a station refuses). ``endpoints``
    are the nodes of a broker cluster, tried in order. Until the ack comes the message is
    published again every ``resend_s``: a station between two nodes (its node died, it has not
    reconnected yet) has no session to queue it in, and the station answers a message id it has
    seen with its first answer, never applying it twice.
    """
    if key is not None:
        message = seal(message, key, site=site, device=device)
    link = CustomsLink(
        site,
        device,
        prefix=prefix,
        host=host,
        port=port,
        security=security,
        endpoints=endpoints,
        subscribe_qos=subscribe_qos,
        stations=stations,
    )
    try:
        return link.exchange(message, wait_s=wait_s, resend_s=resend_s)
    finally:
        link.close()


class CustomsLink:
    """One customs connection to a station's downlink: messages sent in turn over it, each until
    its ack (:func:`send_downlink` opens one per message; a batch of outcomes shares one)."""

    def __init__(
        self,
        site: str,
        device: str,
        *,
        prefix: str = "prescreen/v1",
        stations: TrustStore | None = None,
        **connection: Any,
    ) -> None:
        """``connection``: the broker's ``host``, ``port``, ``security``, ``endpoints`` and
        ``subscribe_qos``, as :class:`~prescreen.sync.mqtt.MqttConnection` takes them; ``stations``:
        the station keys its acks must be signed with (None: acks are not authenticated)."""
        self.topic = downlink_topic(prefix, site, device)
        self.check = AckCheck(site, device, stations)
        self.acks: queue.Queue[bytes] = queue.Queue()
        self.connection = MqttConnection(
            client_id=f"customs-{os.getpid()}-{uuid.uuid4().hex[:6]}",
            on_message=lambda topic, payload: self.acks.put(payload),
            subscriptions=(downlink_acks_topic(prefix, site, device),),
            **connection,
        ).start()

    def exchange(
        self, message: dict[str, Any], *, wait_s: float = 10.0, resend_s: float = 2.0
    ) -> dict[str, Any] | None:
        """Publish the (sealed) ``message`` until its ack comes; the ack, or None after ``wait_s``."""
        deadline = time.monotonic() + wait_s
        if not self.connection.subscribed.wait(wait_s):
            return None
        payload = json.dumps(message).encode()
        while (left := deadline - time.monotonic()) > 0:
            with contextlib.suppress(SyncError):  # between nodes: the next round publishes it
                self.connection.publish(self.topic, payload)
            found = self._acks_until({message["message_id"]: message}, min(resend_s, left))
            if found:
                return found[message["message_id"]]
        return None

    def exchange_all(
        self, messages: list[dict[str, Any]], *, wait_s: float = 10.0, resend_s: float = 2.0
    ) -> list[dict[str, Any] | None]:
        """Publish every (sealed) message, then collect their acks (the ones still unanswered are
        published again every ``resend_s``); their acks in order, None where none came in ``wait_s``.
        Pipelined: the station answers one while the next is on its way."""
        deadline = time.monotonic() + wait_s
        answered: dict[str, dict[str, Any]] = {}
        if not self.connection.subscribed.wait(wait_s):
            return [None] * len(messages)
        while (left := deadline - time.monotonic()) > 0:
            waiting = [m for m in messages if m["message_id"] not in answered]
            if not waiting:
                break
            for message in waiting:
                with contextlib.suppress(SyncError):
                    self.connection.publish(self.topic, json.dumps(message).encode())
            answered.update(self._acks_until({m["message_id"]: m for m in waiting}, min(resend_s, left)))
        return [answered.get(m["message_id"]) for m in messages]

    def close(self) -> None:
        """Disconnect."""
        self.connection.stop()

    def _acks_until(self, sent: dict[str, dict[str, Any]], wait_s: float) -> dict[str, dict[str, Any]]:
        """The admitted acks of ``sent`` that come within ``wait_s`` (stops early once all came)."""
        found: dict[str, dict[str, Any]] = {}
        deadline = time.monotonic() + wait_s
        while sent.keys() - found.keys() and (left := deadline - time.monotonic()) > 0:
            try:
                payload = self.acks.get(timeout=left)
            except queue.Empty:
                break
            ack = self.check.admit(payload, sent)
            if ack is not None:
                found[str(ack["message_id"])] = ack
        return found
