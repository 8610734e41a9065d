"""Bundled sample parcels for the demo: a realistic, reproducible mix with valid labels.

Every tracking number carries a correct check digit for its carrier, so the demo exercises the
real barcode decoder. The mix follows what customs reports seeing: mostly clean parcels, a steady
share of data-quality problems (vague descriptions, missing or malformed tariff codes, wrong
currency, weight that does not match), a few risky ones (fentanyl precursors, pill presses),
a burst of split shipments to one consignee, and one master carton hiding an unmanifested parcel.

Entry-grade data as filers need it since 2026 (docs/data-mapping.md): most orders carry an importer
of record, each line its manufacturer and, for Chinese goods, a Chapter 99 number; the carrier
account and transport follow the label (express carriers their own network, S10 items the postal
account, domestic USPS labels and the master carton a forwarder's consolidation under a master air
waybill); a few parcels go to the EU (with EORI and IOSS) and to Canada, in EUR and CAD. And a few
realistic gaps: an order without importer, a line without manufacturer, a toy without its CPSC
certificate, the press without a DEA 452 id, a domestic label bought on the postal account.
All names, addresses, accounts and numbers are invented; the Chapter 99 numbers are illustrative.
"""

from __future__ import annotations

import dataclasses
import random
from decimal import Decimal
from typing import Any

from prescreen.drivers.barcodes import decode, gs1_mod10

Order = dict[str, Any]

_CLEAN = (
    ("Wireless bluetooth earbuds with charging case", "8518300000", 19.99, 0.18, "CN"),
    ("Women's cotton t-shirt, knitted", "6109100012", 8.50, 0.20, "BD"),
    ("Stainless steel insulated water bottle 750 ml", "9617001000", 12.00, 0.45, "CN"),
    ("Silicone phone case for smartphone", "3926909990", 4.99, 0.06, "CN"),
    ("Children's wooden jigsaw puzzle 100 pieces", "9503006000", 9.00, 0.35, "VN"),
    ("Men's leather wallet", "4202310000", 15.00, 0.12, "IN"),
    ("LED desk lamp with USB charging port", "9405110000", 22.00, 0.90, "CN"),
    ("Running shoes, textile upper, rubber sole", "6404110000", 35.00, 0.80, "VN"),
    ("Paperback novel, English language", "4901990000", 7.50, 0.30, "GB"),
    ("Ceramic coffee mug 350 ml", "6912004400", 6.00, 0.40, "PT"),
)
# (description, hts, unit value, declared kg, origin, change to the order, measured/declared)
_PROBLEMS: tuple[tuple[str, str, float, float, str, dict[str, Any], float], ...] = (
    ("Gift", "9503000090", 10.0, 0.30, "CN", {}, 1.0),
    ("parts", "8708300000", 12.0, 0.50, "CN", {}, 1.0),
    ("Cotton t-shirt", "8518300000", 6.0, 0.20, "CN", {}, 1.0),
    ("USB-C charging cable 1 m", "", 3.0, 0.05, "CN", {}, 1.0),
    ("Bluetooth speaker", "85183", 18.0, 0.40, "CN", {}, 1.0),
    ("Yoga mat, 6 mm", "9506910030", 0.0, 1.00, "CN", {}, 1.0),
    ("Smartwatch band, silicone", "9113900000", 5.0, 0.05, "CN", {"currency": "RMB"}, 1.0),
    ("Gold-plated necklace", "7117190000", 1.00, 0.30, "CN", {}, 1.0),
    ("Kitchen scale, digital", "8423100000", 9.0, 0.50, "CN", {}, 1.6),
    ("Hair dryer 1200 W", "8516310000", 16.0, 0.60, "CN", {"consignee": None}, 1.0),
)
_RISKY: tuple[tuple[str, str, float, float, str, dict[str, Any], float], ...] = (
    ("4-Piperidone hydrochloride 99% powder", "2933399100", 25.0, 0.50, "CN", {}, 1.0),
    ("Chemical raw material CAS 79099-07-3", "3824999000", 30.0, 1.00, "CN", {}, 1.0),
    ("TDP-5 tablet press machine", "8479899000", 250.0, 4.50, "CN", {}, 1.0),
    ("Candy press mold with M30 die", "8480719000", 20.0, 0.80, "CN", {}, 1.0),
    ("Phone screen protector", "3919905060", 2.0, 0.20, "CN", {}, 7.0),
)
# The demo's hidden pattern (issue 17): one seller's sneakers, declared plausibly (the right code,
# a clear description, the weight they weigh) at a value per kg just above the chapter's floor, so
# no rule raises them; customs seizes them as counterfeits whenever it examines one. Nothing in the
# rules or the model names them: a model can learn them only from customs' outcomes, through the
# value-per-kg feature. One parcel in ten (slots 1 and 13 of every 20).
COUNTERFEIT_SELLER = ("Jinjiang Stride Sports Trading Co.", "9 Xiyuan Rd", "Jinjiang", "362200", "CN")
_COUNTERFEIT: tuple[Any, ...] = (
    "Men's running sneakers, textile upper, rubber sole",
    "6404110000",
    12.0,
    1.10,
    "CN",
    {},
    1.0,
)


