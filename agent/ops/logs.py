"""Structured logging: one line per event, ``key=value`` pairs, journal friendly.

Why not print(): the agent runs under systemd where stdout is the journal; one event per line
with stable keys lets IT grep and alert on ``event=`` without parsing prose.
"""

from __future__ import annotations

import logging
import sys
from typing import Any

_RESERVED = set(vars(logging.LogRecord("", 0, "", 0, "", None, None)))


def _quote(value: object) -> str:
    text = str(value)
    if text == "" or any(c in text for c in ' "=\n\t'):
        return '"' + text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'
    return text


class KeyValueFormatter(logging.Formatter):
    """Render ``level=.. logger=.. event=.. k=v ..`` from a record and its ``extra`` fields."""

    def __init__(self, *, with_time: bool = True) -> None:
        super().__init__()
        self.with_time = with_time

    def format(self, record: logging.LogRecord) -> str:
        parts = []
        if self.with_time:
            parts.append(f"ts={self.formatTime(record, '%Y-%m-%dT%H:%M:%S')}")
        parts += [f"level={record.levelname.lower()}", f"logger={record.name}"]
        parts.append(f"event={_quote(record.getMessage())}")
        for key, value in record.__dict__.items():
            if key not in _RESERVED and not key.startswith("_"):
                parts.append(f"{key}={_quote(value)}")
        if record.exc_info and record.exc_info[1] is not None:
            parts.append(f"error={_quote(repr(record.exc_info[1]))}")
        return " ".join(parts)


def configure(level: str = "info", *, stream: Any = None, with_time: bool = True) -> None:
    """Send every ``prescreen`` logger to ``stream`` (stderr by default) as key=value lines."""
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(KeyValueFormatter(with_time=with_time))
    root = logging.getLogger("prescreen")
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    root.propagate = False
