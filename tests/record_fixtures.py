"""A minimal schema-valid verdict record, shared by the sync tests (reached through pytest pythonpath)."""

from __future__ import annotations

from prescreen.core.records import envelope
from prescreen.ops.config import StationConfig


def record(seq: int, device: str = "dev-1") -> dict:
    """A CLEAR verdict of ``device`` at site-a with sequence number ``seq`` and a new record id."""
    body = envelope("verdict", seq, StationConfig(device, "site-a", "X"))
    body["parcel"] = {
        "tracking_number": "1Z5R89390357567127",
        "carrier": "ups",
        "barcode": {"raw": "1Z5R89390357567127", "symbology": "unknown", "check_ok": True},
        "measured_weight_kg": 0.5,
    }
    body["order"] = None
    body["screening"] = {
        "verdict": "CLEAR",
        "score": None,
        "model_version": None,
        "mode": "rules-only",
        "reasons": [],
    }
    return body


def store_row(seq: int, record_id: str, *, device: str = "dev-1", site: str = "site-a") -> tuple[object, ...]:
    """A receiver store row (``prescreen.sync.store.COLUMNS``): a CLEAR verdict, empty body."""
    return (record_id, device, site, seq, "verdict", "CLEAR", None, "2026-01-01T00:00:00Z", "now", "{}", "v2")
