"""The outbox's side tables: customs holds, settings, feedback and the answers to downlink
messages, written only together with the record that is their evidence.

Kept apart from :mod:`prescreen.packing.outbox` (the record queue itself): these describe what a
change is; the outbox decides when it is committed (see ``Outbox.append_with``).
"""

from __future__ import annotations

import dataclasses
from typing import Any

Statement = tuple[str, tuple[Any, ...]]


@dataclasses.dataclass
class SideChanges:
    """Changes to the outbox's side tables, committed in one transaction with a record.

    A downlink message's effect (holds, settings, feedback) and the record that is its evidence
    are stored together or not at all; ``message`` (id, type) also stores the message's answer,
    so a redelivery is acked again, never applied twice.
    """

    # tracking number -> (type, reason)
    holds: dict[str, tuple[str, str | None]] = dataclasses.field(default_factory=dict)
    lifted: list[str] = dataclasses.field(default_factory=list)  # tracking numbers no longer held
    settings: dict[str, str | None] = dataclasses.field(default_factory=dict)  # None deletes the key
    feedback: list[tuple[str | None, str | None, str]] = dataclasses.field(default_factory=list)
    message: tuple[str, str] | None = None  # (message_id, type) these changes answer


@dataclasses.dataclass(frozen=True)
class Hold:
    """A tracking number customs asked the station to hold, and the message that asked."""

    tracking_number: str
    type: str
    reason: str | None
    message_id: str | None


def side_statements(changes: SideChanges, now: str) -> list[Statement]:
    """The SQL that applies ``changes``, for the transaction that also commits their record."""
    message_id = changes.message[0] if changes.message else None
    statements: list[Statement] = [  # a newer hold on a tracking number replaces the older one
        (
            "INSERT OR REPLACE INTO holds (tracking_number, type, reason, message_id, received_at) "
            "VALUES (?, ?, ?, ?, ?)",
            (tracking, kind, reason, message_id, now),
        )
        for tracking, (kind, reason) in changes.holds.items()
    ]
    statements += [("DELETE FROM holds WHERE tracking_number = ?", (t,)) for t in changes.lifted]
    statements += [
        ("DELETE FROM settings WHERE key = ?", (key,))
        if value is None
        else ("INSERT OR REPLACE INTO settings (key, value, updated_at) VALUES (?, ?, ?)", (key, value, now))
        for key, value in changes.settings.items()
    ]
    statements += [
        (
            "INSERT INTO feedback (message_id, received_at, record_id, seller, text) VALUES (?, ?, ?, ?, ?)",
            (message_id, now, record_id, seller, text),
        )
        for record_id, seller, text in changes.feedback
    ]
    return statements
