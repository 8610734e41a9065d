"""Entry-grade data: the manufacturer's MID, the network a parcel crosses the border in, USD values,
and which other agencies' data a line needs.

Pure functions of the order and the parcel, shared by the station (building records), the filer
findings (:mod:`prescreen.risk.filer`) and the exports, so the three always agree on what a parcel is.
Facts and sources: ``../shared/docs/domain.md`` section 0 and ``docs/data-mapping.md``.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import math
import re
from collections.abc import Iterable, Mapping
from datetime import date, datetime, timezone
from pathlib import Path
from typing import Any

from prescreen.core.errors import ConfigError
from prescreen.drivers.barcodes import Barcode
from prescreen.ops.config import EntryConfig, parse_account_channels
from prescreen.risk import codes

Order = dict[str, Any]

# 19 CFR Part 102 Appendix, rule 2: "CA" is no MID country code; the province's code is used.
CANADA_PROVINCES = {
    "AB": "XA",
    "BC": "XC",
    "MB": "XM",
    "NB": "XB",
    "NL": "XW",
    "NT": "XT",
    "NS": "XN",
    "NU": "XV",
    "ON": "XO",
    "PE": "XP",
    "QC": "XQ",
    "SK": "XS",
    "YT": "XY",
}
_SKIPPED_WORDS = frozenset({"A", "AN", "AND", "OF", "THE"})  # Appendix rule 3: English words ignored
_INITIALS = re.compile(r"(?:[A-Z]\.)+[A-Z]?")  # "A.B.C." or "S.A." (not "DR.": two letters)
# Compiled once: these run on every parcel (re's own cache costs a lookup per call).
_HYPHEN = re.compile(r"\s*-\s*")
_NOT_ALNUM = re.compile(r"[^A-Z0-9]")
_NOT_LETTER = re.compile(r"[^A-Z]")
_COUNTRY = re.compile(r"[A-Z]{2}")
_NUMBER = re.compile(r"\d+")
_NOT_DIGIT = re.compile(r"\D")
_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")
_PORT = re.compile(r"\d{4}")


@functools.lru_cache(maxsize=4096)  # a site ships from few manufacturers: each name is parsed once
def _name_words(name: str) -> tuple[str, ...]:
    """The words of a manufacturer's name as the MID rules count them.

    Initials standing together ("A.B.C.", "A B C", "S.A.") are one word; a hyphen joins the parts
    around it into one word ("Rawles-Aden", "Rawles - Aden"); other punctuation is dropped
    ("O'Hara" is OHARA); "a", "an", "and", "of" and "the" are not counted.
    """
    tokens = _HYPHEN.sub("-", name.upper()).split()
    words: list[tuple[str, bool]] = []  # (characters, is a run of initials)
    for token in tokens:
        characters = _NOT_ALNUM.sub("", token)
        if not characters:
            continue
        initial = len(characters) == 1 or bool(_INITIALS.fullmatch(token))
        if initial and words and words[-1][1]:
            words[-1] = (words[-1][0] + characters, True)
        else:
            words.append((characters, initial))
    return tuple(w for w, _ in words if w not in _SKIPPED_WORDS)


_MID_FIELDS = ("country", "region", "city", "line1", "line2")  # what mid reads of an address
_TEXT_OR_NONE = frozenset({str, type(None)})


def mid(name: str | None, address: Mapping[str, Any] | None, origin: str | None) -> str | None:
    """The manufacturer identification code CBP constructs from a name and address, or None when
    the name, the city or the country is missing.

    19 CFR Part 102 Appendix: ISO country of origin (Canada: the province code); the first three
    characters of each of the first two words of the name; the first four digits of the largest
    number on the street address line; the first three letters of the city; at most 15 characters.

    Each parcel asks twice per line (the filer findings, then its record) and a site ships from few
    manufacturers: the code of text fields is kept (4,096 of them); other values are not.
    """
    if type(address) is dict or address is None:
        get = (address or {}).get
        parts = (name, origin, *(get(k) for k in _MID_FIELDS))
        if _TEXT_OR_NONE.issuperset(map(type, parts)):
            return _mid_of_text(*parts)
    return _mid(name, address, origin)


@functools.lru_cache(maxsize=4096)
def _mid_of_text(name: str | None, origin: str | None, *address: str | None) -> str | None:
    return _mid(name, dict(zip(_MID_FIELDS, address, strict=True)), origin)


def _mid(name: Any, address: Any, origin: Any) -> str | None:
    # Order data may be any JSON: an address that is not an object and a name that is not text
    # build no code (the finding says the MID is missing), they never stop the screening.
    address = address if isinstance(address, Mapping) else {}
    name = name if isinstance(name, str) else ""
    country = str(origin or address.get("country") or "").upper()
    if country == "CA":
        country = CANADA_PROVINCES.get(str(address.get("region") or "").upper(), "")
    words = _name_words(name)
    city = _NOT_LETTER.sub("", str(address.get("city") or "").upper())[:3]
    if not _COUNTRY.fullmatch(country) or not words or not city:
        return None
    street = " ".join(str(address.get(k) or "") for k in ("line1", "line2"))
    numbers = _NUMBER.findall(street)
    number = max(numbers, key=int)[:4] if numbers else ""
    return (country + "".join(w[:3] for w in words[:2]) + number + city)[:15]


def destination(order: Mapping[str, Any] | None) -> str | None:
    """Where the parcel goes: the final recipient's country, else the consignee's (None: unknown)."""
    for role in ("final_recipient", "consignee"):
        party = (order or {}).get(role)
        address = party.get("address") if isinstance(party, dict) else None
        if isinstance(address, dict) and address.get("country"):
            return str(address["country"])
    return None


def digits(code: object) -> str:
    """A tariff number's digits only: "8518.30.2000" -> "8518302000"."""
    return _NOT_DIGIT.sub("", str(code or ""))


