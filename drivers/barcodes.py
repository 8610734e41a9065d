"""What a scanned barcode means: symbology, carrier, tracking number, check digit, GS1 elements.

GS1 element strings (AIs, FNC1-as-GS, SSCC/GTIN check digits, weights) are parsed as ``biip`` parses
them, on biip's table of the GS1 General Specifications rather than a hand-kept one
(:mod:`prescreen.drivers.gs1`). Carrier
tracking-number rules follow jkeen/tracking_number_data (the source the tracking-number packages are
generated from). A barcode that is unknown or fails its check is kept raw with a reason code, never
dropped: the record then carries ``reason`` and the verdict asks for review.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Callable, Sequence
from typing import Literal

from prescreen.drivers import gs1

Carrier = Literal["ups", "usps", "fedex", "dhl", "upu", "gs1", "unknown"]
GS = "\x1d"

_AIM_NAMES = {
    "A": "code39",
    "C": "code128",
    "E": "ean-upc",
    "F": "codabar",
    "G": "code93",
    "I": "itf",
    "L": "pdf417",
    "Q": "qr",
    "U": "maxicode",
    "d": "datamatrix",
    "e": "gs1-databar",
    "z": "aztec",
    "X": "other",
}
_GS1_AIM = {"]C1", "]d2", "]Q3", "]e0", "]e1", "]e2", "]J1"}


@dataclasses.dataclass(frozen=True)
class Barcode:
    """Meaning of one scan. ``reason`` is None when the number was recognised and checked."""

    raw: str
    symbology: str
    carrier: Carrier
    tracking_number: str | None
    check_ok: bool
    gs1: dict[str, str]
    sscc: str | None = None
    reason: str | None = None

    def as_json(self) -> dict[str, object]:
        """The ``prescreen decode barcode`` shape."""
        return {
            "raw": self.raw,
            "symbology": self.symbology,
            "carrier": self.carrier,
            "tracking_number": self.tracking_number,
            "check_ok": self.check_ok,
            "gs1": self.gs1,
            "sscc": self.sscc,
            "reason": self.reason,
        }


def gs1_mod10(body: str) -> int:
    """GS1 check digit of ``body`` (rightmost data digit weighted 3)."""
    total = sum(int(d) * (3 if i % 2 == 0 else 1) for i, d in enumerate(reversed(body)))
    return (10 - total % 10) % 10


def _weighted_mod11(body: str, weights: Sequence[int]) -> int:
    return sum(int(d) * w for d, w in zip(body, weights, strict=True)) % 11 % 10


def _ups_ok(number: str) -> bool:
    body = number[2:17]
    total = 0
    for index, char in enumerate(body):
        value = int(char) if char.isdigit() else (ord(char) - 63) % 10
        total += value * (2 if index % 2 else 1)
    return (10 - total % 10) % 10 == int(number[17]) if number[17].isdigit() else False


def _s10_ok(number: str) -> bool:
    total = sum(int(d) * w for d, w in zip(number[2:10], (8, 6, 4, 2, 3, 5, 9, 7), strict=True))
    check = 11 - total % 11
    check = {10: 0, 11: 5}.get(check, check)
    return check == int(number[10])


def _mod10_ok(number: str) -> bool:
    return gs1_mod10(number[:-1]) == int(number[-1])


def _fedex12_ok(number: str) -> bool:
    return _weighted_mod11(number[:11], (3, 1, 7) * 3 + (3, 1)) == int(number[11])


def _fedex96_ok(number: str) -> bool:
    return gs1_mod10(number[-15:-1]) == int(number[-1])


def _fedex_smartpost_ok(number: str) -> bool:
    return _mod10_ok("92" + number)


def _dhl_ok(number: str) -> bool:
    return int(number[:-1]) % 7 == int(number[-1])


# (carrier, pattern, check) in the order that resolves overlaps between carriers' formats.
_RULES: tuple[tuple[Carrier, re.Pattern[str], Callable[[str], bool]], ...] = (
    ("ups", re.compile(r"1Z[0-9A-Z]{16}"), _ups_ok),
    ("upu", re.compile(r"[A-Z]{2}\d{9}[A-Z]{2}"), _s10_ok),
    ("fedex", re.compile(r"96\d{20}"), _fedex96_ok),
    ("usps", re.compile(r"9[1-5]\d{20}|9[1-5]\d{24}"), _mod10_ok),
    ("usps", re.compile(r"\d{20}"), _mod10_ok),
    ("fedex", re.compile(r"\d{20}"), _fedex_smartpost_ok),
    ("fedex", re.compile(r"\d{15}"), _mod10_ok),
    ("fedex", re.compile(r"\d{12}"), _fedex12_ok),
    ("dhl", re.compile(r"\d{10,11}"), _dhl_ok),
)
_IMPB = re.compile(r"420(\d{5}|\d{9})\x1d?(9[1-5]\d{20}|9[1-5]\d{24})")


def split_aim(raw: str) -> tuple[str | None, str]:
    """Split an AIM symbology identifier (``]C1``) off the front of a scan, if there is one."""
    if len(raw) >= 3 and raw[0] == "]" and raw[1] in _AIM_NAMES:
        return raw[:3], raw[3:]
    return None, raw


def _symbology(aim: str | None) -> str:
    if aim is None:
        return "unknown"
    name = _AIM_NAMES[aim[1]]
    return f"gs1-{name}" if aim in _GS1_AIM else name


def _carrier_match(payload: str) -> tuple[Carrier, bool] | None:
    first_failure: Carrier | None = None
    for carrier, pattern, check in _RULES:
        if pattern.fullmatch(payload):
            if check(payload):
                return carrier, True
            first_failure = first_failure or carrier
    return None if first_failure is None else (first_failure, False)


def decode(raw: str) -> Barcode:
    """Decode one scan (AIM prefix and GS separators allowed) into a :class:`Barcode`."""
    aim, payload = split_aim(raw.strip("\r\n\t"))
    symbology = _symbology(aim)
    impb = _IMPB.fullmatch(payload)
    if impb:  # USPS IMpb: 420 + ZIP routing prefix, then the tracking number
        number = impb.group(2)
        ok = _mod10_ok(number)
        return Barcode(
            raw,
            symbology,
            "usps",
            number,
            ok,
            {"420": impb.group(1)},
            reason=None if ok else "CHECK_DIGIT_FAILED",
        )
    if aim is not None and aim[1] == "E":
        return Barcode(
            raw,
            symbology,
            "unknown",
            None,
            _mod10_ok(payload) if payload.isdigit() else False,
            {},
            reason="NOT_A_SHIPPING_LABEL",
        )
    compact = payload.replace(" ", "").upper()
    if aim not in _GS1_AIM:
        match = _carrier_match(compact)
        if match is not None:
            carrier, ok = match
            return Barcode(
                raw, symbology, carrier, compact, ok, {}, reason=None if ok else "CHECK_DIGIT_FAILED"
            )
    if aim in _GS1_AIM or (payload[:2] == "00" and len(payload) >= 20):
        elements, sscc, ok = gs1.parse(payload)
        if elements:
            return Barcode(
                raw,
                symbology,
                "gs1",
                sscc,
                ok,
                elements,
                sscc=sscc,
                reason=None if ok else "CHECK_DIGIT_FAILED",
            )
    return Barcode(raw, symbology, "unknown", None, False, {}, reason="UNKNOWN_BARCODE")
