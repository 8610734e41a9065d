"""The demo's hidden pattern and customs' random examinations (issue 17): what makes the demo's
learning loop worth running is that the pattern passes the rules and the shipped model, and
that customs' examinations of cleared parcels are a seeded random share."""

from __future__ import annotations

import pytest
from prescreen.drivers.barcodes import decode
from prescreen.models.runner import load_risk_model
from prescreen.ops.config import ScreeningConfig
from prescreen.risk.entry import EntrySettings
from prescreen.risk.rules import ParcelFacts
from prescreen.risk.screening import Screener
from prescreen.sim.demo_loop import EXAMINED_SHARE, examined
from prescreen.sim.samples import ACCOUNT_CHANNELS, COUNTERFEIT_SELLER, generate

# What a rule or the model would say about the goods themselves (not the filer's paperwork).
GOODS_FINDINGS = {
    "VALUE_PER_KG_LOW",
    "WEIGHT_MISMATCH",
    "TARIFF_DESCRIPTION_MISMATCH",
    "DQ_DESCRIPTION_VAGUE",
    "MODEL_ELEVATED_RISK",
    "MODEL_HIGH_RISK",
}


@pytest.mark.slow  # about a second: a hundred parcels screened
def test_the_demos_counterfeits_pass_the_rules_and_the_shipped_model() -> None:
    orders, steps = generate(100)
    by_tracking = {o["tracking_number"]: o for o in orders if "tracking_number" in o}
    channel, account = ACCOUNT_CHANNELS.split("=")[::-1]
    screener = Screener(
        ScreeningConfig(),
        load_risk_model(),
        entry=EntrySettings(account_channels={account: channel}),
    )
    counterfeits = [s for s in steps if s.label == "counterfeit"]
    assert len(counterfeits) >= 8  # one parcel in ten (not in the split shipment or master carton)
    verdicts = []
    for step in counterfeits:
        barcode = decode(step.payload)
        order = by_tracking[barcode.tracking_number]
        assert order["seller"]["name"] == COUNTERFEIT_SELLER[0]
        result = screener.screen(ParcelFacts(barcode=barcode, weight_kg=step.weight_kg, order=order))
        assert not GOODS_FINDINGS & {f.code for f in result.findings}, result.findings
        verdicts.append(result.verdict)
    assert verdicts.count("CLEAR") >= len(verdicts) - 2  # the others only for the sample's filer gaps


def test_customs_examines_a_seeded_random_share_of_cleared_parcels() -> None:
    trackings = [f"1ZTEST{n:012d}" for n in range(4000)]
    picked = [t for t in trackings if examined(t)]
    assert picked == [t for t in trackings if examined(t)]  # the same parcels every time
    assert abs(len(picked) / len(trackings) - EXAMINED_SHARE) < 0.02
    assert examined(trackings[0], share=1.0)
    assert not examined(trackings[0], share=0.0)
