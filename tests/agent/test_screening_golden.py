"""Screening and the verdict record's members are byte for byte what they were when
``tests/fixtures/screening-golden.json`` was written (issue 20 made them cheaper, not different).

Each parcel's screening (``Screening.as_json`` in canonical JSON) and its verdict members as the
replay's workers serialise them are hashed; the file holds the first 16 hex digits per parcel, so
a failure names the first parcel that changed. The parcels: the bench's 500 (``make bench``'s
``_facts``), and 450 others, some of several order lines, with weights against their declarations,
no weight, a hold-list entry, a missing order, parcels in a master carton, a split shipment, and
the demo's entry settings (a postal account, EUR/CAD/CNY rates) and review lines so low that the
model raises some: every rule, the filer findings and the model's findings run.

When screening is meant to change (a new rule, a new model, other generated samples), write the
file again and say why in the commit: ``.venv/bin/python tests/agent/test_screening_golden.py``.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from decimal import Decimal
from pathlib import Path

from prescreen.core.records import dumps, join_members, member_texts
from prescreen.drivers.barcodes import decode
from prescreen.models.runner import load_risk_model
from prescreen.ops.config import ScreeningConfig
from prescreen.packing.verdicts import verdict_members
from prescreen.risk.entry import NO_SETTINGS, EntrySettings, UsdRates
from prescreen.risk.rules import CartonFacts, ParcelFacts
from prescreen.risk.screening import Screener
from prescreen.sim.samples import ACCOUNT_CHANNELS, DEMO_RATES, generate

GOLDEN = Path(__file__).parent.parent / "fixtures" / "screening-golden.json"
DEMO_ENTRY = EntrySettings(
    dict([ACCOUNT_CHANNELS.split("=")]),
    UsdRates(DEMO_RATES["date"], DEMO_RATES["source"], DEMO_RATES["usd_per_unit"]),
)


def _bench() -> list[ParcelFacts]:
    orders, _ = generate(500, seed=3)
    return [
        ParcelFacts(barcode=decode(o["tracking_number"]), weight_kg=Decimal("0.75"), order=o)
        for o in orders
        if "items" in o
    ]


def _varied() -> list[ParcelFacts]:
    orders, _ = generate(450, seed=11)
    carton = CartonFacts("C1", frozenset({"A", "B"}), ("A", "B", "X"), Decimal("2.5"), 0.3)
    facts = []
    parcels = [o for o in orders if "tracking_number" in o]
    for i, generated in enumerate(parcels):
        order = generated
        if i % 10 == 5:  # an order of several lines: its own and the next two parcels'
            more = [item for o in parcels[i + 1 : i + 3] for item in o.get("items", [])]
            order = {**generated, "items": generated.get("items", []) + more}
        declared = Decimal(str(order.get("declared_weight_kg") or "0.75"))
        weight = (declared, declared, declared * Decimal("1.04"), declared * 4 + 1, None)[i % 5]
        each = ParcelFacts(barcode=decode(order["tracking_number"]), weight_kg=weight, order=order)
        if i % 9 == 1:
            each = dataclasses.replace(each, watchlisted="customs hold 42", consignee_recent=i % 6)
        if i % 17 == 2:
            each = dataclasses.replace(each, order=None, order_problem="ORDER_UNAVAILABLE")
        if i % 13 == 3:
            each = dataclasses.replace(each, inside_carton="C1", inside_manifest=i % 2 == 0)
        if i % 23 == 4:
            each = dataclasses.replace(each, carton=carton)
        facts.append(each)
    return facts


def outputs() -> dict[str, list[str]]:
    """Per set, each parcel's digest of its screening and its verdict members."""
    model = load_risk_model()
    # the varied set with review lines low enough that the model raises some parcels, a few high
    low = ScreeningConfig(review_score=0.04, hold_score=0.05)
    sets = {"bench": (_bench(), ScreeningConfig(), NO_SETTINGS), "varied": (_varied(), low, DEMO_ENTRY)}
    found: dict[str, list[str]] = {}
    for name, (facts, config, entry) in sets.items():
        screener = Screener(config, model, entry=entry)
        digests = []
        for each in facts:
            screening = screener.screen(each)
            members = join_members(member_texts(verdict_members(each, screening, entry=entry)))
            text = dumps(screening.as_json()) + "\n" + members
            digests.append(hashlib.sha256(text.encode("utf-8")).hexdigest()[:16])
        found[name] = digests
    return found


def test_screening_and_verdict_members_are_unchanged() -> None:
    expected = json.loads(GOLDEN.read_text())
    found = outputs()
    for name, digests in expected.items():
        assert len(found[name]) == len(digests), name
        changed = [i for i, (a, b) in enumerate(zip(digests, found[name], strict=True)) if a != b]
        assert not changed, f"{name}: parcels {changed[:10]} ({len(changed)} in all) screen differently"


if __name__ == "__main__":
    GOLDEN.write_text(json.dumps(outputs(), indent=0) + "\n")
