"""Outbox housekeeping: retention, personal-data purge, limits with an alarm, shedding at the disk floor."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from prescreen.core.errors import OutboxError
from prescreen.core.records import envelope, validate
from prescreen.ops.config import OutboxConfig, StationConfig
from prescreen.packing.housekeeping import housekeep
from prescreen.packing.outbox import Outbox
from prescreen.packing.outcomes import outcome_record
from record_fixtures import record

LATER = datetime.now(timezone.utc) + timedelta(days=40)


def _with_parties(seq: int) -> dict[str, Any]:
    body = record(seq)
    address = {"line1": "5 Elm St", "city": "Austin", "country": "US"}
    body["order"] = {
        "consignee": {"name": "Ana Ruiz", "address": address, "id": "TAX-1"},
        "final_recipient": {"name": "Bo Li", "address": address, "id": None},
        "seller": {"name": "Seller Co", "address": {"city": "Shenzhen"}, "id": None},
        # the buyer importing for themself, by social security number (record schema v2)
        "importer_of_record": {"name": "Ana Ruiz", "id": "123-45-6789", "id_type": "ssn", "address": address},
        "items": [],
    }
    return body


def _filled(path: Path, acked: int, pending: int) -> Outbox:
    outbox = Outbox(path)
    committed = outbox.append_many([_with_parties] * (acked + pending))
    outbox.mark_acked(r["record_id"] for r in committed[:acked])
    return outbox


def test_acked_records_past_retention_are_pruned_and_pending_ones_never(tmp_path: Path) -> None:
    outbox = _filled(tmp_path / "o.db", acked=30, pending=5)
    report = housekeep(outbox, OutboxConfig(retention_days=30), now=datetime.now(timezone.utc))
    assert report.pruned == 0  # acked just now: within retention
    report = housekeep(outbox, OutboxConfig(retention_days=30), now=LATER)
    assert report.pruned == 30
    assert outbox.counts() == {"pending": 5}
    assert report.alarm is None


def test_sequence_numbers_are_never_reused_after_pruning_everything(tmp_path: Path) -> None:
    outbox = _filled(tmp_path / "o.db", acked=10, pending=0)
    housekeep(outbox, OutboxConfig(retention_days=1), now=LATER)
    assert outbox.counts() == {}
    outbox.close()
    reopened = Outbox(tmp_path / "o.db")
    assert reopened.append(record)["seq"] == 11


def test_personal_data_is_erased_from_old_acked_records_only(tmp_path: Path) -> None:
    outbox = _filled(tmp_path / "o.db", acked=3, pending=2)
    report = housekeep(outbox, OutboxConfig(pii_days=7, retention_days=365), now=LATER)
    assert report.purged == 3
    bodies = outbox.records()
    for body in bodies[:3]:
        assert body["order"]["consignee"] == {"name": None, "address": None, "id": None}
        assert body["order"]["final_recipient"] == {"name": None, "address": None, "id": None}
        assert body["order"]["importer_of_record"] == {"name": None, "address": None, "id": None}
        assert body["order"]["seller"]["name"] == "Seller Co"  # a business, and the evidence
        assert body["screening"]["verdict"] == "CLEAR"
    for body in bodies[3:]:
        assert body["order"]["consignee"]["name"] == "Ana Ruiz"  # not yet at the receiver
    assert housekeep(outbox, OutboxConfig(pii_days=7, retention_days=365), now=LATER).purged == 0


def test_over_the_row_limit_acked_go_first_then_an_alarm_and_nothing_pending_dropped(tmp_path: Path) -> None:
    outbox = _filled(tmp_path / "o.db", acked=20, pending=15)
    report = housekeep(outbox, OutboxConfig(max_rows=25), now=datetime.now(timezone.utc))
    assert report.pruned == 20  # pruned in chunks, oldest first, until under (or nothing acked left)
    assert outbox.counts() == {"pending": 15}
    assert report.alarm is None
    report = housekeep(outbox, OutboxConfig(max_rows=10), now=datetime.now(timezone.utc))
    assert outbox.counts() == {"pending": 15}
    assert report.alarm is not None
    assert "15 pending, none dropped" in report.alarm


def test_at_the_disk_floor_outcomes_are_shed_but_verdicts_are_still_committed(tmp_path: Path) -> None:
    outbox = _filled(tmp_path / "o.db", acked=0, pending=1)
    report = housekeep(outbox, OutboxConfig(min_free_mb=10**12), now=datetime.now(timezone.utc))
    assert report.shed == ("downlink", "outcome")
    assert report.alarm is not None
    station = StationConfig(device_id="dev-1", site_id="site-a")
    with pytest.raises(OutboxError, match="outcome record shed"):
        outbox.append(
            lambda seq: outcome_record(
                seq, station, refers_to=record(1)["record_id"], tracking_number=None, outcome="abandoned"
            )
        )
    assert outbox.append(record)["seq"] == 2  # the verdict is committed; the shed outcome took no seq
    report = housekeep(outbox, OutboxConfig(), now=datetime.now(timezone.utc))
    assert report.shed == ()
    assert outbox.shed == frozenset()


def test_an_importer_of_record_with_an_ein_is_a_business_and_kept(tmp_path: Path) -> None:
    def with_business_importer(seq: int) -> dict[str, Any]:
        body = _with_parties(seq)
        body["order"]["importer_of_record"] = {
            "name": "Demo Imports LLC",
            "id": "98-7654321",
            "id_type": "ein",
        }
        return body

    outbox = Outbox(tmp_path / "o.db")
    (committed,) = outbox.append_many([with_business_importer])
    outbox.mark_acked([committed["record_id"]])
    assert housekeep(outbox, OutboxConfig(pii_days=7, retention_days=365), now=LATER).purged == 1
    (body,) = outbox.records()
    assert body["order"]["importer_of_record"]["name"] == "Demo Imports LLC"
    assert body["order"]["consignee"]["name"] is None
    validate(body)


def test_an_rfi_answer_keeps_only_the_goods_and_the_seller_after_pii_days(tmp_path: Path) -> None:
    answered = {
        "invoice": "INV-7 to Ana Ruiz, 5 Elm St, Austin",
        "hts_code": "6912004400",
        "description": "stoneware mugs",
        "consignee_tax_id": "RFC-XAXX010101000",
        "manufacturer": "Jingdezhen Ceramics Co",
        "origin_country": "CN",
        "unit_value": "4.00",
        "seller": "Seller Co",
        "importer_of_record": "Ana Ruiz, SSN 123-45-6789",
        "photo": "https://files.example/parcel-label.jpg",
    }

    def rfi_answer(seq: int) -> dict[str, Any]:
        body = envelope("rfi_response", seq, StationConfig())
        body["rfi_response"] = {
            "message_id": "m-1",
            "tracking_number": "1ZRFI000000000001",
            "refers_to": None,
            "requested_fields": sorted(answered),
            "fields": dict(answered),
            "answered_by": "compliance",
            "note": "called the buyer, Ana Ruiz, on +1 512 555 0100",
        }
        return body

    outbox = Outbox(tmp_path / "o.db")
    committed = outbox.append_many([rfi_answer, rfi_answer])
    outbox.mark_acked([committed[0]["record_id"]])  # the second is pending: never touched
    assert housekeep(outbox, OutboxConfig(pii_days=7, retention_days=365), now=LATER).purged == 1
    purged, pending = outbox.records()
    erased = ("invoice", "consignee_tax_id", "importer_of_record", "photo")
    assert purged["rfi_response"]["fields"] == {
        name: "[erased]" if name in erased else value for name, value in answered.items()
    }
    assert purged["rfi_response"]["note"] == "[erased]"
    assert purged["rfi_response"]["requested_fields"] == sorted(answered)
    assert pending["rfi_response"]["fields"] == answered
    validate(purged)
