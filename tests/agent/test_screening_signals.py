"""Screening on meaning: each rule on real examples and on the near misses it must let pass."""

from __future__ import annotations

import copy
import csv
import json
import os
import time
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from prescreen.models import lexicon
from prescreen.models.nomenclature import load_hts_table
from prescreen.ops.config import EntryConfig, ScreeningConfig
from prescreen.packing.batch import facts_from_json
from prescreen.risk.codes import CUSTOMS_ONLY
from prescreen.risk.entry import EntrySettings
from prescreen.risk.screening import Screener
from prescreen.risk.strings import seller_advice

SELLER = {"name": "Acme Trading Co.", "address": {"line1": "1 Keji Rd", "city": "Shenzhen", "country": "CN"}}
BUYER = {"name": "Jo Doe", "address": {"line1": "2 Oak St", "city": "Austin", "country": "US"}}


def order(
    description: str, hts: str, *, value: float = 20.0, kg: float = 0.5, **extra: Any
) -> dict[str, Any]:
    return {
        "currency": extra.pop("currency", "USD"),
        "declared_weight_kg": kg,
        "seller": SELLER,
        "consignee": BUYER,
        "shipment_category": extra.pop("category", "sale"),
        "items": [
            {
                "description": description,
                "hts_code": hts,
                "quantity": 1,
                "unit_value": value,
                "origin_country": "CN",
            }
        ],
    }


def codes(parcel: dict[str, Any], weight: float = 0.5, config: ScreeningConfig | None = None) -> set[str]:
    facts = facts_from_json({"order": parcel, "measured_weight_kg": weight})
    screening = Screener(config or ScreeningConfig()).screen(facts)
    # the filer findings (entry data: importer, manufacturer...) are tested in test_filer.py
    return {f.code for f in screening.findings if f.severity != "info" and not f.code.startswith("FILER_")}


@pytest.mark.parametrize(
    ("description", "hts"),
    [
        ("Wireless bluetooth earbuds with charging case", "8518300000"),
        ("Paperback novel, English language", "4901990000"),
        ("USB-C charging cable 1 m", "8544429000"),
        ("Ceramic coffee mug 350 ml", "6912004400"),
        ("Children's wooden jigsaw puzzle 100 pieces", "9503000090"),
        ("Citric Acid Food Grade Powder 1kg", "2918140000"),  # a chemical named by its own line
        ("Headphones and earphones, whether or not combined with a microphone", "8518300000"),
        ("Stainless steel insulated water bottle 750 ml", "9617001000"),
    ],
)
def test_ordinary_goods_in_their_own_words_clear(description: str, hts: str) -> None:
    assert codes(order(description, hts)) == set()


@pytest.mark.parametrize(
    ("description", "hts", "expected"),
    [
        ("Wireless earbuds", "8518900000", None),  # 851890 exists (parts)
        ("Wireless earbuds", "8518770000", "DQ_TARIFF_UNKNOWN"),  # 851877 does not exist
        ("Wireless earbuds", "9903880300", "DQ_TARIFF_CHAPTER_INVALID"),
        ("Electronics", "8518300000", "DQ_DESCRIPTION_VAGUE"),  # ICS2 stop word
        ("Household goods", "3924100000", "DQ_DESCRIPTION_VAGUE"),
        ("Kids toys", "9503000090", "DQ_DESCRIPTION_VAGUE"),  # filler + PACT/ICS2 word
        ("Cotton t-shirt", "8518300000", "TARIFF_DESCRIPTION_MISMATCH"),
        ("Bluetooth speaker", "6109100012", "TARIFF_DESCRIPTION_MISMATCH"),
    ],
)
def test_tariff_and_description_rules(description: str, hts: str, expected: str | None) -> None:
    found = codes(order(description, hts))
    assert found == ({expected} if expected else set())


