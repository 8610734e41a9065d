"""Preclearance records: building them, and validating them against the shipped JSON Schemas.

The schema files (``schemas/record-v2.schema.json``, and ``record-v1`` for records written before
it) are the contract with the customs side; the receiver validates every record against the
version the record names, and the test suite validates every record the agent writes, so the two
cannot drift apart. A station writes v2 only; v1 records (in an outbox or a store from before the
upgrade, or from a station not yet upgraded) stay valid, because a signed record is never rewritten.
Validation is done by jsonschema-rs (Rust, draft 2020-12 as the schema declares, formats checked):
11 µs per record on the reference machine, against 107 µs for fastjsonschema's generated Python and
~1 ms for the reference ``jsonschema`` package, either of which would bound the receiver; the test
suite checks it agrees with the reference.
"""

from __future__ import annotations

import functools
import json
import os
import time
import uuid
from datetime import datetime, timezone
from decimal import Decimal
from typing import Any, Protocol

from prescreen._version import __version__
from prescreen.core import canonical
from prescreen.core.errors import RecordError
from prescreen.core.package_data import package_file

SCHEMA_V1 = "prescreen.record/v1"
SCHEMA_ID = "prescreen.record/v2"  # what this agent writes
# Every record schema this agent accepts, by the id a record names in its ``schema`` field.
SCHEMA_FILES = {SCHEMA_V1: "schemas/record-v1.schema.json", SCHEMA_ID: "schemas/record-v2.schema.json"}
Record = dict[str, Any]


@functools.cache
def schema(schema_id: str = SCHEMA_ID) -> dict[str, Any]:
    """A record JSON Schema as shipped in the package (the current one by default)."""
    text = package_file("prescreen.core", SCHEMA_FILES[schema_id]).read_text()
    loaded: dict[str, Any] = json.loads(text)
    return loaded


@functools.cache
def _validator(schema_id: str) -> Any:
    import jsonschema_rs  # the receiver and the tests validate; a station only builds records

    return jsonschema_rs.validator_for(schema(schema_id), validate_formats=True)


def validate(record: Record) -> None:
    """Raise :class:`RecordError` naming the first violation if ``record`` breaks the schema
    version it names (v1 or v2); a record naming no known version is refused as such."""
    schema_id = record.get("schema") if isinstance(record, dict) else None
    if schema_id not in SCHEMA_FILES:
        raise RecordError(
            f"record names schema {schema_id!r}; this agent accepts {', '.join(sorted(SCHEMA_FILES))}"
        )
    seq = record.get("seq")
    if isinstance(seq, float):  # JSON Schema calls 3.0 an integer; a sequence number is not a float
        raise RecordError(f"record does not match {schema_id} at seq: {seq!r} is not an integer")
    validator = _validator(schema_id)
    try:
        if validator.is_valid(record):  # the common case, without building an error
            return
        error = next(iter(validator.iter_errors(record)))
    except ValueError as exc:  # a lone surrogate, say: text no UTF-8 JSON can carry
        raise RecordError(f"record does not match {schema_id}: {exc}") from None
    where = "/".join(str(p) for p in error.instance_path) or "(record)"
    raise RecordError(f"record does not match {schema_id} at {where}: {error.message}")


def new_record_id() -> str:
    """A time-ordered UUID (version 7, RFC 9562 section 5.7): 48 bits of Unix milliseconds, then
    74 random bits, so ids are unique across devices even if two stations share an id by mistake,
    and ordered by the millisecond they were made in (within one, in random order).

    Why not a random (version 4) UUID: the record id is the key of an index in the outbox and
    the receiver's primary key. Random keys land on a random page of that index at every insert,
    so each commit of a few thousand records rewrites most of the index's pages; time-ordered
    keys land at its end. The receiver's CPU per record storing 100,000 records (no MQTT) went
    18.3-18.6 -> 14.3-15.5 µs on the reference machine, and the gap widens as a store grows.
    (Python 3.14's ``uuid.uuid7`` has this layout with a counter in place of some random bits;
    this agent supports Pythons before it.)
    """
    value = (time.time_ns() // 1_000_000) << 80 | int.from_bytes(os.urandom(10), "big")
    value = value & ~(0xF << 76) | 0x7 << 76  # the version, 7, in the top bits of the 7th byte
    value = value & ~(0x3 << 62) | 0x2 << 62  # the variant, binary 10, in the top bits of the 9th
    return str(uuid.UUID(int=value))


def utc_now() -> str:
    """Current time as RFC 3339 UTC with milliseconds."""
    return rfc3339(time.time())


def rfc3339(epoch: float) -> str:
    """An epoch time as :func:`utc_now` writes times."""
    moment = datetime.fromtimestamp(epoch, timezone.utc)
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def parse_time(timestamp: str) -> datetime:
    """An RFC 3339 time (``Z`` or an offset; Python 3.10's ``fromisoformat`` takes no ``Z``),
    taken as UTC when it names no zone.

    Raises:
        ValueError: not such a time.
    """
    parsed = datetime.fromisoformat(timestamp.replace("Z", "+00:00"))
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=timezone.utc)


def epoch_s(timestamp: str) -> float:
    """Seconds since the epoch of an RFC 3339 time as :func:`utc_now` writes it."""
    return parse_time(timestamp).timestamp()


def kg(value: Decimal | None) -> float | None:
    """Weights leave Decimal only here, at the JSON edge, rounded to the gram."""
    return None if value is None else float(value.quantize(Decimal("0.001")))


class StationIdentity(Protocol):
    """Who wrote a record: the ``[station]`` section satisfies it, and so does any bench's own."""

    @property
    def device_id(self) -> str: ...
    @property
    def site_id(self) -> str: ...
    @property
    def filer_code(self) -> str: ...


def envelope(kind: str, seq: int, station: StationIdentity) -> Record:
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


def tracking_number_of(record: Record) -> str | None:
    """The tracking number a record is about, whatever its kind (the receiver indexes it, so a
    parcel's verdicts, outcomes, customs messages and referral answers are found together)."""
    for key in ("parcel", "outcome", "downlink", "rfi_response", "screened"):
        part = record.get(key)
        if isinstance(part, dict):
            tracking = part.get("tracking_number")
            return tracking if isinstance(tracking, str) else None
    return None


_STRING = json.encoder.encode_basestring  # a key as json.dumps(key, ensure_ascii=False) writes it


def dumps(record: Record) -> str:
    """Compact, key-sorted JSON: the exact bytes stored and sent (and, later, signed); what
    ``json.dumps(record, separators=(",", ":"), sort_keys=True, ensure_ascii=False)`` writes
    (:mod:`prescreen.core.canonical` writes it faster)."""
    return canonical.dumps(record)


def member_texts(record: Record) -> dict[str, str]:
    """Each top-level member of ``record`` as :func:`dumps` writes it (``"key":value``), so texts
    with and without one member are joined from one serialisation (:func:`join_members`)."""
    return {key: f"{_STRING(key)}:{canonical.dumps(value)}" for key, value in record.items()}


def join_members(members: dict[str, str]) -> str:
    """The object :func:`dumps` writes, from :func:`member_texts` (keys in sorted order)."""
    return "{" + ",".join(members[key] for key in sorted(members)) + "}"
