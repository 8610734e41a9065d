"""Loading and running the on-device risk model (full-integer int8 TFLite)."""

from __future__ import annotations

from prescreen.errors import ModelLoadError
from prescreen.screening import RiskModel


def load_risk_model(path: str | None = None) -> RiskModel:
    """Load the shipped model (or ``path``)."""
    raise ModelLoadError("no model shipped yet")
