"""Model metrics, shared by training (the model card) and ``prescreen model eval`` (a site's own data).

One implementation so the figures a site measures on its labelled parcels are computed exactly as
the model card's. Rows are the flat CSV shape of :func:`prescreen.models.features.row_from_order`;
optional columns may be missing (a missing measured weight is treated as unknown, not zero).
"""

from __future__ import annotations

import csv
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any

from prescreen.errors import ModelError
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
    labels: list[int], scores: list[float], *, review: float = DEFAULT_REVIEW, hold: float = DEFAULT_HOLD
) -> dict[str, float]:
    """PR-AUC, precision in the top 5 % of scores, recall at the HOLD and REVIEW thresholds."""
    n = len(labels)
    ranked = sorted(zip(scores, labels, strict=True), key=lambda p: -p[0])
    top = ranked[: max(1, n // 20)]
    positives = sum(labels)

    def recall(threshold: float) -> float:
        return (
            round(sum(1 for s, lab in ranked if s >= threshold and lab) / positives, 4) if positives else 0.0
        )

    return {
        "n": n,
        "positives": positives,
        "pr_auc": round(average_precision(labels, scores), 4),
        "precision_at_5pct": round(sum(label for _, label in top) / len(top), 4) if n else 0.0,
        "recall_at_hold": recall(hold),
        "recall_at_review": recall(review),
    }


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
) -> dict[str, float]:
    """Score every row with the same features the agent uses and compute :func:`metrics`."""
    labels: list[int] = []
    scores: list[float] = []
    for row in rows:
        labels.append(int(str(row["label"]).strip()))
        scores.append(score(features.vectorize(row)))
    return metrics(labels, scores, review=review, hold=hold)