def counterfeit(index: int) -> tuple[Any, ...]:
    """The pattern's parcel at ``index``: $9-15 for 0.95-1.27 kg (about 2-4 times the chapter's
    $4/kg floor, where honest sneakers declare 10 times it), varied so that no two look alike."""
    value, weight = 9.0 + index % 7, 0.95 + (index % 5) * 0.08
    return (_COUNTERFEIT[0], _COUNTERFEIT[1], value, round(weight, 2), *_COUNTERFEIT[4:])


_SELLERS = (
    ("Shenzhen Bright Star Trading Co.", "18 Keji Rd", "Shenzhen", "518057", "CN"),
    ("Hanoi Home Goods Ltd.", "22 Ly Thuong Kiet", "Hanoi", "100000", "VN"),
    ("Dhaka Knitwear Export", "7 Gulshan Ave", "Dhaka", "1212", "BD"),
)
# Manufacturers by country of origin (invented): name, street, city, postal code, country.
_MAKERS = {
    "CN": ("Shenzhen Sound Tech Co., Ltd.", "Room 1201, 88 Nanhai Ave", "Shenzhen", "518000", "CN"),
    "BD": ("Dhaka Knitwear Export", "Plot 7, Road 12, Gulshan Ave", "Dhaka", "1212", "BD"),
    "VN": ("Hanoi Wooden Toys J.S.C.", "45 Lang Ha St", "Hanoi", "100000", "VN"),
    "IN": ("Kanpur Leather Works", "112 Jajmau Rd", "Kanpur", "208010", "IN"),
    "GB": ("The Paperback Press of London Ltd", "221 Borough High St", "London", "SE1 1JA", "GB"),
    "PT": ("Ceramica de Alcobaca S.A.", "Rua das Olarias 34", "Alcobaca", "2460-027", "PT"),
}
_IMPORTER = {
    "name": "Demo Marketplace Imports LLC",
    "id": "98-7654321",
    "id_type": "ein",
    "address": {
        "line1": "500 Commerce Dr",
        "city": "Wilmington",
        "region": "DE",
        "postal_code": "19801",
        "country": "US",
    },
}
# Carrier accounts and how their parcels cross (the demo's [entry] account_channels names the postal one).
POSTAL_ACCOUNT = "CNPOST-EPACKET"
FORWARDER_ACCOUNT = "FWD-AIR-01"
ACCOUNT_CHANNELS = f"{POSTAL_ACCOUNT}=postal"
_TRANSPORT = {
    "ups": {"carrier_account": "UPS-CN-4471", "transport_mode": "air", "port_of_entry": "4196"},
    "fedex": {"carrier_account": "FDX-CN-2210", "transport_mode": "air", "port_of_entry": "4701"},
    "dhl": {"carrier_account": "DHL-CN-8830", "transport_mode": "air", "port_of_entry": "4701"},
    "upu": {"carrier_account": POSTAL_ACCOUNT, "transport_mode": "mail"},
    # Domestic USPS labels, injected after the border: the forwarder's consolidation carries them.
    "usps": {"carrier_account": FORWARDER_ACCOUNT, "transport_mode": "air", "port_of_entry": "2720"},
}
ARRIVAL_DATE = "2026-11-23"
# Illustrative USD rates for the demo's EUR and CAD orders (a station loads the certified table).
DEMO_RATES = {
    "date": "2026-11-20",
    "source": "demo: illustrative rates, not the FRBNY certified rate",
    "usd_per_unit": {"EUR": 1.08, "CAD": 0.72, "CNY": 0.14},
}
_ABROAD = {
    6: ({"line1": "Torstrasse 1", "city": "Berlin", "postal_code": "10119", "country": "DE"}, "EUR"),
    12: (
        {
            "line1": "200 Queen St W",
            "city": "Toronto",
            "region": "ON",
            "postal_code": "M5H 2N2",
            "country": "CA",
        },
        "CAD",
    ),
}


def master_bill(serial: int) -> str:
    """A master air waybill number: airline prefix, 7 digits and their remainder mod 7 (IATA)."""
    body = f"{serial % 10**7:07d}"
    return f"176-{body}{int(body) % 7}"


