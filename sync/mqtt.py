"""A thin, typed wrapper around paho-mqtt 2.x: connection state, and errors as SyncError.

paho runs its network loop in its own thread (``loop_start``); callbacks here only flip state or
hand messages to a callable, never block, so the network thread stays responsive.
"""

from __future__ import annotations

import collections
import contextlib
import logging
import random
import socket
import ssl
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion
from prescreen.core.errors import BrokerUnavailable, SyncError

log = logging.getLogger("prescreen.sync")
_EARLY_ACKS = 1024  # far below the 65535 message ids paho cycles through
MessageHandler = Callable[[str, bytes], None]
Endpoint = tuple[str, int]


def parse_endpoints(hosts: tuple[str, ...] | list[str], default_port: int) -> tuple[Endpoint, ...]:
    """``("a:8883", "b")`` as (host, port) pairs, with ``default_port`` where none is given.

    Raises:
        SyncError: an entry without a host, or with a port that is not 1-65535.
    """
    endpoints: list[Endpoint] = []
    for entry in hosts:
        host, sep, port_text = entry.partition(":")
        try:
            port = int(port_text) if sep else default_port
        except ValueError:
            raise SyncError(f"broker {entry!r}: the port is not a number") from None
        if not host or not 1 <= port <= 65_535:
            raise SyncError(f"broker {entry!r}: give host or host:port (port 1-65535)")
        endpoints.append((host, port))
    return tuple(endpoints)


class BrokerSettings(Protocol):
    """Where the broker is and how to log in: the ``[sync]`` section satisfies it."""

    @property
    def host(self) -> str: ...
    @property
    def port(self) -> int: ...
    @property
    def hosts(self) -> tuple[str, ...]: ...
    @property
    def keepalive_s(self) -> int: ...
    @property
    def reconnect_max_s(self) -> float: ...
    @property
    def cafile(self) -> str: ...
    @property
    def certfile(self) -> str: ...
    @property
    def keyfile(self) -> str: ...
    @property
    def username(self) -> str: ...
    @property
    def password(self) -> str: ...


@dataclass(frozen=True)
class Security:
    """How to authenticate to the broker and it to us.

    ``cafile`` turns on TLS with server verification (certificate chain and host name);
    ``certfile``/``keyfile`` add a client certificate (mTLS); ``username``/``password`` work with
    or without TLS (but send the password in clear without it).
    """

    cafile: str = ""
    certfile: str = ""
    keyfile: str = ""
    username: str = ""
    password: str = ""

    @property
    def tls(self) -> bool:
        """True when the connection is TLS."""
        return bool(self.cafile or self.certfile)


class Backoff:
    """Exponential reconnect delay with jitter, so a site's stations do not reconnect in step.

    The n-th delay is drawn from [d/2, d] with d = min(cap, first × 2^n): after a broker outage
    of any length the first attempt after it comes back is at most ``cap`` seconds away.
    """

    def __init__(self, first_s: float = 0.25, cap_s: float = 1.5, rng: random.Random | None = None) -> None:
        self.first_s = first_s
        self.cap_s = cap_s
        self.attempt = 0
        self._rng = rng or random.Random()

    def next_delay(self) -> float:
        """The delay before the next attempt (and count the attempt)."""
        ceiling = min(self.cap_s, self.first_s * 2**self.attempt)
        self.attempt = min(self.attempt + 1, 32)
        return self._rng.uniform(ceiling / 2, ceiling)

    def reset(self) -> None:
        """Connected: the next outage starts again from the first delay."""
        self.attempt = 0


