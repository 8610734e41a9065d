"""The element tables of each filer format and of the record CSV, as ``docs/data-mapping.md``
documents them (the tests check the document against these tables).

Shared groups of elements (importer of record, consignee, transport, values, ...) are defined once
and spread into each format that carries them. Facts and sources: ``../shared/docs/domain.md``
section 0.
"""

from __future__ import annotations

from prescreen.risk.entry import hs6
from prescreen.trade.elements import (
    HS6,
    HTS10,
    IF_CONSOLIDATED,
    IF_CPSC,
    IF_PRESS,
    MANDATORY,
    NON_POSTAL,
    S10,
    Element,
    Need,
    address_line,
    chapter99,
    constant,
    descriptions,
    either,
    field_at,
    final_recipient,
    house_bill,
    hts10,
    item_field,
    json_text,
    line_value_usd,
    one_line,
    read_at,
    reason_codes,
    structured,
    total_value_usd,
    value_at,
)

INFORMAL_LIMIT_USD = 2500.0  # 19 CFR 143.21(a): informal entry for shipments up to $2,500

RECORD_ID = field_at("preclearance_record_id", "record_id", MANDATORY)
SUPERSEDES = field_at("supersedes_record_id", "supersedes.record_id")
FILER = field_at("filer_code", "filer.code", MANDATORY)
IOR = (
    field_at("importer_of_record_name", "order.importer_of_record.name", MANDATORY),
    field_at("importer_of_record_number", "order.importer_of_record.id", MANDATORY),
    field_at("importer_of_record_id_type", "order.importer_of_record.id_type", MANDATORY),
)
CONSIGNEE = (
    field_at("consignee_name", "order.consignee.name", MANDATORY),
    address_line("consignee_address", "consignee"),
)
FINAL_RECIPIENT = Element(
    "final_recipient_name", "order.final_recipient.name, else order.consignee.name", final_recipient
)
SELLER = (field_at("seller_name", "order.seller.name", MANDATORY), address_line("seller_address", "seller"))
TRANSPORT = (
    field_at("channel", "parcel.channel", NON_POSTAL),
    field_at("house_bill", "parcel.tracking_number", MANDATORY),
    field_at("master_bill", "parcel.master_bill", IF_CONSOLIDATED),
    field_at("carrier", "parcel.carrier", MANDATORY),
    field_at("transport_mode", "parcel.transport_mode", MANDATORY),
    field_at("port_of_entry", "parcel.port_of_entry", MANDATORY),
    field_at("arrival_date", "parcel.arrival_date"),
    either("country_of_export", "order.shipper.address.country", "order.seller.address.country", MANDATORY),
)
LINE = Element("line_number", "position in order.items (1-based)", lambda r, i: i.get("_line"), MANDATORY)
DESCRIPTION = item_field("description", "description", MANDATORY)
TARIFF = (
    Element("hts_10", "order.items[].hts_code (digits)", hts10, HTS10),
    Element("chapter99_numbers", "order.items[].chapter99 (space separated)", chapter99),
)
ORIGIN = item_field("country_of_origin", "origin_country", MANDATORY)
VALUES = (
    item_field("quantity", "quantity", MANDATORY),
    item_field("unit_value", "unit_value", MANDATORY),
    field_at("currency", "order.currency", MANDATORY),
    field_at("usd_rate", "order.usd_rate.rate", MANDATORY),
    field_at("usd_rate_date", "order.usd_rate.date", MANDATORY),
    Element("line_value_usd", "order.items[].unit_value_usd × quantity", line_value_usd, MANDATORY),
)
OTHER_AGENCIES = (
    item_field("cpsc_certificate", "cpsc_certificate", IF_CPSC),
    item_field("dea_452_transaction_id", "dea_452_transaction_id", IF_PRESS),
)
GROSS_WEIGHT = Element(
    "gross_weight_kg", "parcel.measured_weight_kg (scale)", read_at("parcel.measured_weight_kg"), MANDATORY
)
PRESCREEN = (
    field_at("prescreen_verdict", "screening.verdict"),
    Element("prescreen_reasons", "screening.reasons[].code (space separated)", reason_codes),
)

US_INFORMAL: tuple[Element, ...] = (
    constant("entry_type", "11"),
    RECORD_ID,
    SUPERSEDES,
    FILER,
    *IOR,
    *CONSIGNEE,
    FINAL_RECIPIENT,
    *SELLER,
    *TRANSPORT,
    field_at("gift", "order.gift"),
    LINE,
    DESCRIPTION,
    *TARIFF,
    ORIGIN,
    item_field("manufacturer_mid", "manufacturer.mid", MANDATORY),
    *VALUES,
    Element(
        "total_value_usd",
        "sum of line_value_usd",
        lambda r, i: total_value_usd(r),
        Need("yes: up to 2500", valid=lambda v: v <= INFORMAL_LIMIT_USD),
    ),
    *OTHER_AGENCIES,
    GROSS_WEIGHT,
    *PRESCREEN,
)