def hs6(code: object) -> str | None:
    """The 6-digit HS subheading of a tariff number, or None when it has fewer than 6 digits."""
    found = digits(code)
    return found[:6] if len(found) >= 6 else None


# --- which other agencies' data a line needs ------------------------------------------------

# CPSC: children's products need a Children's Product Certificate, eFiled since 8 Jul 2026 with no
# low-value exemption. Declared by the seller (pga_flags) or recognised by a heuristic, not a law:
# toys (heading 9503) and descriptions naming children (it asks for a reference, it never holds).
_CPSC_HEADINGS = ("9503",)
_CHILDREN = re.compile(r"\b(child(ren)?'?s?|kids?|baby|babies|toddlers?|infants?)\b", re.IGNORECASE)


def agency_needs(item: Mapping[str, Any], *, press_found: bool = False) -> frozenset[str]:
    """The agencies whose data this line needs: ``CPSC`` (certificate reference) and ``DEA`` (the
    Form 452 transaction id a tablet or capsule press needs, 21 CFR 1310.05).

    Declared by the seller (``pga_flags``) or recognised: children's products by heading and
    words; a press when the screening rules found one on this line (``press_found``).
    """
    declared = item.get("pga_flags")
    needs = {f for f in declared if f in ("CPSC", "DEA")} if isinstance(declared, list) else set()
    if digits(item.get("hts_code")).startswith(_CPSC_HEADINGS) or _CHILDREN.search(
        str(item.get("description") or "")
    ):
        needs.add("CPSC")
    if press_found:
        needs.add("DEA")
    return frozenset(needs)


def press_on_line(
    reasons: Iterable[tuple[str, int | None]], line: int, item: Mapping[str, Any], lines: int
) -> bool:
    """Whether a press the rules found is on line ``line`` (1-based) of ``lines``. ``reasons`` are
    (code, the order line the finding is about) pairs; a press finding about no line is the only
    line's, or a machinery line's (chapter 84) of several."""
    for code, about in reasons:
        if code != codes.PILL_PRESS_EQUIPMENT.code:
            continue
        if about == line:
            return True
        if about is None and (lines == 1 or digits(item.get("hts_code")).startswith("84")):
            return True
    return False


# --- USD values ---------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class UsdRates:
    """USD per unit of each currency, for one date, with where the rates come from.

    CBP converts with the Federal Reserve Bank of New York's certified rate for the date of
    exportation (19 CFR 159.32); the operator provides that table (``[entry] usd_rates_path``).
    Without one only USD orders get a USD value, and the exports refuse the others as incomplete.
    """

    date: str | None = None
    source: str = ""
    usd_per_unit: Mapping[str, float] = dataclasses.field(default_factory=dict)

    @classmethod
    def load(cls, path: str | Path) -> UsdRates:
        """Read ``{"date": ..., "source": ..., "usd_per_unit": {"EUR": 1.08, ...}}``.

        Raises:
            ConfigError: unreadable file, or a rate that is not a positive number.
        """
        try:
            raw = json.loads(Path(path).read_text(encoding="utf-8"))
            rates = {str(k).upper(): float(v) for k, v in raw["usd_per_unit"].items()}
            day, source = str(raw["date"]), str(raw["source"])
        except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
            raise ConfigError(f"{path}: not a USD rate table ({exc})") from None
        # Each value goes into every record: one the record schema refuses would lose the records.
        bad = sorted(
            k
            for k, v in rates.items()
            if not (math.isfinite(v) and v > 0) or not re.fullmatch(r"[A-Z]{3}", k)
        )
        if bad:
            raise ConfigError(f"{path}: rates must be positive numbers by ISO 4217 code: {', '.join(bad)}")
        if valid_date(day) is None:
            raise ConfigError(f"{path}: date must be a date like 2026-11-20, got {day!r}")
        if len(source) > 200:
            raise ConfigError(f"{path}: source must be at most 200 characters")
        return cls(day, source, rates)

    def rate(self, currency: object, order_date: object) -> dict[str, Any] | None:
        """The record's ``usd_rate`` object for an order in ``currency`` (None: no rate known)."""
        if currency == "USD":
            day = valid_date(order_date)
            return {
                "currency": "USD",
                "rate": 1.0,
                "date": day or datetime.now(timezone.utc).date().isoformat(),  # 1.0 on any date
                "source": "order in USD",
            }
        if not isinstance(currency, str) or currency not in self.usd_per_unit or self.date is None:
            return None
        return {
            "currency": currency,
            "rate": self.usd_per_unit[currency],
            "date": self.date,
            "source": self.source,
        }


