"""Model metrics, shared by training (the model card) and ``prescreen model eval`` (a site's own data).

One implementation so the figures a site measures on its labelled parcels are computed exactly as
the model card's. Rows are the flat CSV shape of :func:`prescreen.models.signals.order_from_row`;
optional columns may be missing (a missing measured weight is treated as unknown, not zero).
"""

from __future__ import annotations

import csv
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any

from prescreen.core.errors import ModelError
from prescreen.models import features

REQUIRED_COLUMNS = ("description", "label")
DEFAULT_REVIEW, DEFAULT_HOLD = 0.5, 0.85


def average_precision(labels: list[int], scores: list[float]) -> float:
    """PR-AUC as average precision (the area under the step precision-recall curve)."""
    ranked = sorted(zip(scores, labels, strict=True), key=lambda p: -p[0])
    positives = sum(labels)
    hits, total = 0, 0.0
    for rank, (_, label) in enumerate(ranked, start=1):
        if label:
            hits += 1
            total += hits / rank
    return total / positives if positives else 0.0


def metrics(
    labels: list[int],
    scores: list[float],
    *,
    review: float = DEFAULT_REVIEW,
    hold: float = DEFAULT_HOLD,
    kinds: list[str] | None = None,
) -> dict[str, Any]:
    """PR-AUC, precision in the top 5 % of scores, recall at the HOLD and REVIEW thresholds, the
    share of clean parcels (label 0) the model alone would raise, and with ``kinds`` the recall
    per kind of positive (and the raise share of each kind of negative)."""
    n = len(labels)
    ranked = sorted(zip(scores, labels, strict=True), key=lambda p: -p[0])
    top = ranked[: max(1, n // 20)]
    positives = sum(labels)
    negatives = n - positives

    def recall(threshold: float) -> float:
        return (
            round(sum(1 for s, lab in ranked if s >= threshold and lab) / positives, 4) if positives else 0.0
        )

    report: dict[str, Any] = {
        "n": n,
        "positives": positives,
        "pr_auc": round(average_precision(labels, scores), 4),
        "precision_at_5pct": round(sum(label for _, label in top) / len(top), 4) if n else 0.0,
        "recall_at_hold": recall(hold),
        "recall_at_review": recall(review),
        "review_threshold": round(review, 4),
        "clean_raised_share": round(sum(1 for s, lab in ranked if s >= review and not lab) / negatives, 4)
        if negatives
        else 0.0,
    }
    if kinds is not None:
        per_kind: dict[str, list[bool]] = {}
        for kind, score in zip(kinds, scores, strict=True):
            per_kind.setdefault(kind or "(none)", []).append(score >= review)
        report["raised_share_by_kind"] = {k: round(sum(v) / len(v), 4) for k, v in sorted(per_kind.items())}
    return report


def read_labelled_rows(path: str | Path) -> list[dict[str, Any]]:
    """Rows of a labelled CSV; extra columns are ignored, missing optional ones become empty.

    Raises:
        ModelError: unreadable file, a required column missing, or a label that is not 0 or 1.
    """
    try:
        with open(path, newline="", encoding="utf-8") as handle:
            reader = csv.DictReader(handle)
            columns = set(reader.fieldnames or ())
            missing = [c for c in REQUIRED_COLUMNS if c not in columns]
            if missing:
                raise ModelError(f"{path}: missing column(s) {', '.join(missing)}")
            rows = list(reader)
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise ModelError(f"{path}: cannot read CSV: {exc}") from None
    for number, row in enumerate(rows, start=2):
        if (row.get("label") or "").strip() not in ("0", "1"):
            raise ModelError(f"{path}:{number}: label must be 0 or 1, got {row.get('label')!r}")
        for column in ("measured_weight_kg", "declared_weight_kg"):
            if not (row.get(column) or "").strip():
                row[column] = None
    return rows


def evaluate(
    score: Callable[[list[float]], float],
    rows: Iterable[Mapping[str, Any]],
    *,
    review: float = DEFAULT_REVIEW,
    hold: float = DEFAULT_HOLD,
) -> dict[str, Any]:
    """Score every row with the same features the agent uses and compute :func:`metrics` (with
    per-kind figures when the rows have a ``kind`` column)."""
    labels: list[int] = []
    scores: list[float] = []
    kinds: list[str] = []
    for row in rows:
        labels.append(int(str(row["label"]).strip()))
        scores.append(score(features.vectorize_row(row)))
        kinds.append(str(row.get("kind") or ""))
    return metrics(labels, scores, review=review, hold=hold, kinds=kinds if any(kinds) else None)