US_FORMAL_LINES: tuple[Element, ...] = (
    constant("entry_type", "01"),
    RECORD_ID,
    SUPERSEDES,
    FILER,
    *IOR,
    *CONSIGNEE,
    *SELLER,
    *TRANSPORT,
    LINE,
    DESCRIPTION,
    *TARIFF,
    ORIGIN,
    item_field("manufacturer_name", "manufacturer.name", MANDATORY),
    Element(
        "manufacturer_address",
        "order.items[].manufacturer.address (one line)",
        lambda r, i: one_line(value_at(i, "manufacturer.address")),
        MANDATORY,
    ),
    item_field("manufacturer_mid", "manufacturer.mid", MANDATORY),
    *VALUES,
    item_field("net_weight_kg", "net_weight_kg"),
    *OTHER_AGENCIES,
    GROSS_WEIGHT,
    *PRESCREEN,
)

US_MAIL: tuple[Element, ...] = (
    constant("entry_type", "13"),
    field_at("postal_item_id", "parcel.postal_item_id", S10),
    RECORD_ID,
    SUPERSEDES,
    FILER,
    field_at("carrier_account", "parcel.carrier_account"),
    *IOR,
    field_at("sender_name", "order.shipper.name", MANDATORY),
    address_line("sender_address", "shipper"),
    field_at("addressee_name", "order.consignee.name", MANDATORY),
    address_line("addressee_address", "consignee"),
    field_at("shipment_category", "order.shipment_category", MANDATORY),
    LINE,
    DESCRIPTION,
    *TARIFF,
    ORIGIN,
    *VALUES,
    *OTHER_AGENCIES,
    GROSS_WEIGHT,
    *PRESCREEN,
)

ICS2_ENS: tuple[Element, ...] = (
    Element(
        "house_bill",
        "parcel.postal_item_id, else parcel.tracking_number",
        lambda r, i: house_bill(r),
        MANDATORY,
    ),
    field_at("master_air_waybill", "parcel.master_bill", IF_CONSOLIDATED),
    field_at("transport_mode", "parcel.transport_mode"),
    *structured("seller", "seller"),
    field_at("seller_eori", "order.seller.eori"),
    field_at("ioss_number", "order.ioss_number"),
    *structured("buyer", "consignee"),
    field_at("buyer_eori", "order.consignee.eori"),
    either("total_gross_mass_kg", "parcel.measured_weight_kg", "order.declared_weight_kg", MANDATORY),
    LINE,
    DESCRIPTION,
    Element("hs_code_6", "order.items[].hts_code first 6 digits", lambda r, i: hs6(i.get("hts_code")), HS6),
    item_field("country_of_origin", "origin_country"),
    item_field("item_value", "unit_value"),
    field_at("currency", "order.currency"),
    field_at("correlation_id", "record_id", MANDATORY),
)

PACT: tuple[Element, ...] = (
    Element(
        "house_bill",
        "parcel.postal_item_id, else parcel.tracking_number",
        lambda r, i: house_bill(r),
        MANDATORY,
    ),
    field_at("master_bill", "parcel.master_bill", IF_CONSOLIDATED),
    field_at("shipper_name", "order.shipper.name", MANDATORY),
    address_line("shipper_address", "shipper"),
    field_at("consignee_name", "order.consignee.name", MANDATORY),
    address_line("consignee_address", "consignee"),
    Element("cargo_description", "order.items[].description (joined with '; ')", descriptions, MANDATORY),
    Element("piece_count", "1 per parcel record", lambda r, i: 1, MANDATORY),
    either("weight", "parcel.measured_weight_kg", "order.declared_weight_kg", MANDATORY),
    constant("weight_unit", "KG"),
    field_at("correlation_id", "record_id", MANDATORY),
)

RECORD_COLUMNS: tuple[Element, ...] = (
    *(
        field_at(name, name)
        for name in (
            "record_id",
            "kind",
            "site_id",
            "device_id",
            "seq",
            "created_at",
            "agent_version",
        )
    ),
    field_at("filer_code", "filer.code"),
    field_at("tracking_number", "parcel.tracking_number"),
    field_at("carrier", "parcel.carrier"),
    field_at("channel", "parcel.channel"),
    field_at("postal_item_id", "parcel.postal_item_id"),
    field_at("master_carton_id", "parcel.master_carton_id"),
    field_at("measured_weight_kg", "parcel.measured_weight_kg"),
    field_at("order_id", "order.order_id"),
    field_at("seller_name", "order.seller.name"),
    Element("items", "order.items (JSON)", lambda r, i: json_text(value_at(r, "order.items"))),
    field_at("verdict", "screening.verdict"),
    field_at("score", "screening.score"),
    Element("reasons", "screening.reasons[].code", reason_codes),
    field_at("supersedes_record_id", "supersedes.record_id"),
    field_at("supersedes_reason", "supersedes.reason"),
    field_at("outcome", "outcome.outcome"),
    field_at("outcome_refers_to", "outcome.refers_to"),
    field_at("key_id", "signature.key_id"),
    field_at("schema", "schema"),  # columns added with record schema v2 go last
)