_FIRST = ("Alex", "Maria", "Sam", "Priya", "Chen", "Lucia", "Omar", "Grace", "Ivan", "Noor")
_LAST = ("Garcia", "Nguyen", "Patel", "Kim", "Johnson", "Rossi", "Ali", "Brown", "Lopez", "Ito")
_CITIES = (
    ("Austin", "TX", "78701"),
    ("Denver", "CO", "80202"),
    ("Miami", "FL", "33101"),
    ("Seattle", "WA", "98101"),
    ("Chicago", "IL", "60601"),
)


@dataclasses.dataclass(frozen=True)
class Step:
    """One thing the simulated operator does: place a parcel (or not) and scan a label."""

    kind: str  # "parcel", "carton_open", "carton_close"
    payload: str
    aim: str
    weight_kg: Decimal | None
    label: str  # what the sample is meant to show


def _with_check(prefix: str, suffix: str = "") -> str:
    for digit in "0123456789":
        number = prefix + digit + suffix
        if decode(number).check_ok:
            return number
    raise AssertionError(f"no check digit makes {prefix}?{suffix} valid")  # pragma: no cover


class _Labels:
    """Valid tracking numbers of every carrier, drawn from one seeded generator."""

    def __init__(self, rng: random.Random) -> None:
        self.rng = rng

    def digits(self, count: int) -> str:
        return "".join(self.rng.choice("0123456789") for _ in range(count))

    def next(self, index: int) -> tuple[str, str, str]:
        """(tracking number, scanned payload, AIM id) rotating through carriers."""
        kind = index % 5
        if kind == 0:
            number = _with_check(
                "1Z"
                + "".join(self.rng.choice("0123456789ABCDEFGHJKLMNPRSTUVWXYZ") for _ in range(6))
                + "03"
                + self.digits(7)
            )
            return number, number, "]C0"
        if kind == 1:
            number = _with_check("9400" + self.digits(17))
            zip_code = self.rng.choice(_CITIES)[2]
            return number, f"420{zip_code}\x1d{number}", "]C1"
        if kind == 2:
            number = _with_check(self.digits(11))
            return number, number, "]C0"
        if kind == 3:
            body = str(self.rng.randint(10**8, 10**9 - 1))
            number = body + str(int(body) % 7)
            return number, number, "]C0"
        number = _with_check(f"{self.rng.choice(('RB', 'CP', 'LX'))}{self.digits(8)}", "CN")
        return number, number, "]C0"


def _party(name: str, line1: str, city: str, postal: str, country: str) -> dict[str, Any]:
    return {
        "name": name,
        "address": {"line1": line1, "city": city, "postal_code": postal, "country": country},
    }


def _line_entry(index: int, description: str, origin: str) -> dict[str, Any]:
    """A line's manufacturer, Chapter 99 number and other-agency data, with the demo's gaps."""
    line: dict[str, Any] = {}
    maker = _MAKERS.get(origin)
    if maker is not None and index % 23 != 4:  # now and then a seller leaves the maker out
        line["manufacturer"] = _party(*maker)
    if origin == "CN":
        line["chapter99"] = ["9903.88.15"]  # Section 301 (illustrative)
    if "Children" in description:
        line["pga_flags"] = ["CPSC"]
        if index % 3:  # one in three toys ships without its certificate reference
            line["cpsc_certificate"] = f"CPC-HWT-2026-{index:04d}"
    if "tablet press" in description.lower():
        line["pga_flags"] = ["DEA"]  # declared, but the DEA 452 transaction id is missing
    return line


def _entry(order: Order, tracking: str, index: int, consolidated: bool) -> None:
    """The order's importer, carrier account and transport; EU and Canada orders in their money."""
    carrier = decode(tracking).carrier
    if not consolidated:
        order.update(_TRANSPORT.get(carrier, {}))
        if carrier != "upu":
            order["arrival_date"] = ARRIVAL_DATE
        if carrier == "usps":
            # Domestic labels go in the forwarder's consolidation; once a label was bought on the
            # postal account by mistake (no S10 item id).
            order["master_bill"] = master_bill(4_000_000 + index)
            if index % 50 == 11:
                order.update(carrier_account=POSTAL_ACCOUNT, transport_mode="mail")
                del order["master_bill"]
    if index % 13 != 8:  # now and then an order comes without its importer of record
        order["importer_of_record"] = _IMPORTER
    abroad = _ABROAD.get(index % 20)
    if abroad is not None and order.get("consignee"):
        address, currency = abroad
        order["consignee"] = {**order["consignee"], "address": dict(address)}
        order["currency"] = currency
        order["seller"] = {**order["seller"], "eori": "NL823456789"}
        if address["country"] != "CA":
            order["ioss_number"] = "IM5280001234"