def valid_date(value: object) -> str | None:
    """``value`` when it is a calendar date written YYYY-MM-DD (what the record schema takes)."""
    if not isinstance(value, str) or not _DATE.fullmatch(value):
        return None
    try:
        date.fromisoformat(value)
    except ValueError:
        return None
    return value


# --- the settings a station builds records with -------------------------------------------------


@dataclasses.dataclass(frozen=True)
class EntrySettings:
    """The ``[entry]`` settings, parsed and loaded once at start."""

    account_channels: Mapping[str, str] = dataclasses.field(default_factory=dict)
    rates: UsdRates = UsdRates()

    @classmethod
    def from_config(cls, config: EntryConfig) -> EntrySettings:
        """Parse the account table and load the rate file (raises ConfigError naming the problem)."""
        rates = UsdRates.load(config.usd_rates_path) if config.usd_rates_path else UsdRates()
        return cls(parse_account_channels(config.account_channels), rates)


NO_SETTINGS = EntrySettings()  # no carrier accounts configured, USD orders only


# --- the channel: decided by the network, never by the label alone -----------------------------

PARCEL_FIELDS = (
    "channel",
    "channel_basis",
    "carrier_account",
    "master_bill",
    "port_of_entry",
    "transport_mode",
    "arrival_date",
)
_EXPRESS = frozenset({"ups", "fedex", "dhl"})
_MODES = frozenset({"air", "ocean", "truck", "rail", "mail"})


def _text(order: Mapping[str, Any] | None, key: str) -> str | None:
    """An id from the order, or None when there is none or it is longer than the record takes."""
    value = (order or {}).get(key)
    text = value.strip() if isinstance(value, str) else ""
    return text if 0 < len(text) <= 64 else None


def decide_channel(
    barcode: Barcode, account: str | None, master_bill: str | None, accounts: Mapping[str, str]
) -> tuple[str, str]:
    """(channel, why) for one parcel.

    ``postal`` only for a UPU S10 item in the international postal network: a domestic USPS label
    (9400...) that crosses as consolidated cargo is non-postal (CBP, 90 FR 2025-16802). A carrier
    account named in ``[entry] account_channels`` decides for its parcels; otherwise a master bill
    means consolidated cargo, an S10 item id means the postal network, an express carrier's number
    its own network, and anything else is unknown.
    """
    s10 = barcode.carrier == "upu"
    configured = accounts.get(account) if account else None
    if configured == "postal":
        if s10:
            return "postal", f"carrier account {account}: postal network, UPU S10 item"
        return "unknown", f"carrier account {account} is postal but the label is no UPU S10 item id"
    if configured is not None:
        return configured, f"carrier account {account}: {configured}"
    if master_bill:
        return "cargo", f"consolidated under master bill {master_bill}"
    if s10:
        return "postal", "UPU S10 item id, not consolidated"
    if barcode.carrier in _EXPRESS:
        return "express", f"{barcode.carrier} tracking number, the carrier's own network"
    if barcode.carrier == "usps":
        return "unknown", "domestic USPS label: not a postal item abroad; no master bill says how it crosses"
    return "unknown", "no carrier account, master bill or known label"


def parcel_fields(
    barcode: Barcode,
    order: Mapping[str, Any] | None,
    carton: Mapping[str, Any] | None,
    settings: EntrySettings,
) -> dict[str, Any]:
    """The record's entry-grade parcel fields; a parcel inside a master carton inherits the
    carton's account, master bill, port, mode and arrival date where its own order has none."""

    def pick(key: str) -> str | None:
        return _text(order, key) or _text(carton, key)

    account, master_bill = pick("carrier_account"), pick("master_bill")
    channel, basis = decide_channel(barcode, account, master_bill, settings.account_channels)
    port, mode, arrival = pick("port_of_entry"), pick("transport_mode"), pick("arrival_date")
    return {
        "channel": channel,
        "channel_basis": basis[:200],
        "carrier_account": account,
        "master_bill": master_bill,
        "port_of_entry": port if port and _PORT.fullmatch(port) else None,
        "transport_mode": mode if mode in _MODES else None,
        "arrival_date": valid_date(arrival),
    }


def complete_order(order: Order, settings: EntrySettings) -> Order:
    """The record's ``order`` with what the station derives: each manufacturer's MID (unless the
    seller declared one), the USD rate used and each line's USD value."""
    rate = settings.rates.rate(order.get("currency"), order.get("order_date"))
    order["usd_rate"] = rate
    for item in order.get("items") or []:
        value = item.get("unit_value")
        item["unit_value_usd"] = (
            None if rate is None or not isinstance(value, (int, float)) else round(value * rate["rate"], 2)
        )
        maker = item.get("manufacturer")
        if isinstance(maker, dict) and maker.get("mid_source") != "declared":
            computed = mid(maker.get("name"), maker.get("address"), item.get("origin_country"))
            maker["mid"], maker["mid_source"] = computed, None if computed is None else "computed"
    return order
