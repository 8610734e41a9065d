"""What a parcel's data *means*, measured once: the facts both the rules and the model judge by.

A signal carries meaning whatever the shop's vocabulary: does the tariff code exist, does the
description fit it (against the nomenclature's own texts), does it say anything at all, does it
name a listed precursor or press (allowing typos), is the tariff line itself one where precursors
or presses are declared, what is the value in USD and per kg against what such goods cost, how
far is the scale from the declaration. The rules turn signals into findings with reasons; the
model (``features.py``) turns the same signals into numbers. Nothing here learns words.
"""

from __future__ import annotations

import dataclasses
import math
import re
from collections.abc import Mapping
from typing import Any

from prescreen.models.lexicon import Lexicon
from prescreen.models.nomenclature import ChapterFit, HtsTable
from prescreen.models.text import stems, trigrams

INVALID_CHAPTERS = ("00", "77", "98", "99")
# A chapter 28/29/38 line whose description names a rare word of the line's own texts is explained
# ('Citric acid' on 2918.14); below this own-fit it is not ('Food additive' on 2933.39).
CHEMICAL_OWN_FIT = 0.55  # not goods chapters (98/99: US special provisions)
# Compiled once: these run on every order line (re's own cache costs a lookup per call).
_CODE_PUNCTUATION = re.compile(r"[.\s-]")
_LETTER = re.compile(r"[a-z]")
_ONE_CHARACTER = re.compile(r"(.)\1{2,}")


def number(value: Any) -> float | None:
    """A finite float, or None for anything else (bools, text, NaN)."""
    if isinstance(value, bool):
        return None
    try:
        result = float(value)
    except (TypeError, ValueError, OverflowError):  # OverflowError: an int too large for a float
        return None
    return result if math.isfinite(result) else None


@dataclasses.dataclass(frozen=True)
class ItemSignals:
    """Signals of one order line."""

    description: str
    hts: str  # digits only
    code_state: str  # missing | malformed | chapter_invalid | unknown | valid
    hts10_unknown: bool  # a 10-digit code absent from the loaded US HTS table
    fit: ChapterFit
    own_fit: float
    generic: float  # share of the description's content words that are generic (1.0 = says nothing)
    precursors: dict[str, float]  # listed substance -> similarity (1.0 exact, CAS numbers included)
    presses: dict[str, float]  # press term -> similarity
    precursor_line: str  # what the tariff line itself names ('' if not a precursor line)
    press_line: str
    chemical_chapter: bool
    value_usd: float | None

    @property
    def chapter(self) -> str:
        """The declared HS chapter ('' without a usable code)."""
        return self.hts[:2] if len(self.hts) >= 2 else ""

    @property
    def chemical_unexplained(self) -> bool:
        """A chapter 28/29/38 chemical that the description does not name (rules and model alike)."""
        return self.chemical_chapter and self.own_fit < CHEMICAL_OWN_FIT

    @property
    def precursor(self) -> float:
        """The best precursor similarity."""
        return max(self.precursors.values(), default=0.0)

    @property
    def press(self) -> float:
        """The best press-term similarity."""
        return max(self.presses.values(), default=0.0)


@dataclasses.dataclass(frozen=True)
class ParcelSignals:
    """Signals of one parcel: its lines and the parcel-level figures."""

    items: tuple[ItemSignals, ...]
    value_usd: float | None  # None when the currency has no known rate
    declared_kg: float | None
    measured_kg: float | None
    quantity: float
    shipment_category: str
    floor_usd_per_kg: float  # the lowest plausible value per kg for its chapters (the highest floor)

    @property
    def weight_ratio(self) -> float | None:
        """Measured over declared weight (None unless both are known and positive)."""
        if self.measured_kg is None or not self.declared_kg or self.declared_kg <= 0:
            return None
        return self.measured_kg / self.declared_kg

    @property
    def value_per_kg(self) -> float | None:
        """USD per kg of the heavier of the measured and declared weights."""
        weight = self.measured_kg if self.measured_kg is not None else self.declared_kg
        if self.value_usd is None or not weight or weight <= 0:
            return None
        return self.value_usd / weight


def order_from_row(row: Mapping[str, Any]) -> dict[str, Any]:
    """A flat ``model eval`` row (values in USD) as a one-item order."""
    quantity = number(row.get("quantity")) or 1.0
    value = number(row.get("declared_value_usd"))
    return {
        "currency": str(row.get("currency") or "USD"),
        "declared_weight_kg": number(row.get("declared_weight_kg")),
        "shipment_category": row.get("shipment_category") or "",
        "seller": row.get("seller"),
        "consignee": row.get("consignee"),
        "items": [
            {
                "description": row.get("description"),
                "hts_code": row.get("hts_code"),
                "quantity": quantity,
                "unit_value": None if value is None else value / quantity,
                "origin_country": row.get("origin_country"),
            }
        ],
    }


def _digits(code: Any) -> str:
    return _CODE_PUNCTUATION.sub("", str(code or ""))


