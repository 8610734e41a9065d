"""What a finding is, and what the registry of finding codes (:mod:`prescreen.risk.codes`) holds.

Why a registry: every code used to have two English texts (the rule's and the page's), its
seller advice in another table, whether it is the seller's doing or customs-only in two sets, and
the seller advice found a finding's item by parsing the English message. Now each code is one
:class:`Code` (severity, the operator's words and the seller's advice per language, whether it is
the seller's doing, whether it is for customs only), a rule raises a finding through its code
(``codes.WEIGHT_MISMATCH.found(...)``: a code that is not registered is a type error), and a
finding about one order line carries that line as data (:attr:`Finding.item`).
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Mapping
from typing import Any, Literal

Severity = Literal["info", "review", "hold"]
# A committed record carries its findings as {code, severity, message}; a finding about one
# order line says so first ("Item 2: ...", "Item 2 has no ..."), the only way the record format
# (prescreen.record/v2, no extra keys) can carry the line. Written by Finding, read by item_of.
_ITEM = re.compile(r"Item (\d+)\b")


@dataclasses.dataclass(frozen=True)
class Finding:
    """One rule hit; ``item`` is the 1-based order line it is about (None: the parcel's)."""

    code: str
    severity: Severity
    message: str
    item: int | None = None

    def __post_init__(self) -> None:
        named = _ITEM.match(self.message)
        if (int(named.group(1)) if named else None) != self.item:
            raise ValueError(f"{self.code}: message {self.message[:40]!r} does not name item {self.item}")

    def as_json(self) -> dict[str, str]:
        """The record's ``reasons[]`` entry."""
        return {"code": self.code, "severity": self.severity, "message": self.message}


def item_of(reason: Mapping[str, Any]) -> int | None:
    """The order line (1-based) a committed record's ``reasons[]`` entry is about, or None."""
    named = _ITEM.match(str(reason.get("message") or ""))
    return int(named.group(1)) if named else None


@dataclasses.dataclass(frozen=True)
class Code:
    """One finding code: a stable name (the contract with customs: never renamed), the severity
    its rule raises unless it says otherwise, the station page's words and the seller's advice per
    language (``{placeholders}`` filled from the record by :mod:`prescreen.risk.strings`)."""

    code: str
    severity: Severity
    operator: Mapping[str, str]
    seller: Mapping[str, str] | None = None  # None: nothing for the seller to fix
    sellers_doing: bool = True  # counted as the seller's on the scorecard
    customs_only: bool = False  # never on a scorecard or in advice to the trade

    def found(self, message: str, *, severity: Severity | None = None, item: int | None = None) -> Finding:
        """A finding of this code: ``message`` is the record's sentence with the parcel's figures."""
        return Finding(self.code, severity or self.severity, message, item)
