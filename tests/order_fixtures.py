"""The one clean order the tests start from (importable by every test through ``pythonpath``)."""

from __future__ import annotations

from typing import Any

TRACKING = "1Z5R89390357567127"  # a UPS number with a valid check digit


def clean_order(tracking: str = TRACKING) -> dict[str, Any]:
    """A fresh copy of an order every rule passes: complete parties, a specific description, an
    entry-grade tariff code, a plausible value; callers may change it freely."""
    return {
        "tracking_number": tracking,
        "currency": "USD",
        "declared_weight_kg": 0.5,
        "seller": {
            "name": "Shenzhen Bright Star Trading",
            "address": {"line1": "18 Keji Rd", "country": "CN"},
        },
        "consignee": {"name": "Alex Kim", "address": {"line1": "12 Oak St", "country": "US"}},
        "importer_of_record": {"name": "Alex Kim", "id": "123-45-6789", "id_type": "ssn"},
        "items": [
            {
                "description": "Wireless bluetooth earbuds",
                "hts_code": "8518300000",
                "quantity": 1,
                "unit_value": 19.99,
                "origin_country": "CN",
                "manufacturer": {
                    "name": "Shenzhen Sound Tech Co., Ltd.",
                    "address": {"line1": "88 Nanhai Ave", "city": "Shenzhen", "country": "CN"},
                },
            }
        ],
    }
