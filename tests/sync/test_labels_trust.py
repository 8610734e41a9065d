"""What the label build refuses to believe (review findings 3 and 4): a ``supersedes`` chain that
loops must not hang it, and a station may label only its own verdicts."""

from __future__ import annotations

import threading
from typing import Any

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