@pytest.mark.parametrize(
    ("description", "hts", "expected"),
    [
        ("4-piperidon powder 99%", "2933399100", "PRECURSOR_CHEMICAL"),  # misspelt
        ("N-Phenethyl-4-piperidinone", "2933399100", "PRECURSOR_CHEMICAL"),
        ("Benzylfentanyl reference standard", "2933399100", "PRECURSOR_CHEMICAL"),
        ("BMK glycidate powder", "2918300000", "PRECURSOR_CHEMICAL"),
        ("Isotonitazene", "2933990000", "PRECURSOR_CHEMICAL"),
        ("research sample CAS 110-89-4", "3822190000", "PRECURSOR_CHEMICAL"),  # piperidine by CAS
        ("Food additive", "2933370000", "PRECURSOR_TARIFF_LINE"),  # 2933.37 is NPP's own line
        ("Food additive", "2933399100", "CHEMICAL_TARIFF_LINE"),
        ("Machine parts for kitchen", "8479899000", "PRESS_TARIFF_LINE"),
        ("ZP9 rotary tablet press", "8479899000", "PILL_PRESS_EQUIPMENT"),
    ],
)
def test_risk_indicators_act_on_names_typos_and_tariff_lines(
    description: str, hts: str, expected: str
) -> None:
    assert expected in codes(order(description, hts))


@pytest.mark.parametrize(
    ("description", "hts"),
    [
        ("Piperine black pepper extract", "1302199000"),  # not piperidine
        ("Piperazine dewormer tablets for dogs", "3004900000"),
        ("Propionic acid food preservative", "2915500000"),  # not propionic anhydride
        ("French press coffee maker glass", "8516710000"),  # not a pill press
    ],
)
def test_near_misses_are_not_precursors_or_presses(description: str, hts: str) -> None:
    assert not codes(order(description, hts)) & {"PRECURSOR_CHEMICAL", "PILL_PRESS_EQUIPMENT"}


def test_values_are_compared_in_usd_with_the_rate_table(tmp_path: Path) -> None:
    # 200 JPY for 1 kg of earbuds is 1.34 USD per kg: under the chapter 85 floor
    assert "VALUE_PER_KG_LOW" in codes(
        order("Wireless earbuds", "8518300000", value=200, kg=1.0, currency="JPY"), 1.0
    )
    # the same 200 in USD is plausible
    assert "VALUE_PER_KG_LOW" not in codes(order("Wireless earbuds", "8518300000", value=200, kg=1.0), 1.0)
    # the site's certified rate table ([entry] usd_rates_path) wins over the shipped one
    table = tmp_path / "rates.json"
    table.write_text(json.dumps({"date": "2026-11-20", "source": "FRBNY", "usd_per_unit": {"JPY": 1.0}}))
    entry = EntrySettings.from_config(EntryConfig(usd_rates_path=str(table)))
    parcel = order("Wireless earbuds", "8518300000", value=200, kg=1.0, currency="JPY")
    facts = facts_from_json({"order": parcel, "measured_weight_kg": 1.0})
    found = {f.code for f in Screener(ScreeningConfig(), entry=entry).screen(facts).findings}
    assert "VALUE_PER_KG_LOW" not in found


def test_formal_entry_and_gift_limits() -> None:
    assert "VALUE_FORMAL_ENTRY" in codes(order("Laptop computer", "8471300100", value=2600, kg=2.0), 2.0)
    assert "VALUE_FORMAL_ENTRY" not in codes(order("Laptop computer", "8471300100", value=2400, kg=2.0), 2.0)
    assert "GIFT_OVER_LIMIT" in codes(order("Leather wallet", "4202310000", value=150, category="gift"))
    assert "GIFT_OVER_LIMIT" not in codes(order("Leather wallet", "4202310000", value=90, category="gift"))


def test_risk_findings_never_reach_the_seller() -> None:
    parcel = order("4-Piperidone hydrochloride", "2933399100")
    facts = facts_from_json({"order": parcel, "measured_weight_kg": 0.5})
    screening = Screener(ScreeningConfig()).screen(facts)
    record = {"order": parcel, "parcel": {"measured_weight_kg": 0.5}, "screening": screening.as_json()}
    assert {f.code for f in screening.findings} & CUSTOMS_ONLY
    assert not {code for code, _ in seller_advice(record, "en")} & CUSTOMS_ONLY


