"""The fast compiled validator agrees with the reference JSON Schema 2020-12 validator, for the
schema version each record names (v2 written now, v1 still accepted)."""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

import jsonschema
import pytest
from prescreen.core.errors import RecordError
from prescreen.core.records import SCHEMA_ID, SCHEMA_V1, schema, validate
from prescreen.ops.config import StationConfig
from prescreen.sim.syncbench import synthetic_record

MUTATIONS: dict[str, Callable[[dict[str, Any]], None]] = {
    "unchanged": lambda r: None,
    "unknown kind": lambda r: r.update(kind="telemetry-x"),
    "extra top-level key": lambda r: r.update(extra=1),
    "missing order": lambda r: r.pop("order"),
    "seq zero": lambda r: r.update(seq=0),
    "seq as text": lambda r: r.update(seq="7"),
    "bad record id": lambda r: r.update(record_id="not-a-uuid"),
    "bad timestamp": lambda r: r.update(created_at="yesterday"),
    "bad device id": lambda r: r.update(device_id="station 01/evil"),
    "carrier not in enum": lambda r: r["parcel"].update(carrier="acme"),
    "score above one": lambda r: r["screening"].update(score=1.5),
    "lower-case reason code": lambda r: r["screening"]["reasons"][0].update(code="bad code"),
    "supersedes without reason": lambda r: r.update(supersedes={"record_id": r["record_id"]}),
    "valid supersedes": lambda r: r.update(supersedes={"record_id": r["record_id"], "reason": "correction"}),
    "signature missing fields": lambda r: r.update(signature={}),
    "v2 channel cargo": lambda r: r["parcel"].update(channel="cargo"),
    "v2 channel not in enum": lambda r: r["parcel"].update(channel="courier"),
    "v2 port of entry not 4 digits": lambda r: r["parcel"].update(port_of_entry="JFK"),
    "v2 bad chapter 99 number": lambda r: r.update(order={"items": [{"chapter99": ["8518300000"]}]}),
    "v2 bad MID": lambda r: r.update(order={"items": [{"manufacturer": {"mid": "cn shenzhen 18"}}]}),
    "v2 rate of zero": lambda r: r.update(
        order={"usd_rate": {"currency": "EUR", "rate": 0, "date": "2026-11-20", "source": "x"}}
    ),
    "v1 record": lambda r: r.update(schema=SCHEMA_V1),
    "v1 record with a v2 field": lambda r: r.update(schema=SCHEMA_V1) or r["parcel"].update(master_bill="1"),
    "unknown schema version": lambda r: r.update(schema="prescreen.record/v9"),
}
VALID = ("unchanged", "valid supersedes", "v2 channel cargo", "v1 record")


@pytest.mark.parametrize("name", sorted(MUTATIONS))
def test_fast_validator_agrees_with_the_reference(name: str) -> None:
    record = copy.deepcopy(synthetic_record(3, StationConfig()))
    MUTATIONS[name](record)
    named = record["schema"] if record["schema"] in (SCHEMA_V1, SCHEMA_ID) else SCHEMA_ID
    reference = jsonschema.Draft202012Validator(
        schema(named), format_checker=jsonschema.Draft202012Validator.FORMAT_CHECKER
    )
    expected_valid = reference.is_valid(record) and record["schema"] == named
    try:
        validate(record)
        valid = True
    except RecordError:
        valid = False
    assert valid == expected_valid
    assert valid == (name in VALID)


def test_a_record_holding_a_lone_surrogate_is_refused_as_invalid() -> None:
    """The standard library reads ``"\\ud800"`` from JSON text; the schema validator cannot encode
    it. The receiver must refuse that record (RecordError), not stop on the validator's error."""
    record = synthetic_record(1, StationConfig(device_id="dev-1"))
    record["parcel"]["carrier"] = "\ud800"
    with pytest.raises(RecordError, match="does not match"):
        validate(record)
