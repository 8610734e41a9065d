"""Operator strings: every label exists in every language; reasons and advice use the parcel's own
figures and the item a finding is about (the finding codes' own texts: test_findings.py)."""

from __future__ import annotations

from prescreen.risk import strings


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


def test_customs_only_findings_give_no_advice_and_other_codes_show_their_message() -> None:
    record = {
        "order": {"items": [{"description": "acetone"}]},
        "parcel": {},
        "screening": {
            "reasons": [
                {"code": "PRECURSOR_CHEMICAL", "severity": "hold", "message": "Item 1: listed chemical"},
                {
                    "code": "NOT_A_REGISTERED_CODE",
                    "severity": "review",
                    "message": "another agent's finding",
                },
            ]
        },
    }
    assert strings.seller_advice(record, "en") == []
    assert strings.reasons(record, "en") == [
        "Description names a controlled chemical.",
        "another agent's finding",  # a code this agent does not know: the record's own sentence
    ]
