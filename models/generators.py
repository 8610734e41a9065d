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
from prescreen.models.generator_vocab import (
    CHEMICAL_CODES,
    CHEMICAL_COVERS,
    CONSUMER_CHAPTERS,
    MARKETPLACE,
    ORIGINS,
    POSTAL,
    PRECURSOR_WORDS,
    PRESS_CODES,
    PRESS_WORDS,
    SHOP,
    SHOP_FILLER,
    VAGUE,
    Good,
)

Row = dict[str, Any]
Parcel = tuple[str, str, float, float, float]  # description, hts, value, declared kg, measured kg


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
            extra = rng.sample(SHOP_FILLER, rng.randint(0, 3))
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
            "origin_country": rng.choice(ORIGINS),
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
                rng.choice(PRECURSOR_WORDS[self.name]),
                rng.choice(CHEMICAL_CODES),
                round(rng.uniform(15, 120), 2),
                declared,
                measured,
            )
        if kind == "press":
            weight = round(rng.uniform(0.3, 8.0), 2)
            return (
                rng.choice(PRESS_WORDS[self.name]),
                rng.choice(PRESS_CODES),
                round(rng.uniform(20, 600), 2),
                weight,
                weight * rng.uniform(0.97, 1.05),
            )
        if kind == "chemical_cover":
            return (
                rng.choice(CHEMICAL_COVERS[self.name]),
                rng.choice(CHEMICAL_CODES),
                round(rng.uniform(5, 60), 2),
                declared,
                measured,
            )
        if kind == "vague":
            return rng.choice(VAGUE[self.name]), hts, round(rng.uniform(0.5, 15), 2), declared, measured
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
        return {"shop": SHOP, "marketplace": MARKETPLACE, "postal": POSTAL}.get(self.name, SHOP + POSTAL)


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
    return sorted(c for c in subheadings if c[:2] in CONSUMER_CHAPTERS)


GENERATORS: dict[str, Generator] = {
    "shop": Generator("shop", lambda rng: rng.choice(SHOP), positive_share=0.18, scale_noise=0.04),
    "nomenclature": Generator("nomenclature", _nomenclature_good, positive_share=0.12, scale_noise=0.03),
    "marketplace": Generator(
        "marketplace", lambda rng: rng.choice(MARKETPLACE), positive_share=0.10, scale_noise=0.05
    ),
    "postal": Generator(
        "postal", lambda rng: rng.choice(POSTAL), positive_share=0.14, scale_noise=0.08, round_declared=0.1
    ),
}


def rows(name: str, count: int, seed: int) -> list[Row]:
    """``count`` parcels from generator ``name`` (seeded: the same call gives the same rows)."""
    rng = random.Random(f"{name}-{seed}")
    generator = GENERATORS[name]
    return [generator.row(rng) for _ in range(count)]