def test_a_usitc_hts_table_checks_all_ten_digits(tmp_path: Any) -> None:
    table = tmp_path / "hts_2026_revision_3.csv"
    table.write_text("HTS Number,Indent,Description\n8518.30.20.00,2,Headphones\n8518.30,1,Headphones\n")
    loaded = load_hts_table(table)
    assert loaded.codes == {"8518302000"}
    assert loaded.revision == "2026 revision 3"
    config = ScreeningConfig(hts_table=str(table))
    assert "DQ_TARIFF_NOT_IN_HTS" in codes(order("Wireless earbuds", "8518300000"), config=config)
    assert codes(order("Wireless earbuds", "8518.30.2000"), config=config) == set()


def test_hs6_exists_in_the_shipped_nomenclature() -> None:
    nomenclature = lexicon.load().nomenclature
    assert len(nomenclature.subheadings) == 5613
    assert nomenclature.exists("8518302000")
    assert not nomenclature.exists("8518770000")


def test_measured_weight_as_decimal_or_float_gives_the_same_verdict() -> None:
    facts = facts_from_json({"order": order("Wireless earbuds", "8518300000"), "measured_weight_kg": 0.5})
    assert facts.weight_kg == Decimal("0.5")


def test_doctor_reports_the_hts_tables_revision_and_age(tmp_path: Path) -> None:
    from prescreen.ops import doctor
    from prescreen.ops.config import Config

    table = tmp_path / "hts_2026_revision_3.json"
    table.write_text(json.dumps([{"htsno": "8518.30.20.00"}, {"htsno": ""}, {"htsno": "8518.30"}]))
    conf = Config(screening=ScreeningConfig(hts_table=str(table)))
    fresh = doctor._hts_table(conf)
    assert fresh.level == "ok"
    assert "2026 revision 3, 1 ten-digit lines" in fresh.detail
    old = time.time() - 200 * 86_400
    os.utime(table, (old, old))
    assert doctor._hts_table(conf).level == "warn"
    table.write_text("not json")
    assert doctor._hts_table(conf).level == "FAIL"


@pytest.mark.slow
def test_false_mismatch_rate_on_clean_parcels_of_every_generator() -> None:
    """The description-vs-code rule on the held-out clean parcels of all four generators (the
    README states the measured rates: 0 % on three, 2.6 % on marketplace)."""
    holdout = Path(lexicon.__file__).parent / "holdout.csv"
    screener = Screener(ScreeningConfig())
    clean: dict[str, list[bool]] = {}
    with holdout.open() as handle:
        for row in csv.DictReader(handle):
            if row["kind"] == "clean":
                found = {f.code for f in screener.screen(facts_from_json(row)).findings}
                clean.setdefault(row["generator"], []).append("TARIFF_DESCRIPTION_MISMATCH" in found)
    assert set(clean) == {"shop", "nomenclature", "marketplace", "postal"}
    rates = {name: sum(hits) / len(hits) for name, hits in clean.items()}
    assert max(rates.values()) <= 0.03, rates


@pytest.mark.parametrize(
    ("path", "value", "expected"),
    [
        ("currency", ["USD"], "DQ_CURRENCY_UNKNOWN"),
        ("items.0.unit_value", 10**400, None),  # an int too large for a float: no value, no crash
        ("items.0.origin_country", {"code": "CN"}, "DQ_ORIGIN_UNKNOWN"),
        ("consignee.address.country", ["US"], "DQ_COUNTRY_UNKNOWN"),
        ("items.0.hts_code", 8518300000, None),  # a number instead of a string still reads
    ],
)
def test_odd_types_in_order_data_are_findings_not_crashes(
    path: str, value: object, expected: str | None
) -> None:
    parcel = copy.deepcopy(order("Wireless earbuds", "8518300000"))
    *keys, last = path.split(".")
    target: Any = parcel
    for key in keys:
        target = target[int(key)] if key.isdigit() else target[key]
    target[last] = value
    found = codes(parcel)
    if expected:
        assert expected in found
    else:
        assert not found - {"DQ_VALUE_MISSING"}
