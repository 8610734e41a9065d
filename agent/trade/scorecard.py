"""Per-seller data-quality scorecard, computed locally from the outbox.

Feedback to the trade: the station is the one place that sees a seller's declared data next to
the parcel on the scale, so it can tell each seller what share of their parcels had each finding,
how many were held, how far declared weights and values were off, and whether that is getting
better. Customs feedback messages about a seller or one of its records are folded in.

Which records count: each parcel once, as the seller's data stood. A version that only completed a
late order (``supersedes.reason = order_arrived``) replaces the first record; a compliance
correction (``correction``) does not, because it is the warehouse's fix, not the seller's data: it
is counted as a correction instead.
"""

from __future__ import annotations

import re
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from prescreen.core.records import Record, parse_time
from prescreen.risk import codes, strings

NO_SELLER = "(no order data)"
WEIGHT_FINDINGS = frozenset({"WEIGHT_MISMATCH"})
VALUE_FINDINGS = frozenset({"VALUE_PER_KG_LOW", "DQ_VALUE_MISSING"})
TREND_MIN_PARCELS = 10  # per half of the window; fewer and the trend says "n/a"
TREND_STEADY_POINTS = 5.0  # a change of the finding share below this many points is "steady"


def parse_since(text: str, now: datetime) -> datetime:
    """``7d``, ``24h``, ``90m`` before ``now``, or an ISO date/time.

    Raises:
        ValueError: neither form.
    """
    match = re.fullmatch(r"(\d+)([dhm])", text.strip())
    if match:
        amount, unit = int(match.group(1)), match.group(2)
        return now - timedelta(**{{"d": "days", "h": "hours", "m": "minutes"}[unit]: amount})
    return parse_time(text)


def _when(record: Record) -> datetime:
    return parse_time(str(record["created_at"]))


def seller_of(record: Record) -> str:
    """The seller a record is scored against (its name, or :data:`NO_SELLER`)."""
    seller = (record.get("order") or {}).get("seller") or {}
    return str(seller.get("name") or NO_SELLER)


@dataclass
class SellerScore:
    """One seller's figures over the window."""

    seller: str
    parcels: int = 0
    verdicts: Counter[str] = field(default_factory=Counter)
    findings: Counter[str] = field(default_factory=Counter)
    with_seller_finding: int = 0
    weight_checked: int = 0
    weight_delta_pct: list[float] = field(default_factory=list)
    corrected: int = 0
    outcomes: Counter[str] = field(default_factory=Counter)
    feedback: list[str] = field(default_factory=list)
    halves: list[list[int]] = field(default_factory=lambda: [[0, 0], [0, 0]])  # [parcels, with finding]
    examples: dict[str, Record] = field(default_factory=dict)

    def share(self, count: int) -> float:
        """``count`` as a percentage of this seller's parcels (one decimal)."""
        return round(100.0 * count / self.parcels, 1) if self.parcels else 0.0

    @property
    def trend(self) -> str:
        """improving / worsening / steady (share of parcels with a seller finding, second half of
        the window against the first), or n/a with too few parcels."""
        (first_n, first_f), (second_n, second_f) = self.halves
        if min(first_n, second_n) < TREND_MIN_PARCELS:
            return "n/a"
        change = 100.0 * (second_f / second_n - first_f / first_n)
        if abs(change) < TREND_STEADY_POINTS:
            return "steady"
        return "worsening" if change > 0 else "improving"

    def as_json(self, language: str = "en") -> dict[str, Any]:
        """Everything, with the seller-facing advice for each finding in ``language``."""
        advice = {}
        for code, record in self.examples.items():
            for found, text in strings.seller_advice(record, language):
                if found == code:
                    advice[code] = text
                    break
        deltas = self.weight_delta_pct
        return {
            "seller": self.seller,
            "parcels": self.parcels,
            "held": self.verdicts["HOLD"],
            "held_pct": self.share(self.verdicts["HOLD"]),
            "review_pct": self.share(self.verdicts["REVIEW"]),
            "with_seller_finding_pct": self.share(self.with_seller_finding),
            "findings": {
                code: {"parcels": n, "pct": self.share(n)} for code, n in self.findings.most_common()
            },
            "weight_mismatch_pct": self.share(sum(self.findings[c] for c in WEIGHT_FINDINGS)),
            "weight_checked": self.weight_checked,  # parcels with a declared and a measured weight
            "mean_weight_delta_pct": round(sum(deltas) / len(deltas), 1) if deltas else None,
            "value_flag_pct": self.share(sum(self.findings[c] for c in VALUE_FINDINGS)),
            "corrected": self.corrected,
            "outcomes": dict(self.outcomes),
            "feedback": list(self.feedback),
            "trend": self.trend,
            "advice": advice,
        }


def _weight_delta_pct(record: Record) -> float | None:
    declared = (record.get("order") or {}).get("declared_weight_kg")
    measured = (record.get("parcel") or {}).get("measured_weight_kg")
    if not declared or measured is None:
        return None
    return abs(float(measured) - float(declared)) / float(declared) * 100.0