class MqttConnection:
    """One MQTT client: connects in the background and reconnects with capped backoff.

    ``subscriptions`` are (re)made on every connect, because the agent uses clean sessions:
    its durable state is the outbox, not the broker.

    ``endpoints`` (the nodes of one broker cluster, in order) replace ``host``/``port``: a failed
    attempt or a lost connection moves to the next one, wrapping around, each after the usual
    backoff delay, so a dead node costs one attempt and the next node is tried within the delay.
    The client speaks MQTT 3.1.1 with QoS 1 at most, which every broker the project is tested on
    has (mosquitto, and NATS's MQTT gateway, which has neither MQTT 5 nor QoS 2).
    ``subscribe_qos`` 0 makes the subscriptions plain ones: on NATS 2.9 a QoS 1 subscription is a
    JetStream consumer, and one made while the cluster elects new leaders after losing a node
    can fail silently (connected, SUBACKed, never delivered). Acks and downlink tolerate QoS 0:
    a lost ack means a re-send the receiver dedupes, a lost downlink message is published again
    until the station acks it.
    """

    def __init__(
        self,
        *,
        client_id: str,
        host: str,
        port: int,
        on_message: MessageHandler | None = None,
        subscriptions: tuple[str, ...] = (),
        keepalive: int = 30,
        on_connect: Callable[[], None] | None = None,
        security: Security | None = None,
        backoff: Backoff | None = None,
        endpoints: tuple[Endpoint, ...] = (),
        subscribe_qos: int = 1,
    ) -> None:
        self.endpoints = endpoints or ((host, port),)
        self._subscribe_qos = subscribe_qos
        self._at = 0  # index of the endpoint being tried or connected to
        self._attempting = False  # an attempt or its connection is live (its end is handled once)
        self._stopping = False
        self.host, self.port = self.endpoints[0]
        self.failovers = 0  # connections made to another node than the previous one
        self._last_connected: Endpoint | None = None
        self.connected = threading.Event()
        self.subscribed = threading.Event()  # the broker acked this connection's subscriptions
        self.connects = 0
        self.refused: str | None = None  # the broker's reason, when it refused the last CONNECT
        self._subscriptions = subscriptions
        # Weight (e.g. records) of QoS 1 publishes the broker has not PUBACKed yet, by message id:
        # paho sends these again after a reconnect, below any re-send of its caller.
        self._unacked: dict[int, int] = {}
        # PUBACKs whose mid was not (yet) recorded: a weighted publish's PUBACK may come before
        # publish() returns its mid; unweighted ones' mids drop out after _EARLY_ACKS newer.
        self._early_acks: collections.OrderedDict[int, None] = collections.OrderedDict()
        self._unacked_lock = threading.Lock()
        self.republished = 0  # total weight paho re-published after reconnects
        self._on_message_cb = on_message
        self._on_connect_cb = on_connect
        self._client = paho.Client(
            CallbackAPIVersion.VERSION2, client_id=client_id, protocol=paho.MQTTv311, clean_session=True
        )
        self._client.max_inflight_messages_set(64)
        self._client.max_queued_messages_set(0)
        self._backoff = backoff or Backoff()
        self._schedule_reconnect()
        if security is not None:
            self._secure(security)
        self._client.on_connect = self._on_connect
        self._client.on_connect_fail = self._on_connect_fail
        self._client.on_disconnect = self._on_disconnect
        self._client.on_message = self._on_message
        self._client.on_subscribe = self._on_subscribe
        self._client.on_pre_connect = self._on_pre_connect
        self._client.on_publish = self._on_publish
        self._keepalive = keepalive

    @property
    def broker(self) -> str:
        """``host:port`` of the node this client is connected to, or trying next."""
        return f"{self.host}:{self.port}"

    def _secure(self, security: Security) -> None:
        if security.tls:
            try:
                self._client.tls_set(
                    ca_certs=security.cafile or None,
                    certfile=security.certfile or None,
                    keyfile=security.keyfile or None,
                    cert_reqs=ssl.CERT_REQUIRED,
                )
            except (OSError, ssl.SSLError, ValueError) as exc:
                raise SyncError(f"TLS settings unusable: {exc}") from exc
        if security.username:
            self._client.username_pw_set(security.username, security.password or None)

    def _schedule_reconnect(self) -> None:
        # paho waits its "min delay" before the first retry after reconnect_delay_set; setting
        # both bounds to our jittered delay before every wait gives paho's loop our backoff.
        delay = self._backoff.next_delay()
        self._client.reconnect_delay_set(min_delay=delay, max_delay=delay)  # type: ignore[arg-type]

    def start(self) -> MqttConnection:
        """Start connecting in the background; returns at once even if the broker is down."""
        try:
            self._client.connect_async(self.host, self.port, keepalive=self._keepalive)
        except (OSError, ValueError) as exc:
            raise BrokerUnavailable(f"mqtt://{self.host}:{self.port}: {exc}") from exc
        self._client.loop_start()
        return self

    def stop(self) -> None:
        """Disconnect and stop the network thread."""
        self._stopping = True
        self._client.disconnect()
        self._client.loop_stop()

    def wait_connected(self, timeout: float) -> bool:
        """Block until connected or ``timeout``; True if connected."""
        return self.connected.wait(timeout)

    def publish(self, topic: str, payload: bytes, *, qos: int = 1, weight: int = 0) -> None:
        """Queue a publish; raises :class:`SyncError` if paho refuses it (not connected).

        ``weight`` (records in a batch) is counted in :attr:`republished` if paho has to send
        the message again after a reconnect, so a delivery check can account for every copy.
        """
        info = self._client.publish(topic, payload, qos=qos)
        if qos and weight and info.rc in (paho.MQTT_ERR_SUCCESS, paho.MQTT_ERR_NO_CONN):  # paho holds it
            with self._unacked_lock:
                if info.mid in self._early_acks:  # acked already: nothing for paho to send again
                    del self._early_acks[info.mid]
                else:
                    self._unacked[info.mid] = weight
        if info.rc != paho.MQTT_ERR_SUCCESS:
            raise SyncError(
                f"publish to {topic} failed: {paho.error_string(info.rc)}", rc=info.rc, topic=topic
            )

    def _on_connect(
        self, client: paho.Client, userdata: Any, flags: Any, reason: Any, properties: Any
    ) -> None:
        if reason.is_failure:
            self.refused = str(reason)
            log.warning(
                "broker refused connection",
                extra={"broker": self.broker, "reason": str(reason)},
            )
            return
        with self._unacked_lock:  # paho sends these again right after this callback
            self.republished += sum(self._unacked.values())
        if self._subscriptions:  # one SUBSCRIBE, so its one SUBACK covers every topic
            client.subscribe([(topic, self._subscribe_qos) for topic in self._subscriptions])
        self._backoff.reset()
        self.refused = None
        self.connects += 1
        here = (self.host, self.port)
        if self._last_connected is not None and self._last_connected != here:
            self.failovers += 1
        self._last_connected = here
        self.connected.set()
        log.info("broker connected", extra={"broker": self.broker, "connects": self.connects})
        if self._on_connect_cb is not None:
            self._on_connect_cb()

    def _on_pre_connect(self, client: paho.Client, userdata: Any) -> None:
        self._attempting = True

    def _on_connect_fail(self, client: paho.Client, userdata: Any) -> None:
        self._attempt_over()

    def fail_over(self, why: str) -> bool:
        """Leave the node this client is on for the next one (a cluster only): the node answers
        but the cluster behind it does not (cut off from its peers, so nothing published there
        is stored and nothing comes back). Shutting the socket makes paho see a lost connection,
        which moves on to the next node as any loss does. Returns whether it did."""
        sock = self._client.socket()
        if len(self.endpoints) < 2 or not self.connected.is_set() or not isinstance(sock, socket.socket):
            return False  # (a TLS socket is an ssl.SSLSocket, a socket.socket too)
        log.warning("leaving broker node", extra={"broker": self.broker, "why": why})
        with contextlib.suppress(OSError):
            sock.shutdown(socket.SHUT_RDWR)
        return True

    def _attempt_over(self) -> None:
        """An attempt failed or a connection was lost: the next try goes to the next node, after
        the backoff delay. paho reports one failure through both callbacks; it counts once."""
        if not self._attempting or self._stopping:
            return
        self._attempting = False
        if len(self.endpoints) > 1:
            self._at = (self._at + 1) % len(self.endpoints)
            self.host, self.port = self.endpoints[self._at]
            # connect_async only records where to connect; paho's loop makes the attempt itself.
            self._client.connect_async(self.host, self.port, keepalive=self._keepalive)
        self._schedule_reconnect()

    def _on_subscribe(
        self, client: paho.Client, userdata: Any, mid: int, reasons: Any, properties: Any
    ) -> None:
        refused = [str(r) for r in reasons if getattr(r, "is_failure", False)]
        if refused:  # e.g. an ACL that denies a topic: nothing would ever arrive on it
            log.warning("broker refused a subscription", extra={"broker": self.broker, "reasons": refused})
            return
        self.subscribed.set()

    def _on_publish(self, client: paho.Client, userdata: Any, mid: int, reason: Any, properties: Any) -> None:
        with self._unacked_lock:
            if self._unacked.pop(mid, None) is None:
                self._early_acks[mid] = None
                if len(self._early_acks) > _EARLY_ACKS:
                    self._early_acks.popitem(last=False)

    def _on_disconnect(
        self, client: paho.Client, userdata: Any, flags: Any, reason: Any, properties: Any
    ) -> None:
        if self.connected.is_set():
            level = logging.INFO if not reason.is_failure else logging.WARNING
            log.log(level, "broker disconnected", extra={"broker": self.broker, "reason": str(reason)})
        self.connected.clear()
        self.subscribed.clear()
        self._attempt_over()

    def _on_message(self, client: paho.Client, userdata: Any, message: paho.MQTTMessage) -> None:
        if self._on_message_cb is not None:
            try:
                self._on_message_cb(message.topic, bytes(message.payload))
            except Exception:  # a bad message must not kill paho's network thread
                log.exception("message handler failed", extra={"topic": message.topic})
