"""Data-quality and risk rules: each has a stable code, a severity and a one-sentence message.

Codes are the contract with customs and with the station display; never rename one, add a new
code instead. Severities: ``hold`` (divert the parcel), ``review`` (compliance looks at it, the
parcel may ship), ``info`` (recorded, no action). Thresholds come from :class:`ScreeningConfig`;
keyword lists and their sources from ``data/reference.json``.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Callable, Iterator
from decimal import Decimal
from typing import Any, Literal

from prescreen.config import ScreeningConfig
from prescreen.drivers.barcodes import Barcode
from prescreen.reference import Reference, squash

Severity = Literal["info", "review", "hold"]
_CAS = re.compile(r"\b\d{2,7}-\d{2}-\d\b")
_WORD = re.compile(r"[a-z0-9]+(?:-[a-z0-9]+)*")


@dataclasses.dataclass(frozen=True)
class Finding:
    """One rule hit."""

    code: str
    severity: Severity
    message: str

    def as_json(self) -> dict[str, str]:
        """The record's ``reasons[]`` entry."""
        return {"code": self.code, "severity": self.severity, "message": self.message}


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


Rule = Callable[[ParcelFacts], Iterator[Finding]]

_ORDER_PROBLEMS = {
    "ORDER_NOT_FOUND": "No order data for this parcel: it is unmanifested.",
    "ORDER_UNAVAILABLE": "The order data did not arrive in time; the record is completed when it does.",
    "ORDER_MALFORMED": "The order system sent data that cannot be read: report it to site IT.",
    "ORDER_MISMATCH": "The order system answered with another parcel's order: check the label.",
}