def _count_parcel(score: SellerScore, record: Record, *, second_half: bool) -> None:
    """Add one parcel's final verdict to its seller's score (``second_half`` of the window: the trend)."""
    score.parcels += 1
    score.verdicts[record["screening"]["verdict"]] += 1
    # customs-only risk findings never reach a seller's scorecard (they would tip off a smuggler)
    found = {r["code"] for r in record["screening"]["reasons"]} - codes.CUSTOMS_ONLY
    score.findings.update(found)
    for code in found:
        score.examples.setdefault(code, record)
    seller_finding = bool(found - codes.NOT_SELLERS)
    score.with_seller_finding += seller_finding
    half = score.halves[second_half]
    half[0] += 1
    half[1] += seller_finding
    delta = _weight_delta_pct(record)
    if delta is not None:
        score.weight_checked += 1
        score.weight_delta_pct.append(delta)


def scorecard(
    records: list[Record],
    *,
    since: datetime,
    now: datetime,
    feedback: list[dict[str, Any]] | None = None,
) -> list[SellerScore]:
    """Scores per seller over ``[since, now]``, most parcels first."""
    in_window = [r for r in records if since <= _when(r) <= now]
    verdicts = [r for r in in_window if r.get("kind") == "verdict"]
    replaced = {
        r["supersedes"]["record_id"]
        for r in verdicts
        if (r.get("supersedes") or {}).get("reason") == "order_arrived"
    }
    by_id = {r["record_id"]: r for r in records if r.get("kind") == "verdict"}
    scores: dict[str, SellerScore] = defaultdict(lambda: SellerScore(""))
    middle = since + (now - since) / 2

    def score_for(record: Record) -> SellerScore:
        name = seller_of(record)
        score = scores[name]
        score.seller = name
        return score

    for record in verdicts:
        supersedes = record.get("supersedes") or {}
        if supersedes.get("reason") == "correction":
            original = by_id.get(supersedes["record_id"], record)
            score_for(original).corrected += 1
            continue
        if record["record_id"] in replaced:
            continue
        _count_parcel(score_for(record), record, second_half=_when(record) >= middle)
    for record in in_window:
        if record.get("kind") == "outcome":
            verdict = by_id.get(record["outcome"]["refers_to"])
            if verdict is not None:
                score_for(verdict).outcomes[record["outcome"]["outcome"]] += 1
    for message in feedback or []:
        target = by_id.get(str(message.get("record_id"))) if message.get("record_id") else None
        name = seller_of(target) if target is not None else message.get("seller")
        if name:
            scores[str(name)].seller = str(name)
            scores[str(name)].feedback.append(str(message.get("text")))
    return sorted(scores.values(), key=lambda s: (-s.parcels, s.seller))


def table(sellers: list[dict[str, Any]]) -> str:
    """A fixed-width table of :meth:`SellerScore.as_json` results, then each seller's top findings
    with what to fix and the customs feedback they got."""
    head = (
        f"{'seller':<34} {'parcels':>7} {'held%':>6} {'review%':>7} {'data%':>6} {'weight%':>7} "
        f"{'value%':>6} {'fixed':>5} {'trend':<9}"
    )
    lines = [head, "-" * len(head)]
    for j in sellers:
        lines.append(
            f"{j['seller'][:34]:<34} {j['parcels']:>7} {j['held_pct']:>6} {j['review_pct']:>7} "
            f"{j['with_seller_finding_pct']:>6} {j['weight_mismatch_pct']:>7} {j['value_flag_pct']:>6} "
            f"{j['corrected']:>5} {j['trend']:<9}"
        )
    for j in sellers:
        top = [(code, f) for code, f in j["findings"].items() if code in j["advice"]][:3]
        if not top and not j["feedback"]:
            continue
        lines.append("")
        lines.append(f"{j['seller']}:")
        for code, found in top:
            lines.append(f"  {found['pct']:>5}% {code}: {j['advice'][code]}")
        for text in j["feedback"]:
            lines.append(f"  customs feedback: {text}")
    return "\n".join(lines)


CSV_COLUMNS = (
    "seller",
    "parcels",
    "held",
    "held_pct",
    "review_pct",
    "with_seller_finding_pct",
    "weight_mismatch_pct",
    "mean_weight_delta_pct",
    "value_flag_pct",
    "corrected",
    "feedback",
    "trend",
)


def csv_rows(scores: list[SellerScore]) -> tuple[list[str], list[dict[str, Any]]]:
    """Columns and rows: the fixed figures, then one ``pct_<CODE>`` column per finding seen."""
    codes = sorted({code for s in scores for code in s.findings})
    rows = []
    for s in scores:
        j = s.as_json()
        row = {c: j[c] for c in CSV_COLUMNS if c != "feedback"}
        row["feedback"] = len(s.feedback)
        row.update({f"pct_{code}": s.share(s.findings[code]) for code in codes})
        rows.append(row)
    return [*CSV_COLUMNS, *(f"pct_{code}" for code in codes)], rows
