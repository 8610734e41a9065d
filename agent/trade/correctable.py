"""Which fields of a committed order the compliance team may correct, by where each lives.

A module of its own (not in :mod:`prescreen.trade.compliance`, which applies corrections on the
station) because the ``correct`` command lists the fields in its help, and ``prescreen --help``
must not load the station to say so.
"""

from __future__ import annotations

ITEM_FIELDS = (
    "description",
    "hts_code",
    "unit_value",
    "quantity",
    "origin_country",
    "cpsc_certificate",
    "dea_452_transaction_id",
)
ORDER_FIELDS = ("total_declared_value", "declared_weight_kg", "shipment_category", "currency")
PARTY_FIELDS = ("seller", "shipper", "consignee", "final_recipient", "importer_of_record")
ADDRESS_PARTS = ("line1", "city", "postal_code", "country")
# The line's manufacturer (the MID is built again from the corrected name and address).
MANUFACTURER_FIELDS = tuple(f"manufacturer_{part}" for part in ("name", *ADDRESS_PARTS))
CORRECTABLE = (
    *ITEM_FIELDS,
    *MANUFACTURER_FIELDS,
    *ORDER_FIELDS,
    *(f"{party}_name" for party in PARTY_FIELDS),
    *(f"{party}_{part}" for party in PARTY_FIELDS for part in ADDRESS_PARTS),
    "importer_of_record_id",
    "importer_of_record_id_type",
)
