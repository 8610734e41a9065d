"""The customs side of the downlink: send one station a message and wait for its ack.

For the reference receiver's operators (``prescreen downlink send``) and the tests. The ack names
the station's record of the effect, which also reaches the receiver's store through the uplink.
"""

from __future__ import annotations

import json
import os
import queue
import uuid
from typing import Any

from prescreen.records import utc_now
from prescreen.sync.mqtt import MqttConnection, Security
from prescreen.sync.topics import downlink_acks_topic, downlink_topic


def new_message(kind: str, **fields: Any) -> dict[str, Any]:
    """A downlink message with a fresh id and the time it was issued."""
    return {"message_id": uuid.uuid4().hex, "type": kind, "issued_at": utc_now(), **fields}


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
) -> dict[str, Any] | None:
    """Publish ``message`` to one station and return its ack (None if none came in ``wait_s``)."""
    acks: queue.Queue[bytes] = queue.Queue()
    connection = MqttConnection(
        client_id=f"customs-{os.getpid()}-{uuid.uuid4().hex[:6]}",
        host=host,
        port=port,
        on_message=lambda topic, payload: acks.put(payload),
        subscriptions=(downlink_acks_topic(prefix, site, device),),
        security=security,
    ).start()
    try:
        if not connection.subscribed.wait(wait_s):
            return None
        connection.publish(downlink_topic(prefix, site, device), json.dumps(message).encode())
        while True:
            try:
                ack: dict[str, Any] = json.loads(acks.get(timeout=wait_s))
            except queue.Empty:
                return None
            if ack.get("message_id") == message["message_id"]:
                return ack
    finally:
        connection.stop()