class Rules:
    """The rule set, bound to reference data and thresholds."""

    def __init__(self, reference: Reference, config: ScreeningConfig) -> None:
        self.ref = reference
        self.config = config
        # one alternation for every chapter keyword (longest first), plural "s" allowed
        keywords = sorted(reference.chapter_keywords, key=len, reverse=True)
        self._chapter_keyword = re.compile(rf"\b({'|'.join(map(re.escape, keywords))})s?\b")
        # Precursor names: long ones match squashed (spacing/punctuation-proof); short ones (abbr.
        # like "npp") only as whole words, in one alternation.
        self._long_terms = [(sq, name) for _, sq, name in reference.precursor_terms if len(sq) >= 6]
        short = {term: name for term, sq, name in reference.precursor_terms if len(sq) < 6}
        self._short_term_names = short
        alternation = "|".join(map(re.escape, sorted(short, key=len, reverse=True))) or "(?!x)x"
        self._short_terms = re.compile(rf"(?<![a-z0-9])({alternation})(?![a-z0-9])")
        self.rules: tuple[Rule, ...] = (
            self.identity,
            self.weight_present,
            self.order_present,
            self.watchlist,
            self.master_carton,
            self.parties,
            self.items,
            self.declared_weight,
            self.value_per_kg,
            self.tariff_vs_description,
            self.precursors,
            self.pill_press,
            self.split_shipment,
        )

    def evaluate(self, facts: ParcelFacts) -> list[Finding]:
        """Run every rule; findings in rule order."""
        return [finding for rule in self.rules for finding in rule(facts)]

    # --- parcel identity, devices and order availability -------------------------------

    def identity(self, facts: ParcelFacts) -> Iterator[Finding]:
        reason = facts.barcode.reason
        if reason == "CHECK_DIGIT_FAILED":
            yield Finding(
                "BARCODE_CHECK_FAILED",
                "review",
                f"Barcode {facts.barcode.raw!r} fails its check digit: rescan or relabel.",
            )
        elif reason is not None:
            yield Finding(
                "BARCODE_UNKNOWN", "review", f"Barcode {facts.barcode.raw!r} is not a known tracking label."
            )

    def weight_present(self, facts: ParcelFacts) -> Iterator[Finding]:
        if facts.weight_kg is None:
            yield Finding("NO_WEIGHT", "review", "The scale gave no stable weight for this parcel.")

    def order_present(self, facts: ParcelFacts) -> Iterator[Finding]:
        if facts.order is None and facts.carton is None:
            code = facts.order_problem or "ORDER_NOT_FOUND"
            text = _ORDER_PROBLEMS.get(code, _ORDER_PROBLEMS["ORDER_UNAVAILABLE"])
            yield Finding(code, "hold" if facts.inside_carton else "review", text)

    def watchlist(self, facts: ParcelFacts) -> Iterator[Finding]:
        if facts.watchlisted:
            yield Finding("WATCHLIST_HOLD", "hold", f"On the customs hold list: {facts.watchlisted}.")

    def master_carton(self, facts: ParcelFacts) -> Iterator[Finding]:
        if facts.inside_carton and not facts.inside_manifest:
            yield Finding(
                "CARTON_UNMANIFESTED_PARCEL",
                "hold",
                f"Parcel is not on master carton {facts.inside_carton}'s manifest.",
            )
        carton = facts.carton
        if carton is None:
            return
        extra = carton.unmanifested
        if extra or len(carton.scanned) > len(carton.manifest):
            yield Finding(
                "CARTON_COUNT_EXCEEDS_MANIFEST",
                "hold",
                f"{len(carton.scanned)} parcels scanned into the carton, manifest lists "
                f"{len(carton.manifest)}.",
            )
        if facts.weight_kg is not None and carton.scanned:
            expected = carton.parcels_weight_kg + Decimal(str(carton.tare_kg))
            if self._weight_off(facts.weight_kg, expected):
                yield Finding(
                    "CARTON_WEIGHT_MISMATCH",
                    "hold",
                    f"Master carton weighs {facts.weight_kg:.2f} kg, its parcels add up to "
                    f"{expected:.2f} kg.",
                )

    # --- data quality ------------------------------------------------------------------

    def parties(self, facts: ParcelFacts) -> Iterator[Finding]:
        order = facts.order
        if order is None:
            return
        for role, code in (("seller", "DQ_SELLER_MISSING"), ("consignee", "DQ_CONSIGNEE_MISSING")):
            party = order.get(role) or {}
            address = party.get("address") or {}
            if not _meaningful(party.get("name")) or not _meaningful(address.get("line1")):
                yield Finding(code, "review", f"The {role}'s name or address is missing.")
            elif address.get("country") not in self.ref.countries:
                yield Finding(
                    "DQ_COUNTRY_UNKNOWN",
                    "review",
                    f"The {role}'s country {address.get('country')!r} is not an ISO code.",
                )
        currency = order.get("currency")
        if currency not in self.ref.currencies:
            yield Finding("DQ_CURRENCY_UNKNOWN", "review", f"Currency {currency!r} is not an ISO 4217 code.")

    def items(self, facts: ParcelFacts) -> Iterator[Finding]:
        order = facts.order
        if order is None:
            return
        items = order.get("items") or []
        if not items:
            yield Finding("DQ_NO_ITEMS", "review", "The order lists no items.")
        for index, item in enumerate(items, start=1):
            yield from self._item(index, item)

    def _item(self, index: int, item: dict[str, Any]) -> Iterator[Finding]:
        where = f"Item {index}"
        description = (item.get("description") or "").strip()
        if not description:
            yield Finding("DQ_DESCRIPTION_MISSING", "review", f"{where} has no description.")
        elif self._vague(description):
            yield Finding(
                "DQ_DESCRIPTION_VAGUE",
                "review",
                f"{where}: description '{description}' is too vague: say what the item is.",
            )
        hts = re.sub(r"[.\s]", "", item.get("hts_code") or "")
        if not hts:
            yield Finding("DQ_TARIFF_MISSING", "review", f"{where} has no tariff code.")
        elif not hts.isdigit() or not 6 <= len(hts) <= 10:
            yield Finding(
                "DQ_TARIFF_MALFORMED",
                "review",
                f"{where}: tariff code {item.get('hts_code')!r} is not 6 to 10 digits.",
            )
        elif hts[:2] in ("00", "77", "98", "99"):
            yield Finding(
                "DQ_TARIFF_CHAPTER_INVALID",
                "review",
                f"{where}: chapter {hts[:2]} cannot be used on a low-value entry.",
            )
        elif len(hts) < 10:
            yield Finding(
                "DQ_TARIFF_NOT_ENTRY_GRADE",
                "info",
                f"{where}: tariff code has {len(hts)} digits; US entries need 10.",
            )
        value = item.get("unit_value")
        if not isinstance(value, (int, float)) or value <= 0:
            yield Finding("DQ_VALUE_MISSING", "review", f"{where}: declared value must be above zero.")
        origin = item.get("origin_country")
        if origin not in self.ref.countries:
            yield Finding(
                "DQ_ORIGIN_UNKNOWN",
                "review",
                f"{where}: country of origin is missing."
                if not origin
                else f"{where}: country of origin {origin!r} is not an ISO code.",
            )

    def _vague(self, description: str) -> bool:
        text = description.lower().strip(" .")
        if text in self.ref.vague:
            return True
        if text.isdigit() or (re.search(r"(.)\1\1", text.replace(" ", "")) and len(set(text)) <= 2):
            return True
        if not re.search(r"[a-z]", text):
            return True
        words = _WORD.findall(text)
        return bool(words) and all(w in self.ref.vague or w.rstrip("s") in self.ref.vague for w in words)

    # --- consistency --------------------------------------------------------------------

    def _weight_off(self, measured: Decimal, declared: Decimal | float) -> bool:
        delta = abs(measured - Decimal(str(declared)))
        limit = max(
            Decimal(self.config.weight_tolerance_g) / 1000,
            Decimal(str(declared)) * Decimal(str(self.config.weight_tolerance_pct)) / 100,
        )
        return delta > limit

    def declared_weight(self, facts: ParcelFacts) -> Iterator[Finding]:
        order = facts.order
        declared = None if order is None else order.get("declared_weight_kg")
        if facts.weight_kg is None or not isinstance(declared, (int, float)):
            return
        if self._weight_off(facts.weight_kg, declared):
            severity: Severity = "hold" if facts.weight_kg > Decimal(str(declared)) * 3 else "review"
            yield Finding(
                "WEIGHT_MISMATCH",
                severity,
                f"Declared {declared:.2f} kg, scale says {facts.weight_kg:.2f} kg.",
            )

    def value_per_kg(self, facts: ParcelFacts) -> Iterator[Finding]:
        order = facts.order
        if order is None or facts.weight_kg is None or facts.weight_kg <= 0:
            return
        items = order.get("items") or []
        total = sum(float(i.get("unit_value") or 0) * float(i.get("quantity") or 1) for i in items)
        chapters = {re.sub(r"\D", "", i.get("hts_code") or "")[:2] for i in items}
        floors = [self.ref.value_floor.get(c, self.ref.value_floor["_default"]) for c in chapters]
        floor = max(floors, default=self.ref.value_floor["_default"])
        per_kg = total / float(facts.weight_kg)
        if total > 0 and per_kg < floor:
            yield Finding(
                "VALUE_PER_KG_LOW",
                "review",
                f"Declared value is {per_kg:.2f} USD per kg; goods of this kind are "
                f"rarely under {floor:.2f} USD per kg.",
            )

    def tariff_vs_description(self, facts: ParcelFacts) -> Iterator[Finding]:
        for index, item in enumerate((facts.order or {}).get("items") or [], start=1):
            text = (item.get("description") or "").lower()
            chapter = re.sub(r"\D", "", item.get("hts_code") or "")[:2]
            if len(chapter) < 2:
                continue
            expected: set[str] = set()
            for keyword in self._chapter_keyword.findall(text):
                expected.update(self.ref.chapter_keywords[keyword])
            if expected and chapter not in expected:
                yield Finding(
                    "TARIFF_DESCRIPTION_MISMATCH",
                    "review",
                    f"Item {index}: '{item.get('description')}' is not usually chapter "
                    f"{chapter} (expected {', '.join(sorted(expected))}).",
                )

    # --- risk indicators ------------------------------------------------------------------

    def _texts(self, facts: ParcelFacts) -> list[str]:
        items = (facts.order or {}).get("items") or []
        return [f"{i.get('description') or ''} {i.get('sku') or ''}" for i in items]

    def precursors(self, facts: ParcelFacts) -> Iterator[Finding]:
        for text in self._texts(facts):
            lowered, squashed = text.lower(), squash(text)
            hits = {self.ref.precursor_cas[c] for c in _CAS.findall(text) if c in self.ref.precursor_cas}
            hits.update(name for squashed_term, name in self._long_terms if squashed_term in squashed)
            hits.update(self._short_term_names[t] for t in self._short_terms.findall(lowered))
            for name in sorted(hits):
                yield Finding("PRECURSOR_CHEMICAL", "hold", f"Description matches fentanyl precursor {name}.")

    def pill_press(self, facts: ParcelFacts) -> Iterator[Finding]:
        for text in self._texts(facts):
            squashed = squash(text)
            for term, squashed_term in self.ref.pill_press_terms:
                if squashed_term in squashed:
                    yield Finding(
                        "PILL_PRESS_EQUIPMENT",
                        "hold",
                        f"Description matches pill press equipment ('{term}').",
                    )
                    break

    def split_shipment(self, facts: ParcelFacts) -> Iterator[Finding]:
        if facts.consignee_recent >= self.config.split_max_parcels:
            yield Finding(
                "SPLIT_SHIPMENT",
                "review",
                f"{facts.consignee_recent + 1} parcels to this consignee within "
                f"{self.config.split_window_s // 60} minutes.",
            )


def _meaningful(value: object) -> bool:
    return isinstance(value, str) and len(value.strip()) >= 2 and bool(re.search(r"[A-Za-z]", value))
