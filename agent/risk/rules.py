"""Data-quality and risk rules: each has a stable code, a severity and a one-sentence message.

Codes are the contract with customs and with the station display; never rename one, add a new
code instead. Severities: ``hold`` (divert the parcel), ``review`` (compliance looks at it, the
parcel may ship), ``info`` (recorded, no action). The rules judge a parcel by its measured
signals (:mod:`prescreen.models.signals`: the HS nomenclature, the official generic-description
lists, DEA-listed chemicals and presses), the same ones the model reads, so both speak of one
parcel in one vocabulary. Thresholds come from :class:`ScreeningConfig`.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Callable, Iterator
from decimal import Decimal
from typing import Any

from prescreen.drivers.barcodes import Barcode
from prescreen.models.lexicon import Lexicon
from prescreen.models.signals import ItemSignals, ParcelSignals
from prescreen.ops.config import ScreeningConfig
from prescreen.risk import codes as C
from prescreen.risk.findings import Code, Finding, Severity
from prescreen.risk.reference import Reference

# A description fits another chapter this well, and nothing of its own: a mismatch (measured
# false-mismatch rate on clean parcels of every generator: models/MODEL_CARD.md).
MISMATCH_MAX_DECLARED = 0.1
MISMATCH_MIN_GAP = 0.4
PRECURSOR_SIMILARITY = 0.8  # trigram containment: one wrong letter in a long name still matches
PRESS_SIMILARITY = 0.85
FORMAL_ENTRY_USD = 2500  # 19 CFR 143.21: informal entry limit
GIFT_LIMIT_USD = 100  # 19 U.S.C. 1321(a)(2)(B): bona fide gifts
_LETTER = re.compile(r"[A-Za-z]")


@dataclasses.dataclass(frozen=True)
class CartonFacts:
    """What the station counted and weighed for a master carton when it was closed."""

    carton_id: str
    manifest: frozenset[str]
    scanned: tuple[str, ...]
    parcels_weight_kg: Decimal
    tare_kg: float = 0.0  # the master carton's own packaging

    @property
    def unmanifested(self) -> list[str]:
        """Parcels scanned into the carton that its manifest does not list."""
        return [t for t in self.scanned if t not in self.manifest]


@dataclasses.dataclass(frozen=True)
class ParcelFacts:
    """Everything the rules may look at for one parcel."""

    barcode: Barcode
    weight_kg: Decimal | None
    order: dict[str, Any] | None
    order_problem: str | None = None
    carton: CartonFacts | None = None
    inside_carton: str | None = None  # carton id this parcel was scanned into
    inside_manifest: bool = True
    consignee_recent: int = 0  # parcels to the same consignee within the split window
    watchlisted: str | None = None  # reason the tracking number is on the hold list


Rule = Callable[[ParcelFacts, ParcelSignals], Iterator[Finding]]

# The order source's reason (OrderError.reason) -> its finding and sentence.
_ORDER_PROBLEMS: dict[str, tuple[Code, str]] = {
    C.ORDER_NOT_FOUND.code: (C.ORDER_NOT_FOUND, "No order data for this parcel: it is unmanifested."),
    C.ORDER_UNAVAILABLE.code: (
        C.ORDER_UNAVAILABLE,
        "The order data did not arrive in time; the record is completed when it does.",
    ),
    C.ORDER_MALFORMED.code: (
        C.ORDER_MALFORMED,
        "The order system sent data that cannot be read: report it to site IT.",
    ),
    C.ORDER_MISMATCH.code: (
        C.ORDER_MISMATCH,
        "The order system answered with another parcel's order: check the label.",
    ),
}


class Rules:
    """The rule set, bound to reference data and thresholds."""

    def __init__(self, reference: Reference, lexicon: Lexicon, config: ScreeningConfig) -> None:
        self.ref = reference
        self.lexicon = lexicon
        self.config = config
        # The weight tolerances as _weight_off reads them, made once (the config is frozen).
        self._tolerance_kg = Decimal(config.weight_tolerance_g) / 1000
        self._tolerance_share = Decimal(str(config.weight_tolerance_pct))
        self.rules: tuple[Rule, ...] = (
            self.identity,
            self.weight_present,
            self.order_present,
            self.watchlist,
            self.master_carton,
            self.parties,
            self.items,
            self.declared_weight,
            self.value,
            self.tariff_vs_description,
            self.precursors,
            self.pill_press,
            self.split_shipment,
        )

    def evaluate(self, facts: ParcelFacts, signals: ParcelSignals) -> list[Finding]:
        """Run every rule; findings in rule order."""
        return [finding for rule in self.rules for finding in rule(facts, signals)]

    # --- parcel identity, devices and order availability -------------------------------

    def identity(self, facts: ParcelFacts, signals: ParcelSignals) -> Iterator[Finding]:
        reason = facts.barcode.reason
        if reason == "CHECK_DIGIT_FAILED":
            yield C.BARCODE_CHECK_FAILED.found(
                f"Barcode {facts.barcode.raw!r} fails its check digit: rescan or relabel.",
            )
        elif reason is not None:
            yield C.BARCODE_UNKNOWN.found(f"Barcode {facts.barcode.raw!r} is not a known tracking label.")

    def weight_present(self, facts: ParcelFacts, signals: ParcelSignals) -> Iterator[Finding]:
        if facts.weight_kg is None:
            yield C.NO_WEIGHT.found("The scale gave no stable weight for this parcel.")

    def order_present(self, facts: ParcelFacts, signals: ParcelSignals) -> Iterator[Finding]:
        if facts.order is None and facts.carton is None:
            # A reason no order source gives is taken as the order not arriving.
            code, text = _ORDER_PROBLEMS.get(
                facts.order_problem or C.ORDER_NOT_FOUND.code, _ORDER_PROBLEMS[C.ORDER_UNAVAILABLE.code]
            )
            yield code.found(text, severity="hold" if facts.inside_carton else "review")

    def watchlist(self, facts: ParcelFacts, signals: ParcelSignals) -> Iterator[Finding]:
        if facts.watchlisted:
            yield C.WATCHLIST_HOLD.found(f"On the customs hold list: {facts.watchlisted}.")

    def master_carton(self, facts: ParcelFacts, signals: ParcelSignals) -> Iterator[Finding]:
        if facts.inside_carton and not facts.inside_manifest:
            yield C.CARTON_UNMANIFESTED_PARCEL.found(
                f"Parcel is not on master carton {facts.inside_carton}'s manifest.",
            )
        carton = facts.carton
        if carton is None:
            return
        extra = carton.unmanifested
        if extra or len(carton.scanned) > len(carton.manifest):
            yield C.CARTON_COUNT_EXCEEDS_MANIFEST.found(
                f"{len(carton.scanned)} parcels scanned into the carton, manifest lists "
                f"{len(carton.manifest)}.",
            )
        if facts.weight_kg is not None and carton.scanned:
            expected = carton.parcels_weight_kg + Decimal(str(carton.tare_kg))
            if self._weight_off(facts.weight_kg, expected):
                yield C.CARTON_WEIGHT_MISMATCH.found(
                    f"Master carton weighs {facts.weight_kg:.2f} kg, its parcels add up to "
                    f"{expected:.2f} kg.",
                )

    # --- data quality ------------------------------------------------------------------

    def parties(self, facts: ParcelFacts, signals: ParcelSignals) -> Iterator[Finding]:
        order = facts.order
        if order is None:
            return
        for role, code in (("seller", C.DQ_SELLER_MISSING), ("consignee", C.DQ_CONSIGNEE_MISSING)):
            party = order.get(role) or {}
            address = party.get("address") or {}
            if not _meaningful(party.get("name")) or not _meaningful(address.get("line1")):
                yield code.found(f"The {role}'s name or address is missing.")
            elif not self._country(address.get("country")):
                yield C.DQ_COUNTRY_UNKNOWN.found(
                    f"The {role}'s country {address.get('country')!r} is not an ISO code.",
                )
        currency = order.get("currency")
        if not isinstance(currency, str) or currency not in self.ref.currencies:
            yield C.DQ_CURRENCY_UNKNOWN.found(f"Currency {currency!r} is not an ISO 4217 code.")

    def _country(self, value: object) -> bool:
        """An ISO 3166 code (order data may hold any JSON: a list is no country, and no crash)."""
        return isinstance(value, str) and value in self.ref.countries

    def items(self, facts: ParcelFacts, signals: ParcelSignals) -> Iterator[Finding]:
        order = facts.order
        if order is None:
            return
        if not order.get("items"):
            yield C.DQ_NO_ITEMS.found("The order lists no items.")
        listed = order.get("items") or []
        for index, (item, measured) in enumerate(zip(listed, signals.items, strict=True), start=1):
            yield from self._item(index, item if isinstance(item, dict) else {}, measured)

    def _item(self, index: int, item: dict[str, Any], signals: ItemSignals) -> Iterator[Finding]:
        where = f"Item {index}"
        description = signals.description
        if not description:
            yield C.DQ_DESCRIPTION_MISSING.found(f"{where} has no description.", item=index)
        elif signals.generic >= 1.0:
            yield C.DQ_DESCRIPTION_VAGUE.found(
                f"{where}: description '{description}' is too vague: say what the item is.",
                item=index,
            )
        yield from self._tariff(index, item, signals)
        value = item.get("unit_value")
        if not isinstance(value, (int, float)) or isinstance(value, bool) or value <= 0:
            yield C.DQ_VALUE_MISSING.found(f"{where}: declared value must be above zero.", item=index)
        origin = item.get("origin_country")
        if not self._country(origin):
            yield C.DQ_ORIGIN_UNKNOWN.found(
                f"{where}: country of origin is missing."
                if not origin
                else f"{where}: country of origin {origin!r} is not an ISO code.",
                item=index,
            )

    def _tariff(self, index: int, item: dict[str, Any], signals: ItemSignals) -> Iterator[Finding]:
        where = f"Item {index}"
        hts, state = signals.hts, signals.code_state
        if state == "missing":
            yield C.DQ_TARIFF_MISSING.found(f"{where} has no tariff code.", item=index)
        elif state == "malformed":
            yield C.DQ_TARIFF_MALFORMED.found(
                f"{where}: tariff code {item.get('hts_code')!r} is not 6 to 10 digits.",
                item=index,
            )
        elif state == "chapter_invalid":
            yield C.DQ_TARIFF_CHAPTER_INVALID.found(
                f"{where}: chapter {hts[:2]} cannot classify goods; give the chapter 1-97 code of the goods.",
                item=index,
            )
        elif state == "unknown":
            yield C.DQ_TARIFF_UNKNOWN.found(
                f"{where}: tariff code {hts} does not exist: {hts[:6]} is not an HS subheading.",
                item=index,
            )
        elif signals.hts10_unknown:
            yield C.DQ_TARIFF_NOT_IN_HTS.found(
                f"{where}: tariff code {hts} is not a line of the loaded US HTS table.",
                item=index,
            )
        elif len(hts) < 10:
            yield C.DQ_TARIFF_NOT_ENTRY_GRADE.found(
                f"{where}: tariff code has {len(hts)} digits; US entries need 10.",
                item=index,
            )

    # --- consistency --------------------------------------------------------------------

    def _weight_off(self, measured: Decimal, declared: Decimal) -> bool:
        delta = abs(measured - declared)
        return delta > max(self._tolerance_kg, declared * self._tolerance_share / 100)

    def declared_weight(self, facts: ParcelFacts, signals: ParcelSignals) -> Iterator[Finding]:
        order = facts.order
        declared = None if order is None else order.get("declared_weight_kg")
        if facts.weight_kg is None or not isinstance(declared, (int, float)) or isinstance(declared, bool):
            return
        declared_kg = Decimal(str(declared))
        if self._weight_off(facts.weight_kg, declared_kg):
            severity: Severity = "hold" if facts.weight_kg > declared_kg * 3 else "review"
            yield C.WEIGHT_MISMATCH.found(
                f"Declared {declared:.2f} kg, scale says {facts.weight_kg:.2f} kg.",
                severity=severity,
            )

    def value(self, facts: ParcelFacts, signals: ParcelSignals) -> Iterator[Finding]:
        """Value rules, always in USD (converted with the configured rate table first)."""
        total = signals.value_usd
        if facts.order is None or total is None or total <= 0:
            return
        if total > FORMAL_ENTRY_USD:
            yield C.VALUE_FORMAL_ENTRY.found(
                f"Declared value {total:,.2f} USD is over {FORMAL_ENTRY_USD:,} USD: "
                "a formal entry (type 01).",
            )
        if signals.shipment_category.lower() == "gift" and total > GIFT_LIMIT_USD:
            yield C.GIFT_OVER_LIMIT.found(
                f"Declared as a gift but worth {total:,.2f} USD: bona fide gifts are exempt only up to "
                f"{GIFT_LIMIT_USD} USD.",
            )
        if facts.weight_kg is None or facts.weight_kg <= 0:
            return
        floor = signals.floor_usd_per_kg
        per_kg = total / float(facts.weight_kg)
        if per_kg < floor:
            yield C.VALUE_PER_KG_LOW.found(
                f"Declared value is {per_kg:.2f} USD per kg; goods of this kind are "
                f"rarely under {floor:.2f} USD per kg.",
            )

    def tariff_vs_description(self, facts: ParcelFacts, signals: ParcelSignals) -> Iterator[Finding]:
        """The description fits another HS chapter and nothing of the declared one."""
        for index, item in enumerate(signals.items, start=1):
            fit = item.fit
            if (
                item.code_state == "valid"
                and item.generic < 1.0
                and fit.declared <= MISMATCH_MAX_DECLARED
                and fit.mismatch >= MISMATCH_MIN_GAP
                and item.precursor < PRECURSOR_SIMILARITY
            ):
                yield C.TARIFF_DESCRIPTION_MISMATCH.found(
                    f"Item {index}: '{item.description}' does not fit chapter {item.chapter} "
                    f"({_short(self.lexicon.nomenclature.text(item.chapter))}); it reads like chapter "
                    f"{fit.best_chapter} ({_short(self.lexicon.nomenclature.text(fit.best_chapter))}).",
                    item=index,
                )

    # --- risk indicators (customs only: never shown to the seller) ---------------------------

    def precursors(self, facts: ParcelFacts, signals: ParcelSignals) -> Iterator[Finding]:
        for index, item in enumerate(signals.items, start=1):
            names = sorted(n for n, score in item.precursors.items() if score >= PRECURSOR_SIMILARITY)
            for name in names:
                yield C.PRECURSOR_CHEMICAL.found(
                    f"Item {index}: description matches listed chemical {name}.", item=index
                )
            if item.precursor_line and not names:
                yield C.PRECURSOR_TARIFF_LINE.found(
                    f"Item {index}: tariff code {item.hts} is the line of {item.precursor_line}, a listed "
                    "chemical, whatever the description says.",
                    item=index,
                )
            elif item.chemical_unexplained and not names:
                yield C.CHEMICAL_TARIFF_LINE.found(
                    f"Item {index}: a chapter {item.chapter} chemical in a consumer parcel, described as "
                    f"'{item.description}', which is not what tariff line {item.hts[:6]} says.",
                    item=index,
                )

    def pill_press(self, facts: ParcelFacts, signals: ParcelSignals) -> Iterator[Finding]:
        for index, item in enumerate(signals.items, start=1):
            terms = sorted(t for t, score in item.presses.items() if score >= PRESS_SIMILARITY)
            if terms:
                yield C.PILL_PRESS_EQUIPMENT.found(
                    f"Item {index}: description matches pill press equipment ('{terms[0]}').",
                    item=index,
                )
            elif item.press_line:
                yield C.PRESS_TARIFF_LINE.found(
                    f"Item {index}: tariff line {item.hts[:6]} ({item.press_line}) is where tablet presses "
                    "and dies are declared: check the goods (DEA Form 452).",
                    item=index,
                )

    def split_shipment(self, facts: ParcelFacts, signals: ParcelSignals) -> Iterator[Finding]:
        if facts.consignee_recent >= self.config.split_max_parcels:
            yield C.SPLIT_SHIPMENT.found(
                f"{facts.consignee_recent + 1} parcels to this consignee within "
                f"{self.config.split_window_s // 60} minutes.",
            )


def _short(text: str, limit: int = 60) -> str:
    return text if len(text) <= limit else text[: limit - 1].rstrip(" ,;") + "…"


def _meaningful(value: object) -> bool:
    return isinstance(value, str) and len(value.strip()) >= 2 and bool(_LETTER.search(value))
