"""The shadow report: how a model in shadow mode would have screened, next to the live one.

A model delivered with ``shadow = true`` scores every parcel into its verdict record
(``screening.shadow``: version, score, would_raise) without changing any verdict. Before it is
made live, customs reads per station, over the same parcels: how often the live model raised a
parcel the rules cleared, how often the shadow would have, and how often they agree. A shadow
model that would raise far more parcels than the live one would slow the supply chain. Where
customs outcomes arrived (``outcome`` downlink messages, labelled as in :mod:`.labels`), the
report adds each model's precision (of its raises, how many customs found something in) and
recall (of the parcels customs found something in, how many it raised).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping
from typing import Any

from prescreen.sync.labels import labels_by_record

MODEL_FINDINGS = frozenset({"MODEL_ELEVATED_RISK", "MODEL_HIGH_RISK"})
BUDGET = 0.03  # the stations' default [screening] model_review_budget
PRECISION_TOLERANCE = 0.05  # how much lower the shadow's precision may be than live's
MIN_RAISES = 5  # as the station's monitor (prescreen.risk.model_monitor): never judge a couple of raises


@dataclasses.dataclass
class StationShadow:
    """Counts for one station and one (live, shadow) pair of model versions."""

    site_id: str
    device_id: str
    live_version: str | None
    shadow_version: str
    parcels: int = 0
    live_raised: int = 0
    shadow_raised: int = 0
    both_raised: int = 0
    labelled: int = 0  # parcels with a deciding customs outcome
    found: int = 0  # of those, the ones customs found something in (label 1)
    live_raised_labelled: int = 0
    live_hits: int = 0
    shadow_raised_labelled: int = 0
    shadow_hits: int = 0

    def count_outcome(self, label: int, live: bool, would: bool) -> None:
        """Add one parcel customs decided on."""
        self.labelled += 1
        self.found += label
        self.live_raised_labelled += live
        self.live_hits += live and label == 1
        self.shadow_raised_labelled += would
        self.shadow_hits += would and label == 1

    def as_json(self) -> dict[str, Any]:
        """One report row, with the shares, and precision and recall where outcomes arrived."""
        agree = self.parcels - (self.live_raised + self.shadow_raised - 2 * self.both_raised)

        def share(part: int, whole: int) -> float | None:
            return round(part / whole, 4) if whole else None

        return {
            **dataclasses.asdict(self),
            "live_precision": share(self.live_hits, self.live_raised_labelled),
            "live_recall": share(self.live_hits, self.found),
            "shadow_precision": share(self.shadow_hits, self.shadow_raised_labelled),
            "shadow_recall": share(self.shadow_hits, self.found),
            "live_raise_share": round(self.live_raised / self.parcels, 4) if self.parcels else 0.0,
            "shadow_raise_share": round(self.shadow_raised / self.parcels, 4) if self.parcels else 0.0,
            "agreement": round(agree / self.parcels, 4) if self.parcels else 0.0,
        }


def shadow_report(records: Iterable[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Per station and model pair, from stored verdict records that carry a shadow score (and the
    downlink records of customs outcomes, for precision and recall). A corrected parcel counts
    once, by the version no correction replaced: its earlier versions would count its raises and
    hits again."""
    records = list(records)
    labels = labels_by_record(records)
    replaced = {
        str((r.get("supersedes") or {}).get("record_id")) for r in records if r.get("kind") == "verdict"
    }
    rows: dict[tuple[str, str, str | None, str], StationShadow] = {}
    for record in records:
        screening = record.get("screening") or {}
        shadow = screening.get("shadow")
        if record.get("kind") != "verdict" or not isinstance(shadow, Mapping):
            continue
        if str(record.get("record_id")) in replaced:
            continue
        key = (
            str(record.get("site_id") or ""),
            str(record.get("device_id") or ""),
            screening.get("model_version"),
            str(shadow.get("model_version")),
        )
        row = rows.setdefault(key, StationShadow(*key))
        live = bool(MODEL_FINDINGS & {r.get("code") for r in screening.get("reasons") or []})
        would = shadow.get("would_raise") is True
        row.parcels += 1
        row.live_raised += live
        row.shadow_raised += would
        row.both_raised += live and would
        label = labels.get(str(record.get("record_id")))
        if label is not None:
            row.count_outcome(label, live, would)
    return [rows[k].as_json() for k in sorted(rows, key=lambda k: (k[0], k[1], str(k[2]), k[3]))]


def promotion_refusal(
    row: Mapping[str, Any], *, budget: float = BUDGET, tolerance: float = PRECISION_TOLERANCE
) -> str | None:
    """Why the evidence of one report row does not support promoting its shadow model (None: it
    does). The shadow must be at least as good as live on the parcels customs decided:

    - some decided parcels at all (no outcomes, no evidence);
    - recall not lower than live's (it must find at least what live found);
    - precision not lower than live's by more than ``tolerance`` (when both raised decided parcels);
    - its raise share at most twice ``budget``, the station's model budget: the line at which the
      station's monitor would quarantine it (so a promoted model is not rolled back at once), and,
      like the monitor, only once it raised at least :data:`MIN_RAISES` parcels.
    """
    if not row["labelled"]:
        return "no customs outcomes on the shadow's parcels yet"
    live_recall, shadow_recall = row["live_recall"], row["shadow_recall"]
    if live_recall is not None and (shadow_recall or 0.0) < live_recall:
        return f"recall {shadow_recall:.0%} is below live's {live_recall:.0%}"
    live_precision, shadow_precision = row["live_precision"], row["shadow_precision"]
    if None not in (live_precision, shadow_precision) and shadow_precision < live_precision - tolerance:
        return f"precision {shadow_precision:.0%} is below live's {live_precision:.0%} (± {tolerance:.0%})"
    if row["shadow_raise_share"] > 2 * budget and row["shadow_raised"] >= MIN_RAISES:
        return (
            f"it would raise {row['shadow_raise_share']:.1%} of parcels, over twice the {budget:.0%} "
            "budget (the station would quarantine it)"
        )
    return None
