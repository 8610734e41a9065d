"""What the label build refuses to believe (review findings 3 and 4): a ``supersedes`` chain that
loops must not hang it, and a station may label only its own verdicts."""

from __future__ import annotations

import threading
from typing import Any

from prescreen.core.signing import DeviceKey, KeyRing
from prescreen.sync.customs import new_message, seal
from prescreen.sync.labels import label_rows, labels_by_record, parcels


def _verdict(
    rid: str, *, supersedes: str | None = None, tracking: str | None = None, device: str = "d1"
) -> dict[str, Any]:
    return {
        "kind": "verdict",
        "record_id": rid,
        "site_id": "s1",
        "device_id": device,
        "created_at": f"2026-11-01T00:00:0{rid[-1]}Z",
        "order": {"items": [{"description": "mug", "quantity": 1, "unit_value_usd": 4.0}]},
        "parcel": {"tracking_number": tracking},
        "supersedes": {"record_id": supersedes} if supersedes else None,
    }


def _outcome(refers_to: str, value: str, *, site: str = "s1", device: str = "d1") -> dict[str, Any]:
    return {
        "kind": "downlink",
        "site_id": site,
        "device_id": device,
        "downlink": {
            "status": "applied",
            "customs_outcome": {"outcome": value, "refers_to": refers_to, "customs_reference": "C-1"},
        },
    }


def test_a_supersedes_cycle_that_does_not_contain_the_start_ends() -> None:
    # A -> B -> C -> B: the walk from A never comes back to A (it used to loop for ever).
    records = [
        _verdict("r1", supersedes="r2"),
        _verdict("r2", supersedes="r3"),
        _verdict("r3", supersedes="r2"),
    ]
    records.append(_outcome("r1", "seized"))
    found: list[list[dict[str, Any]]] = []
    worker = threading.Thread(target=lambda: found.append(parcels(records)), daemon=True)
    worker.start()
    worker.join(timeout=10)
    assert not worker.is_alive(), "parcels() did not return on a supersedes cycle"
    (grouped,) = found
    assert sorted(str(v["record_id"]) for p in grouped for v in p["versions"]) == ["r1", "r2", "r3"]
    assert labels_by_record(records)["r1"] == 1


def test_an_outcome_labels_only_a_verdict_of_the_station_that_recorded_it() -> None:
    records = [_verdict("r1", tracking="1ZA"), _verdict("r2", tracking="1ZB", device="d2")]
    records += [
        _outcome("r1", "seized", device="d2"),  # station d2 claims a seizure of d1's parcel
        _outcome("r2", "seized", site="s2", device="d2"),  # another site's d2 (same device name)
        _outcome("r2", "released", device="d2"),  # d2 on its own parcel: counts
    ]
    assert labels_by_record(records) == {"r2": 0}
    (row,) = label_rows(records)
    assert (row["record_id"], row["label"], row["station"]) == ("r2", 0, "s1/d2")


def _signed_outcome(key: DeviceKey, value: str, *, device: str = "d1", **names: str) -> dict[str, Any]:
    """An outcome downlink record of station s1/``device`` carrying customs' message signed by ``key``."""
    message = seal(
        new_message("outcome", outcome=value, reason_code="T", customs_reference="C-1", **names),
        key,
        site="s1",
        device=device,
    )
    refers_to = names.get("record_id") or f"r{names['tracking_number'][-1]}"
    record = _outcome(refers_to, value, device=device)
    record["downlink"]["customs_outcome"]["message"] = message
    return record


def test_with_customs_keys_only_outcomes_customs_signed_for_that_parcel_and_station_are_labels() -> None:
    customs, other = DeviceKey.generate(), DeviceKey.generate()
    keys = KeyRing([customs.public_b64])
    verdicts = [_verdict(f"r{n}", tracking=f"1Z{n}") for n in range(1, 8)]
    claimed = _signed_outcome(customs, "released", record_id="r5")
    claimed["downlink"]["customs_outcome"]["outcome"] = "seized"  # the station claims more than customs said
    elsewhere = _signed_outcome(customs, "seized", record_id="r6", device="d2")
    elsewhere["device_id"] = "d1"  # a message for d2 recorded by d1
    records = [
        *verdicts,
        _signed_outcome(customs, "seized", record_id="r1"),  # customs' word, by record id
        _signed_outcome(customs, "released", tracking_number="1Z2"),  # by tracking number
        _signed_outcome(other, "seized", record_id="r3"),  # not a customs key
        _outcome("r4", "seized"),  # no message at all (a station's word only)
        claimed,
        elsewhere,
        _signed_outcome(customs, "seized", record_id="r1") | {"record_id": "x"},  # same message again
    ]
    records[-1]["downlink"]["customs_outcome"]["refers_to"] = "r7"  # ... pinned on another parcel
    assert labels_by_record(records) == {
        f"r{n}": v for n, v in ((1, 1), (2, 0), (3, 1), (4, 1), (5, 1), (6, 1), (7, 1))
    }
    assert {r["record_id"]: r["label"] for r in label_rows(records, keys)} == {"r1": 1, "r2": 0}