def _code_state(lexicon: Lexicon, raw: str) -> str:
    if not raw:
        return "missing"
    if not raw.isdigit() or not 6 <= len(raw) <= 10:
        return "malformed"
    if raw[:2] in INVALID_CHAPTERS:
        return "chapter_invalid"
    return "valid" if lexicon.nomenclature.exists(raw) else "unknown"


def generic_share(lexicon: Lexicon, description: str, stemmed: list[str] | None = None) -> float:
    """1.0 when a description names no goods at all ('Gift', 'Household goods', 'Black 2 pcs',
    'XXX', '1004'); otherwise the share of its content words that are generic (``stemmed``: the
    description's :func:`stems`, when the caller has them already)."""
    text = description.strip().lower()
    if not _LETTER.search(text) or _ONE_CHARACTER.fullmatch(text.replace(" ", "")):
        return 1.0
    words = stems(text) if stemmed is None else stemmed
    if " ".join(words) in lexicon.generic:
        return 1.0
    content = [w for w in words if w not in lexicon.filler and not w.isdigit() and len(w) > 1]
    if not content:
        return 1.0
    if " ".join(content) in lexicon.generic:
        return 1.0
    return sum(w in lexicon.generic for w in content) / len(content)


def measure_item(
    lexicon: Lexicon, item: Mapping[str, Any], rate: float | None, hts_table: HtsTable | None = None
) -> ItemSignals:
    """The signals of one order line (``rate``: USD per unit of the order's currency)."""
    description = str(item.get("description") or "").strip()
    text = f"{description} {item.get('sku') or ''}"
    hts = _digits(item.get("hts_code"))
    state = _code_state(lexicon, hts)
    chapter = hts[:2] if state in ("valid", "unknown") else ""
    nomenclature = lexicon.nomenclature
    stemmed = stems(description)  # once: the fit, the own fit and the generic share all read them
    words = nomenclature.description_words(description, stemmed)
    grams = trigrams(text)  # once: the precursor and the press lists both read them
    precursors = lexicon.precursors.scores(text, grams)
    for name in lexicon.cas_hits(text):
        precursors[name] = 1.0
    unit = number(item.get("unit_value"))
    quantity = number(item.get("quantity")) or 1.0
    return ItemSignals(
        description=description,
        hts=hts,
        code_state=state,
        hts10_unknown=bool(hts_table and state == "valid" and len(hts) == 10 and not hts_table.exists(hts)),
        fit=nomenclature.fit(description, chapter or "--", words),
        own_fit=nomenclature.own_fit(description, hts, words) if state == "valid" else 0.0,
        generic=generic_share(lexicon, description, stemmed) if description else 1.0,
        precursors=precursors,
        presses=lexicon.presses.scores(text, grams),
        precursor_line=lexicon.precursor_hs6.get(hts[:6], "") if state == "valid" else "",
        press_line=lexicon.press_hs6.get(hts[:6], "") if state == "valid" else "",
        chemical_chapter=chapter in lexicon.chemical_chapters,
        value_usd=None if unit is None or rate is None else unit * quantity * rate,
    )


def usd_rate(lexicon: Lexicon, currency: Any, rates: Mapping[str, float] | None = None) -> float | None:
    """USD per unit of ``currency`` from the configured table, else the shipped one (None: unknown)."""
    code = str(currency or "USD").upper()
    if rates and code in rates:
        return rates[code]
    return lexicon.usd_rates.get(code)


def measure(
    lexicon: Lexicon,
    order: Mapping[str, Any] | None,
    measured_kg: float | None,
    *,
    rates: Mapping[str, float] | None = None,
    hts_table: HtsTable | None = None,
) -> ParcelSignals:
    """The signals of one parcel (an order in the WMS shape, or None when there is no order)."""
    order = order or {}
    rate = usd_rate(lexicon, order.get("currency"), rates)
    raw_items = order.get("items")
    listed = raw_items if isinstance(raw_items, list) else []
    # one signal per listed line (a line that is not an object measures as an empty one)
    items = tuple(measure_item(lexicon, i if isinstance(i, Mapping) else {}, rate, hts_table) for i in listed)
    values = [i.value_usd for i in items]
    return ParcelSignals(
        items=items,
        value_usd=None if rate is None or not items or None in values else sum(v or 0.0 for v in values),
        declared_kg=number(order.get("declared_weight_kg")),
        measured_kg=measured_kg,
        quantity=sum(number(i.get("quantity")) or 1.0 for i in raw_items or [] if isinstance(i, Mapping))
        if isinstance(raw_items, list)
        else 1.0,
        shipment_category=str(order.get("shipment_category") or ""),
        floor_usd_per_kg=max(
            (lexicon.floor(i.chapter) for i in items if i.chapter), default=lexicon.floor("")
        ),
    )


def measure_row(lexicon: Lexicon, row: Mapping[str, Any], hts_table: HtsTable | None = None) -> ParcelSignals:
    """The signals of a flat ``model eval`` row."""
    return measure(lexicon, order_from_row(row), number(row.get("measured_weight_kg")), hts_table=hts_table)
