"""Operator strings: every reason code and every label exists in every language."""

from __future__ import annotations

import re
from pathlib import Path

from prescreen.risk import strings

AGENT = Path(strings.__file__).resolve().parents[1]


def test_every_reason_code_the_rules_emit_has_words_in_every_language() -> None:
    source = "".join(
        (AGENT / name).read_text()
        for name in ("risk/rules.py", "risk/screening.py", "packing/station.py", "risk/filer.py")
    )
    codes = set(re.findall(r'"([A-Z][A-Z0-9]+(?:_[A-Z0-9]+)+)"', source))
    codes.discard("CHECK_DIGIT_FAILED")  # the barcode's reason, reported as BARCODE_CHECK_FAILED
    assert len(codes) > 30
    missing = {
        (c, lang) for c in codes for lang in strings.LANGUAGES if lang not in strings.REASONS.get(c, {})
    }
    assert not missing


def test_every_label_exists_in_every_language() -> None:
    keys = set(strings.UI["en"])
    for language in strings.LANGUAGES:
        assert set(strings.UI[language]) == keys


def test_weight_reason_uses_the_parcels_own_figures() -> None:
    record = {
        "order": {"declared_weight_kg": 0.2, "total_declared_value": 12.0, "currency": "USD"},
        "parcel": {"measured_weight_kg": 1.4},
        "screening": {
            "reasons": [
                {"code": "WEIGHT_MISMATCH", "severity": "review", "message": "..."},
                {"code": "MODEL_SCORE", "severity": "info", "message": "score 0.1"},
                {"code": "PRECURSOR_CHEMICAL", "severity": "hold", "message": "..."},
            ]
        },
    }
    assert strings.reasons(record, "en") == [
        "Description names a controlled chemical.",  # hold first
        "Declared 0.2 kg, scale says 1.4 kg.",
    ]
    assert strings.reasons(record, "es")[1] == "Declarado 0.2 kg, la báscula marca 1.4 kg."


def _rule_codes() -> set[str]:
    source = "".join(
        (AGENT / name).read_text()
        for name in ("risk/rules.py", "risk/screening.py", "packing/station.py", "risk/filer.py")
    )
    codes = set(re.findall(r'"([A-Z][A-Z0-9]+(?:_[A-Z0-9]+)+)"', source))
    codes.discard("CHECK_DIGIT_FAILED")
    return codes


def test_every_finding_is_either_seller_advice_in_every_language_or_not_the_sellers_doing() -> None:
    codes = _rule_codes()
    unaccounted = (
        codes - set(strings.SELLER_ADVICE) - strings.NOT_SELLER_FINDINGS - strings.CUSTOMS_ONLY_FINDINGS
    )
    assert not unaccounted
    missing = {
        (c, lang)
        for c in strings.SELLER_ADVICE
        for lang in strings.LANGUAGES
        if lang not in strings.SELLER_ADVICE[c]
    }
    assert not missing
    assert not set(strings.SELLER_ADVICE) - codes  # no advice for a code no rule emits


def test_seller_advice_names_the_item_the_finding_is_about() -> None:
    record = {
        "order": {
            "items": [{"description": "USB cable", "hts_code": "8544420000"}, {"description": "parts"}]
        },
        "parcel": {"measured_weight_kg": 0.4},
        "screening": {
            "reasons": [
                {
                    "code": "DQ_DESCRIPTION_VAGUE",
                    "severity": "review",
                    "message": "Item 2: description 'parts' is too vague",
                },
                {"code": "NO_WEIGHT", "severity": "review", "message": "no weight"},
            ]
        },
    }
    ((code, text),) = strings.seller_advice(record, "en")
    assert code == "DQ_DESCRIPTION_VAGUE"
    assert text.startswith("Description 'parts' is too vague: say what the item is")
    assert "'parts'" in strings.seller_advice(record, "es")[0][1]
