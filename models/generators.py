"""Four synthetic parcel generators that disagree on purpose: vocabulary, prices, weights, noise.

A model trained on one generator learns that generator; a model that holds up when one whole
generator is left out of training has learned something about risk. So the card reports
leave-one-generator-out results, and these four differ in everything but the risk itself:

* ``shop``: English shop titles with filler words (the original generator);
* ``nomenclature``: legitimate goods described in the HS nomenclature's own official texts, with
  chemists' IUPAC names for the risky ones;
* ``marketplace``: long keyword-stuffed listing titles, kitchenware, books, cables and food-grade
  chemicals among the clean goods, misspelt precursor names, other price levels;
* ``postal``: terse CN22 declarations, low values, weights rounded to 0.1 kg and a noisier scale.

Label 1 = customs would want the parcel held or reviewed. Kinds (column ``kind``): clean,
precursor, press, chemical_cover, vague, weight_mismatch, undervalued, tariff_mismatch,
invalid_code. No real personal or trade data; tariff codes of clean goods are real HS subheadings.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from typing import Any

from prescreen.models import lexicon

Row = dict[str, Any]
Good = tuple[str, str, float, float, float, float]  # description, hts, value min/max, kg min/max
Parcel = tuple[str, str, float, float, float]  # description, hts, value, declared kg, measured kg

_SHOP: tuple[Good, ...] = (
    ("wireless earbuds", "8518300000", 15, 60, 0.1, 0.3),
    ("cotton t-shirt", "6109100012", 5, 25, 0.1, 0.3),
    ("running shoes", "6404110000", 20, 90, 0.5, 1.2),
    ("phone case silicone", "3926909990", 2, 15, 0.03, 0.1),
    ("wooden puzzle", "9503000090", 5, 30, 0.2, 0.6),
    ("leather wallet", "4202310000", 8, 60, 0.1, 0.2),
    ("led desk lamp", "9405110000", 10, 50, 0.5, 1.5),
    ("ceramic mug", "6912004400", 4, 20, 0.3, 0.6),
    ("paperback book", "4901990000", 5, 25, 0.2, 0.8),
    ("usb charging cable", "8544429000", 2, 15, 0.03, 0.1),
    ("yoga mat", "9506910030", 10, 40, 0.8, 1.5),
    ("stainless water bottle", "9617001000", 8, 35, 0.3, 0.6),
    ("bluetooth speaker", "8518220000", 15, 80, 0.3, 1.0),
    ("hair dryer", "8516310000", 15, 60, 0.5, 1.0),
    ("smartwatch band", "9113900000", 3, 20, 0.02, 0.08),
    ("kitchen knife set", "8211910000", 15, 70, 0.5, 1.5),
)
_SHOP_FILLER = (
    "women's",
    "men's",
    "kids",
    "black",
    "white",
    "red",
    "blue",
    "large",
    "small",
    "set",
    "pack",
    "new",
    "portable",
    "premium",
    "mini",
    "2",
    "3",
    "pcs",
    "for",
    "with",
    "home",
    "travel",
)
_MARKETPLACE: tuple[Good, ...] = (
    (
        "Nonstick Frying Pan Skillet 28cm Induction Compatible Kitchen Cookware",
        "7323990000",
        12,
        45,
        0.8,
        1.6,
    ),
    ("Silicone Spatula Set Heat Resistant Kitchen Utensils Cooking Baking", "3924100000", 4, 18, 0.15, 0.4),
    ("Ceramic Dinner Plates Set of 4 Dishwasher Safe Tableware", "6912002000", 15, 50, 1.5, 3.0),
    ("Stainless Steel Cutlery Set 24 Pieces Forks Spoons Knives", "8215200000", 10, 40, 0.8, 1.8),
    ("Glass Food Storage Containers with Lids Meal Prep", "7013490000", 12, 35, 1.0, 2.5),
    ("USB C to USB C Cable 2m Fast Charging Braided Cord", "8544429000", 3, 15, 0.04, 0.12),
    ("65W GaN Fast Charger Wall Adapter Dual Port", "8504409550", 12, 45, 0.08, 0.2),
    ("Wireless Charger Pad Qi Compatible Phone Charging Station", "8504409550", 8, 30, 0.1, 0.3),
    ("Portable Power Bank 10000mAh External Battery", "8507600020", 10, 35, 0.18, 0.3),
    ("Kids Picture Book Bedtime Stories Hardcover Illustrated", "4901990093", 6, 20, 0.3, 0.8),
    ("Science Fiction Novel Paperback Edition", "4901990093", 7, 22, 0.25, 0.6),
    ("Building Blocks Toy Set 500 Pieces Compatible Bricks", "9503000071", 15, 60, 0.5, 1.5),
    ("Plush Teddy Bear Stuffed Animal Toy 40cm", "9503000071", 8, 30, 0.2, 0.6),
    ("Remote Control Car Toy Off Road Truck for Kids", "9503000071", 20, 70, 0.6, 1.5),
    ("Citric Acid Food Grade Powder 1kg Baking Cleaning", "2918140000", 6, 18, 1.0, 1.2),
    ("Baking Soda Sodium Bicarbonate Food Grade 1kg", "2836300000", 4, 12, 1.0, 1.2),
    ("Vegetable Glycerin USP Food Grade 500ml", "2905450000", 6, 20, 0.55, 0.7),
    ("Vitamin C Powder Ascorbic Acid Pure 500g", "2936270000", 10, 30, 0.5, 0.6),
    ("Mens Slim Fit Casual Button Down Shirt Long Sleeve Cotton", "6205200027", 12, 35, 0.2, 0.4),
    ("Womens Summer Floral Maxi Dress Casual Beach", "6204440000", 12, 40, 0.2, 0.45),
    ("Unisex Hoodie Pullover Sweatshirt Fleece", "6110202079", 15, 45, 0.4, 0.8),
    ("Waterproof Hiking Boots Men Outdoor Trekking Shoes", "6403919090", 35, 90, 1.0, 1.8),
    ("Sterling Silver Pendant Necklace Heart Womens Jewelry", "7113110000", 15, 80, 0.02, 0.1),
    ("Moisturizing Face Cream Hyaluronic Acid Night Cream 50ml", "3304990000", 8, 40, 0.08, 0.2),
    ("Matte Liquid Lipstick Long Lasting 6 Colors", "3304100000", 5, 25, 0.05, 0.15),
    ("Acrylic Paint Set 24 Colors Artist Painting Kit", "3213100000", 10, 35, 0.5, 1.2),
    ("LED Strip Lights 10m RGB Color Changing Bedroom", "9405490000", 10, 35, 0.3, 0.6),
    ("Ergonomic Office Chair Cushion Memory Foam Seat Pad", "9404900000", 15, 45, 0.6, 1.2),
    ("Dog Chew Toy Durable Rubber Ball for Pets", "4016990000", 5, 15, 0.1, 0.3),
    ("Garden Pruning Shears Bypass Secateurs", "8201500000", 8, 30, 0.2, 0.4),
    ("Cordless Drill Driver 20V with Battery and Charger", "8467210000", 35, 120, 1.5, 3.0),
    ("Camping Tent 2 Person Waterproof Lightweight Backpacking", "6306220000", 40, 120, 1.8, 3.5),
)
_POSTAL: tuple[Good, ...] = (
    ("Mobile phone cover", "3926909990", 1, 8, 0.03, 0.1),
    ("Ladies blouse", "6206400000", 4, 20, 0.1, 0.3),
    ("Plastic toy car", "9503000071", 2, 12, 0.1, 0.4),
    ("Children book", "4901990093", 3, 15, 0.2, 0.6),
    ("Wrist watch", "9102110000", 8, 60, 0.05, 0.2),
    ("Hair clips", "9615190000", 1, 6, 0.02, 0.1),
    ("Earphones", "8518300000", 3, 25, 0.03, 0.15),
    ("Phone charger", "8504409550", 3, 15, 0.05, 0.15),
    ("Socks", "6115950000", 2, 10, 0.05, 0.25),
    ("Knitted scarf", "6117100000", 4, 20, 0.1, 0.3),
    ("Sunglasses", "9004100000", 3, 25, 0.03, 0.1),
    ("Ballpoint pens", "9608100000", 1, 8, 0.02, 0.15),
    ("Tea leaves", "0902300000", 4, 25, 0.1, 0.5),
    ("Lip balm", "3304100000", 1, 8, 0.01, 0.05),
    ("Cotton tote bag", "4202921500", 2, 12, 0.05, 0.2),
    ("Keychain", "7117190000", 1, 6, 0.01, 0.05),
    ("Fishing lures", "9507900000", 3, 20, 0.03, 0.2),
    ("Postcards", "4909000000", 1, 6, 0.01, 0.1),
    ("Embroidery thread", "5204200000", 2, 10, 0.05, 0.2),
    ("Wooden chopsticks", "4419900000", 1, 8, 0.03, 0.2),
    ("Baby romper cotton", "6111205000", 4, 18, 0.08, 0.25),
    ("Computer mouse", "8471607000", 4, 20, 0.06, 0.15),
    ("USB flash drive", "8523510000", 4, 20, 0.01, 0.05),
    ("Face mask sheet", "3304990000", 1, 10, 0.02, 0.15),
)
# Chapters of ordinary consumer goods whose official texts the nomenclature generator uses.
_CONSUMER_CHAPTERS = (
    "33",
    "39",
    "42",
    "48",
    "49",
    "61",
    "62",
    "63",
    "64",
    "65",
    "66",
    "67",
    "69",
    "70",
    "71",
    "73",
    "82",
    "83",
    "85",
    "90",
    "91",
    "92",
    "94",
    "95",
    "96",
)
_PRECURSOR_WORDS = {
    "shop": (
        "4-piperidone",
        "piperidone hcl",
        "npp powder",
        "anpp",
        "1-boc-4-piperidone",
        "propionyl chloride",
        "fentanil",
        "4-anilinopiperidine",
        "norfentanyl",
        "xylazine",
    ),
    "nomenclature": (
        "tert-butyl 4-oxopiperidine-1-carboxylate",
        "n-phenethyl-4-piperidinone",
        "n-phenylpiperidin-4-amine",
        "1-phenylpropan-2-one",
        "benzeneacetic acid",
        "methyl 3-oxo-2-phenylbutanoate",
        "propanoyl chloride",
        "piperidin-4-one",
    ),
    "marketplace": (
        "4-piperidon powder 99% high purity",
        "n-phenethyl-4-piperidinon",
        "bmk glycidate powder",
        "pmk oil fast delivery",
        "pseudoephedrin hcl",
        "isotonitazen research",
        "phenylaceton liquid",
        "boc-4-piperidon",
    ),
    "postal": (
        "chemical sample cas 79099-07-3",
        "cas 110-89-4",
        "sample cas 103-79-7",
        "powder cas 39742-60-4",
        "research cas 7361-61-7",
        "cas 125541-22-2",
    ),
}
_PRESS_WORDS = {
    "shop": (
        "tablet press",
        "pill press",
        "tdp-5",
        "tdp 5 machine",
        "punch die m30",
        "candy press",
        "pill maker",
    ),
    "nomenclature": (
        "rotary tablet compression machine",
        "single punch tableting machine",
        "capsule filling machine semi-automatic",
        "tablet die set",
    ),
    "marketplace": (
        "TDP-0 Pill Press Machine Stainless Desktop",
        "M30 Punch Die Set Custom Logo",
        "ZP9 Rotary Tablet Press",
        "Candy Tablet Machine Sugar Press Mold",
    ),
    "postal": ("Tablet machine", "Pill stamp", "Encapsulator"),
}
_CHEMICAL_COVERS = {
    "shop": ("food additive", "cosmetic raw material", "industrial powder", "research chemical"),
    "nomenclature": (
        "Food preparations",
        "Essential oils",
        "Prepared glues",
        "Soap; organic surface-active products",
    ),
    "marketplace": (
        "Plant Growth Enhancer Powder Garden",
        "Pigment Powder for Resin Art",
        "Pool Cleaning Powder",
    ),
    "postal": ("Dye", "White powder", "Cleaning agent", "Bath salt"),
}
_CHEMICAL_CODES = ("2933399100", "3824999000", "2942000000", "2924299550", "2921490000", "3302909000")
_PRESS_CODES = ("8479899000", "8479909000", "8422300000", "8207300000", "8480719000")
_VAGUE = {
    "shop": ("gift", "parts", "sample", "accessories", "goods", "stuff", "items", "merchandise", "misc"),
    "nomenclature": ("Articles", "Products", "Commodity", "Consumer goods", "Materials"),
    "marketplace": (
        "Household goods",
        "Electronics",
        "Clothing",
        "General merchandise",
        "Tools",
        "Cosmetics",
    ),
    "postal": ("Gift", "Gifts", "Sample", "Toys", "Personal effects", "Things", "Various"),
}
_ORIGINS = ("CN", "VN", "IN", "BD", "TR", "MX", "TH", "PK", "KR", "ID")


class Generator:
    """One generator: its goods, its wording and its habits of price, weight and noise."""

    def __init__(
        self,
        name: str,
        goods: Callable[[random.Random], Good],
        *,
        positive_share: float,
        scale_noise: float,
        round_declared: float = 0.001,
        label_noise: float = 0.02,
    ) -> None:
        self.name = name
        self._goods = goods
        self.positive_share = positive_share
        self.scale_noise = scale_noise
        self.round_declared = round_declared
        self.label_noise = label_noise

    def row(self, rng: random.Random) -> Row:
        """One parcel with its label and kind."""
        description, hts, vmin, vmax, wmin, wmax = self._goods(rng)
        if self.name == "shop":
            extra = rng.sample(_SHOP_FILLER, rng.randint(0, 3))
            description = " ".join([*extra[:1], description, *extra[1:]])
        declared = max(round(rng.uniform(wmin, wmax) / self.round_declared) * self.round_declared, 0.01)
        value = round(rng.uniform(vmin, vmax), 2)
        measured = declared * rng.uniform(1 - self.scale_noise, 1 + self.scale_noise) + rng.uniform(0, 0.03)
        kind = "clean"
        if rng.random() < self.positive_share:
            kind = rng.choice(
                (
                    "precursor",
                    "press",
                    "chemical_cover",
                    "vague",
                    "weight_mismatch",
                    "undervalued",
                    "tariff_mismatch",
                    "invalid_code",
                )
            )
            description, hts, value, declared, measured = self._risky(
                rng, kind, (description, hts, value, declared, measured)
            )
        label = 0 if kind == "clean" else 1
        if rng.random() < self.label_noise:
            label = 1 - label
        return {
            "description": description,
            "hts_code": hts,
            "declared_value_usd": value,
            "declared_weight_kg": round(declared, 3),
            "measured_weight_kg": round(measured, 3),
            "origin_country": rng.choice(_ORIGINS),
            "quantity": rng.choice((1, 1, 1, 2, 3)),
            "label": label,
            "kind": kind,
            "generator": self.name,
        }

    def _risky(self, rng: random.Random, kind: str, parcel: Parcel) -> Parcel:
        """``parcel`` (description, hts, value, declared, measured) turned into one of ``kind``."""
        description, hts, value, declared, measured = parcel
        if kind == "precursor":
            return (
                rng.choice(_PRECURSOR_WORDS[self.name]),
                rng.choice(_CHEMICAL_CODES),
                round(rng.uniform(15, 120), 2),
                declared,
                measured,
            )
        if kind == "press":
            weight = round(rng.uniform(0.3, 8.0), 2)
            return (
                rng.choice(_PRESS_WORDS[self.name]),
                rng.choice(_PRESS_CODES),
                round(rng.uniform(20, 600), 2),
                weight,
                weight * rng.uniform(0.97, 1.05),
            )
        if kind == "chemical_cover":
            return (
                rng.choice(_CHEMICAL_COVERS[self.name]),
                rng.choice(_CHEMICAL_CODES),
                round(rng.uniform(5, 60), 2),
                declared,
                measured,
            )
        if kind == "vague":
            return rng.choice(_VAGUE[self.name]), hts, round(rng.uniform(0.5, 15), 2), declared, measured
        if kind == "weight_mismatch":
            return description, hts, value, declared, declared * rng.uniform(1.8, 6.0)
        if kind == "undervalued":
            weight = round(rng.uniform(1.5, 5.0), 2)
            floor = lexicon.load().floor(hts[:2])
            return description, hts, round(weight * floor * rng.uniform(0.02, 0.3), 2), weight, weight
        if kind == "tariff_mismatch":
            other = rng.choice(self._pool())
            while other[1][:2] == hts[:2]:
                other = rng.choice(self._pool())
            return description, other[1], value, declared, measured
        return description, _invalid_code(rng), value, declared, measured

    def _pool(self) -> tuple[Good, ...]:
        return {"shop": _SHOP, "marketplace": _MARKETPLACE, "postal": _POSTAL}.get(self.name, _SHOP + _POSTAL)


def _invalid_code(rng: random.Random) -> str:
    nomenclature = lexicon.load().nomenclature
    while True:
        code = f"{rng.randint(1, 97):02d}{rng.randint(0, 9999):04d}{rng.randint(0, 9999):04d}"
        if code[:2] not in ("77",) and not nomenclature.exists(code) and code[:2] not in ("98", "99"):
            return code


def _nomenclature_good(rng: random.Random) -> Good:
    codes = _nomenclature_codes()
    code = rng.choice(codes)
    text = lexicon.load().nomenclature.texts[code]
    kg = rng.choice(((0.05, 0.4), (0.2, 1.5), (0.5, 3.0)))
    per_kg_low = max(lexicon.load().floor(code[:2]) * 2, 4)
    low = round(per_kg_low * kg[1], 2)
    return text, code + f"{rng.randint(0, 9999):04d}", low, low * 6, kg[0], kg[1]


def _nomenclature_codes() -> list[str]:
    subheadings = lexicon.load().nomenclature.subheadings
    return sorted(c for c in subheadings if c[:2] in _CONSUMER_CHAPTERS)


GENERATORS: dict[str, Generator] = {
    "shop": Generator("shop", lambda rng: rng.choice(_SHOP), positive_share=0.18, scale_noise=0.04),
    "nomenclature": Generator("nomenclature", _nomenclature_good, positive_share=0.12, scale_noise=0.03),
    "marketplace": Generator(
        "marketplace", lambda rng: rng.choice(_MARKETPLACE), positive_share=0.10, scale_noise=0.05
    ),
    "postal": Generator(
        "postal", lambda rng: rng.choice(_POSTAL), positive_share=0.14, scale_noise=0.08, round_declared=0.1
    ),
}


def rows(name: str, count: int, seed: int) -> list[Row]:
    """``count`` parcels from generator ``name`` (seeded: the same call gives the same rows)."""
    rng = random.Random(f"{name}-{seed}")
    generator = GENERATORS[name]
    return [generator.row(rng) for _ in range(count)]
