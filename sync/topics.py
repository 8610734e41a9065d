"""MQTT topics, built only here so every component agrees and bad ids never reach the broker.

Layout: ``<prefix>/<site>/<device>/records`` (uplink batches) and ``.../acks`` (receiver acks
for that device only, so a station can be ACL-limited to its own subtree).
"""

from __future__ import annotations

import re

from prescreen.core.errors import SyncError

_SEGMENT = re.compile(r"^[A-Za-z0-9._-]{1,64}$")
SHARE_GROUP = "receivers"


def _check(kind: str, value: str) -> str:
    if not _SEGMENT.match(value):
        raise SyncError(f"{kind} {value!r} cannot be a topic segment (use A-Z a-z 0-9 . _ -)")
    return value


def records_topic(prefix: str, site: str, device: str) -> str:
    """Where a station publishes its record batches."""
    return f"{prefix}/{_check('site', site)}/{_check('device', device)}/records"


def acks_topic(prefix: str, site: str, device: str) -> str:
    """Where the receiver acknowledges one station's records."""
    return f"{prefix}/{_check('site', site)}/{_check('device', device)}/acks"


def downlink_topic(prefix: str, site: str, device: str) -> str:
    """Where the customs side sends one station its holds, referrals, feedback, config and models."""
    return f"{prefix}/{_check('site', site)}/{_check('device', device)}/downlink"


def downlink_acks_topic(prefix: str, site: str, device: str) -> str:
    """Where a station acknowledges each downlink message (and names the record of its effect)."""
    return f"{prefix}/{_check('site', site)}/{_check('device', device)}/downlink-acks"


def health_topic(prefix: str, site: str, device: str) -> str:
    """Where a station sends its health telemetry (QoS 0, never queued: shed first)."""
    return f"{prefix}/{_check('site', site)}/{_check('device', device)}/health"


def receiver_presence_topic(prefix: str, receiver_id: str) -> str:
    """Where a receiver says it has (re)connected, so stations re-send what is unacked at once."""
    return f"{prefix}/receivers/{_check('receiver', receiver_id)}"


def receiver_presence_subscription(prefix: str) -> str:
    """What stations subscribe to for receivers coming online."""
    return f"{prefix}/receivers/+"


def records_subscription(prefix: str, *, shared: bool = True) -> str:
    """The receivers' subscription; shared so several receivers split the load."""
    topic = f"{prefix}/+/+/records"
    return f"$share/{SHARE_GROUP}/{topic}" if shared else topic


def parse_records_topic(prefix: str, topic: str) -> tuple[str, str]:
    """(site, device) from a records topic.

    Raises:
        SyncError: the topic is not a records topic under ``prefix``.
    """
    parts = topic[len(prefix) + 1 :].split("/") if topic.startswith(prefix + "/") else []
    if len(parts) != 3 or parts[2] != "records":
        raise SyncError(f"not a records topic: {topic}", topic=topic)
    return _check("site", parts[0]), _check("device", parts[1])


FLEET = "*"


def addressed_to(target: object, site: str, device: str) -> bool:
    """A downlink target (``{"site_id", "device_id"}``) names this station, every device of its site
    (device ``*``) or the fleet (both ``*``)."""
    if not isinstance(target, dict):
        return False
    to_site, to_device = target.get("site_id"), target.get("device_id")
    if to_site == FLEET:
        return to_device == FLEET
    return to_site == site and to_device in (device, FLEET)
