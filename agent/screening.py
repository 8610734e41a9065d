"""Verdict = rules and model together, explained.

The rules say *why* in words; the model adds a calibrated risk score that catches combinations no
single rule flags. The worst severity wins: any ``hold`` finding holds the parcel, any ``review``
finding (or a score over ``review_score``) sends it to review. The model alone never holds a
parcel: its training label means "should be held *or* reviewed", so a high score asks a person to
look (``MODEL_HIGH_RISK``, severity review) and the hold itself comes from a rule's hard
indicator. Without a usable model the agent runs rules-only and says so in every record
(``mode``), so customs never mistakes one for the other.
"""

from __future__ import annotations

import dataclasses
import logging
from typing import Literal, Protocol

from prescreen import filer
from prescreen.config import ScreeningConfig
from prescreen.entry import NO_SETTINGS, EntrySettings
from prescreen.reference import load as load_reference
from prescreen.rules import Finding, ParcelFacts, Rules

log = logging.getLogger("prescreen.screening")
Verdict = Literal["CLEAR", "REVIEW", "HOLD"]


class RiskModel(Protocol):
    """What the screener needs from a model (see :mod:`prescreen.models.runner`)."""

    version: str

    def score_facts(self, facts: ParcelFacts) -> float:
        """Risk in [0, 1] for one parcel."""


@dataclasses.dataclass(frozen=True)
class Screening:
    """The outcome of screening one parcel."""

    verdict: Verdict
    score: float | None
    model_version: str | None
    findings: tuple[Finding, ...]

    @property
    def mode(self) -> str:
        """``rules+model`` when a model scored the parcel, else ``rules-only``."""
        return "rules-only" if self.model_version is None else "rules+model"

    def as_json(self) -> dict[str, object]:
        """The record's ``screening`` object."""
        return {
            "verdict": self.verdict,
            "score": None if self.score is None else round(self.score, 4),
            "model_version": self.model_version,
            "mode": self.mode,
            "reasons": [f.as_json() for f in self.findings],
        }


class Screener:
    """Screens parcels with the rule set and, when given one, a risk model."""

    def __init__(
        self, config: ScreeningConfig, model: RiskModel | None = None, *, entry: EntrySettings = NO_SETTINGS
    ) -> None:
        self.config = config
        self.rules = Rules(load_reference(), config)
        self.model = model
        self.entry = entry  # [entry] settings: the filer findings and the station's records use them

    def screen(self, facts: ParcelFacts) -> Screening:
        """Screen one parcel; never raises for bad order data (that is a finding)."""
        findings = self.rules.evaluate(facts)
        findings += filer.findings(facts, findings, self.entry)
        score: float | None = None
        version: str | None = None
        if self.model is not None and facts.order is not None:
            score = self.model.score_facts(facts)
            version = self.model.version
            if score >= self.config.hold_score:
                findings.append(
                    Finding(
                        "MODEL_HIGH_RISK", "review", f"Risk model score {score:.2f} is very high: check it."
                    )
                )
            elif score >= self.config.review_score:
                findings.append(
                    Finding(
                        "MODEL_ELEVATED_RISK",
                        "review",
                        f"Risk model score {score:.2f} is above the review line.",
                    )
                )
        severities = {f.severity for f in findings}
        verdict: Verdict = "HOLD" if "hold" in severities else "REVIEW" if "review" in severities else "CLEAR"
        return Screening(verdict, score, version, tuple(findings))
