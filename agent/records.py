"""Preclearance records: building them, and validating them against the shipped JSON Schema v1.

The schema file (``schemas/record-v1.schema.json``) is the contract with the customs side; the
receiver validates every record against it, and the test suite validates every record the agent
writes, so the two cannot drift apart. Validation is compiled to Python code by fastjsonschema
(about 15 µs per record against 270 µs for the reference ``jsonschema`` package, which would bound
a receiver to ~3,700 records/s); the test suite checks the two agree.
"""

from __future__ import annotations

import functools
import json
import uuid
from collections.abc import Callable
from datetime import datetime, timezone
from decimal import Decimal
from importlib import resources
from typing import Any

import fastjsonschema
from prescreen._version import __version__
from prescreen.config import StationConfig
from prescreen.errors import RecordError

SCHEMA_ID = "prescreen.record/v1"
Record = dict[str, Any]


@functools.cache
def schema() -> dict[str, Any]:
    """The record JSON Schema v1 as shipped in the package."""
    text = resources.files("prescreen").joinpath("schemas/record-v1.schema.json").read_text()
    loaded: dict[str, Any] = json.loads(text)
    return loaded


@functools.cache
def _validator() -> Callable[[Any], Any]:
    # The schema only uses keywords whose meaning is the same in draft 7, which fastjsonschema
    # compiles; the $schema it declares (2020-12) is checked by the reference validator in tests.
    compiled: Callable[[Any], Any] = fastjsonschema.compile(
        {**schema(), "$schema": "http://json-schema.org/draft-07/schema#"}
    )
    return compiled


def validate(record: Record) -> None:
    """Raise :class:`RecordError` naming the first violation if ``record`` breaks schema v1."""
    try:
        _validator()(record)
    except fastjsonschema.JsonSchemaValueException as exc:
        where = "/".join(str(p) for p in (exc.path or [])[1:]) or "(record)"
        message = exc.message.removeprefix(str(exc.name) + " ").removeprefix("data ")
        raise RecordError(f"record does not match {SCHEMA_ID} at {where}: {message}") from None


def new_record_id() -> str:
    """A random UUID: unique across devices even if two stations share an id by mistake."""
    return str(uuid.uuid4())


def utc_now() -> str:
    """Current time as RFC 3339 UTC with milliseconds."""
    return datetime.now(timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def epoch_s(timestamp: str) -> float:
    """Seconds since the epoch of an RFC 3339 time as :func:`utc_now` writes it."""
    return datetime.fromisoformat(timestamp.replace("Z", "+00:00")).timestamp()


def kg(value: Decimal | None) -> float | None:
    """Weights leave Decimal only here, at the JSON edge, rounded to the gram."""
    return None if value is None else float(value.quantize(Decimal("0.001")))


def envelope(kind: str, seq: int, station: StationConfig) -> Record:
    """The identity fields every record from ``station`` starts with."""
    return {
        "schema": SCHEMA_ID,
        "record_id": new_record_id(),
        "kind": kind,
        "device_id": station.device_id,
        "site_id": station.site_id,
        "seq": seq,
        "created_at": utc_now(),
        "agent_version": __version__,
        "filer": {"code": station.filer_code, "type": "fulfillment"},
    }


def dumps(record: Record) -> str:
    """Compact, key-sorted JSON: the exact bytes stored and sent (and, later, signed)."""
    return json.dumps(record, separators=(",", ":"), sort_keys=True, ensure_ascii=False)