def _order(
    tracking: str,
    index: int,
    item: tuple[Any, ...],
    rng: random.Random,
    consignee: dict[str, Any] | None,
    *,
    consolidated: bool = False,
) -> Order:
    description, hts, value, weight, origin = item[:5]
    seller = COUNTERFEIT_SELLER if item[0] == _COUNTERFEIT[0] else _SELLERS[index % len(_SELLERS)]
    order: Order = {
        "tracking_number": tracking,
        "order_id": f"SO-{100000 + index}",
        "order_date": "2026-11-20",
        "shipment_category": "sale",
        "currency": "USD",
        "total_declared_value": value,
        "declared_weight_kg": weight,
        "marketplace": "demo-marketplace",
        "seller": _party(*seller),
        "shipper": _party(*seller),
        "consignee": consignee,
        "items": [
            {
                "description": description,
                "hts_code": hts,
                "quantity": 1,
                "unit_value": value,
                "origin_country": origin,
                **_line_entry(index, description, origin),
            }
        ],
    }
    _entry(order, tracking, index, consolidated)
    if len(item) > 5:
        order.update(item[5])
    return order


def _consignee(rng: random.Random) -> dict[str, Any]:
    city, state, postal = rng.choice(_CITIES)
    name = f"{rng.choice(_FIRST)} {rng.choice(_LAST)}"
    address = _party(
        name, f"{rng.randint(10, 9999)} {rng.choice(('Oak', 'Pine', 'Main'))} St", city, postal, "US"
    )
    address["address"]["region"] = state
    return address


def generate(parcels: int, *, seed: int = 7) -> tuple[list[Order], list[Step]]:
    """Orders (for the export file) and operator steps yielding exactly ``parcels`` verdicts."""
    rng = random.Random(seed)
    labels = _Labels(rng)
    orders: list[Order] = []
    steps: list[Step] = []
    carton_at = parcels // 2 if parcels >= 10 else None
    split_consignee = _consignee(rng)
    index = 0
    while len([s for s in steps if s.kind != "carton_open"]) < parcels:
        verdicts = len([s for s in steps if s.kind != "carton_open"])
        if carton_at is not None and verdicts >= carton_at and parcels - verdicts >= 5:
            carton_at = None
            index = _master_carton(rng, labels, index, orders, steps)
            continue
        slot = index % 20
        in_split = 40 <= index % 100 < 44
        if slot in (3, 7, 11, 15, 19):
            item: tuple[Any, ...] = _PROBLEMS[(index // 4) % len(_PROBLEMS)]
            label = "data quality"
        elif slot in (9, 17) or (slot == 5 and index % 40 == 5):
            item = _RISKY[(index // 9) % len(_RISKY)]
            label = "risk"
        elif slot in (1, 13) and not in_split:
            item, label = counterfeit(index), "counterfeit"
        else:
            item = _CLEAN[index % len(_CLEAN)]
            label = "clean"
        tracking, payload, aim = labels.next(index)
        consignee = split_consignee if in_split else _consignee(rng)
        order = _order(tracking, index, item, rng, consignee)
        orders.append(order)
        ratio = item[6] if len(item) > 6 else 1.0
        measured = Decimal(str(round(item[3] * ratio * rng.uniform(0.98, 1.03) + 0.02, 3)))
        steps.append(Step("parcel", payload, aim, measured, "split shipment" if in_split else label))
        index += 1
    return orders, steps


def _master_carton(
    rng: random.Random, labels: _Labels, index: int, orders: list[Order], steps: list[Step]
) -> int:
    serial = f"1{'0614141'}{labels.digits(9)}"
    sscc = serial + str(gs1_mod10(serial))
    manifest: list[str] = []
    inner: list[tuple[str, str, str, Decimal]] = []
    for position in range(4):
        tracking, payload, aim = labels.next(index)
        item = _CLEAN[(index + position) % len(_CLEAN)]
        weight = Decimal(str(round(item[3] + 0.02, 3)))
        if position < 3:  # the fourth parcel is on no manifest and has no order: unmanifested
            orders.append(_order(tracking, index, item, rng, _consignee(rng), consolidated=True))
            manifest.append(tracking)
        inner.append((tracking, payload, aim, weight))
        index += 1
    tare = 0.4
    orders.append(
        {
            "master_carton": {"sscc": sscc, "manifest": manifest, "tare_kg": tare},
            # The consolidation the carton flies in: every parcel inside shares its master bill.
            "carrier_account": FORWARDER_ACCOUNT,
            "master_bill": master_bill(7_000_000 + index),
            "transport_mode": "air",
            "port_of_entry": "2720",
            "arrival_date": ARRIVAL_DATE,
        }
    )
    steps.append(Step("carton_open", "00" + sscc, "]C1", None, "master carton"))
    for _, payload, aim, weight in inner:
        steps.append(Step("parcel", payload, aim, weight, "inside master carton"))
    total = sum((w for *_, w in inner), Decimal(0)) + Decimal(str(tare))
    steps.append(Step("carton_close", "00" + sscc, "]C1", total, "master carton"))
    return index
