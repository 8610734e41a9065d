"""Verdict = rules and model together, explained.

The rules say *why* in words; the model adds a risk score that catches combinations no single
rule flags. The worst severity wins: any ``hold`` finding holds the parcel, any ``review`` finding
sends it to review. The model alone never holds a parcel and only ever *raises* a parcel the rules
cleared (``MODEL_ELEVATED_RISK``/``MODEL_HIGH_RISK``, severity review), at a threshold derived
from a review budget (``[screening] model_review_budget``: the share of parcels the model alone
may raise, calibrated on its training mix and stated in its card), so a model that learned the
wrong thing costs at most that share of operators' time. Without a usable model (or while the
station has quarantined it) the agent runs rules-only and says so in every record (``mode``).

A *shadow* model scores every parcel into the record (``screening.shadow``) without changing
any verdict, so customs can compare it with the live one before promoting it.
"""

from __future__ import annotations

import dataclasses
import logging
from typing import Literal, Protocol

from prescreen.models import lexicon as lexicon_module
from prescreen.models.nomenclature import HtsTable, load_hts_table
from prescreen.models.signals import ParcelSignals, measure
from prescreen.ops.config import ScreeningConfig
from prescreen.risk import codes, filer
from prescreen.risk.entry import NO_SETTINGS, EntrySettings
from prescreen.risk.findings import Finding
from prescreen.risk.reference import load as load_reference
from prescreen.risk.rules import ParcelFacts, Rules

log = logging.getLogger("prescreen.screening")
Verdict = Literal["CLEAR", "REVIEW", "HOLD"]


class RiskModel(Protocol):
    """What the screener needs from a model (see :mod:`prescreen.models.runner`)."""

    version: str

    def score_signals(self, signals: ParcelSignals) -> float:
        """Risk in [0, 1] for one parcel."""

    def threshold_for(self, budget: float) -> float:
        """The score above which the model alone raises at most ``budget`` of parcels."""

    def expected_raise_rate(self, threshold: float) -> float:
        """The share of its training mix the model raised at ``threshold`` (its card's rate)."""


@dataclasses.dataclass(frozen=True)
class Screening:
    """The outcome of screening one parcel."""

    verdict: Verdict
    score: float | None
    model_version: str | None
    findings: tuple[Finding, ...]
    model_raised: bool = False  # the model alone turned a CLEAR into REVIEW
    quarantined: str | None = None  # version of a quarantined model not used for this parcel
    shadow: dict[str, object] | None = None

    @property
    def mode(self) -> str:
        """``rules+model`` when a model scored the parcel, else ``rules-only``."""
        return "rules-only" if self.model_version is None else "rules+model"

    def as_json(self) -> dict[str, object]:
        """The record's ``screening`` object."""
        result: dict[str, object] = {
            "verdict": self.verdict,
            "score": None if self.score is None else round(self.score, 4),
            "model_version": self.model_version,
            "mode": self.mode,
            "reasons": [f.as_json() for f in self.findings],
        }
        if self.quarantined:
            result["quarantined_model"] = self.quarantined
        if self.shadow is not None:
            result["shadow"] = self.shadow
        return result


def _verdict(findings: list[Finding]) -> Verdict:
    severities = {f.severity for f in findings}
    return "HOLD" if "hold" in severities else "REVIEW" if "review" in severities else "CLEAR"


class Screener:
    """Screens parcels with the rule set and, when given one, a risk model (and a shadow model)."""

    def __init__(
        self,
        config: ScreeningConfig,
        model: RiskModel | None = None,
        *,
        shadow: RiskModel | None = None,
        quarantined: bool = False,
        entry: EntrySettings = NO_SETTINGS,
    ) -> None:
        self.config = config
        self.lexicon = lexicon_module.load()
        self.rules = Rules(load_reference(), self.lexicon, config)
        self.model = model
        self.entry = entry  # [entry] settings: the filer findings and the station's records use them
        self.shadow = shadow
        self.quarantined = quarantined
        self.hts_table: HtsTable | None = load_hts_table(config.hts_table) if config.hts_table else None
        self.threshold = self._threshold(model)

    def with_config(self, config: ScreeningConfig) -> Screener:
        """This screener with new settings (from customs): same model, shadow, quarantine, entry."""
        return Screener(
            config, self.model, shadow=self.shadow, quarantined=self.quarantined, entry=self.entry
        )

    def with_model(self, model: RiskModel | None) -> Screener:
        """This screener with another live model (a new model is not quarantined)."""
        return Screener(self.config, model, shadow=self.shadow, entry=self.entry)

    def with_shadow(self, shadow: RiskModel | None) -> Screener:
        """This screener with a shadow model scoring beside the live one."""
        return Screener(
            self.config, self.model, shadow=shadow, quarantined=self.quarantined, entry=self.entry
        )

    def _threshold(self, model: RiskModel | None) -> float:
        if self.config.review_score is not None:
            return self.config.review_score
        return model.threshold_for(self.config.model_review_budget) if model is not None else 1.0

    def measure(self, facts: ParcelFacts) -> ParcelSignals:
        """The parcel's signals: values in USD with the site's certified rate table (``[entry]
        usd_rates_path``), else the shipped approximate one; the HTS table if one is loaded."""
        weight = None if facts.weight_kg is None else float(facts.weight_kg)
        rates = self.entry.rates.usd_per_unit or None
        return measure(self.lexicon, facts.order, weight, rates=rates, hts_table=self.hts_table)

    def screen(self, facts: ParcelFacts) -> Screening:
        """Screen one parcel; never raises for bad order data (that is a finding)."""
        signals = self.measure(facts)
        findings = self.rules.evaluate(facts, signals)
        findings += filer.findings(facts, findings, self.entry)
        rules_clear = _verdict(findings) == "CLEAR"
        score: float | None = None
        version: str | None = None
        raised = False
        live = self.model if not self.quarantined else None
        if live is not None and facts.order is not None:
            score = live.score_signals(signals)
            version = live.version
            if score >= self.threshold and rules_clear:
                raised = True
                findings.append(self._model_finding(score))
        shadow = None
        if self.shadow is not None and facts.order is not None:
            shadow_score = self.shadow.score_signals(signals)
            shadow_threshold = self.shadow.threshold_for(self.config.model_review_budget)
            shadow = {
                "model_version": self.shadow.version,
                "score": round(shadow_score, 4),
                "would_raise": rules_clear and shadow_score >= shadow_threshold,
            }
        return Screening(
            _verdict(findings),
            score,
            version,
            tuple(findings),
            model_raised=raised,
            quarantined=getattr(self.model, "version", None) if self.quarantined else None,
            shadow=shadow,
        )

    def _model_finding(self, score: float) -> Finding:
        if score >= max(self.config.hold_score, self.threshold):
            return codes.MODEL_HIGH_RISK.found(f"Risk model score {score:.2f} is very high: check it.")
        return codes.MODEL_ELEVATED_RISK.found(
            f"Risk model score {score:.2f} is above the review line {self.threshold:.2f}."
        )
