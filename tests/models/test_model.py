"""The shipped int8 model: load checks, refusals, feature parity, and the agent's fallback."""

from __future__ import annotations

import json
import shutil
import sys
from decimal import Decimal
from pathlib import Path

import pytest
from prescreen.core.errors import ModelLoadError
from prescreen.drivers.barcodes import decode
from prescreen.models import features, lexicon
from prescreen.models.runner import default_dir, load_risk_model
from prescreen.models.signals import measure
from prescreen.ops.config import ScreeningConfig
from prescreen.risk.rules import ParcelFacts
from prescreen.risk.screening import Screener

ORDER = {
    "declared_weight_kg": 0.5,
    "items": [
        {
            "description": "4-Piperidone hydrochloride powder",
            "hts_code": "2933399100",
            "quantity": 1,
            "unit_value": 25.0,
            "origin_country": "CN",
        }
    ],
}


@pytest.fixture
def model_copy(tmp_path: Path) -> Path:
    target = tmp_path / "model"
    shutil.copytree(default_dir(), target, ignore=shutil.ignore_patterns("*.py", "__pycache__"))
    return target


def test_shipped_model_is_int8_small_and_scores_in_range() -> None:
    model = load_risk_model()
    manifest = json.loads((default_dir() / "model.json").read_text())
    assert (default_dir() / manifest["file"]).stat().st_size <= 100_000
    risky = model.score(features.vectorize(measure(lexicon.load(), ORDER, 0.52)))
    clean_order = {
        "declared_weight_kg": 0.2,
        "items": [
            {
                "description": "wireless earbuds",
                "hts_code": "8518300000",
                "quantity": 1,
                "unit_value": 20.0,
                "origin_country": "CN",
            }
        ],
    }
    clean = model.score(features.vectorize(measure(lexicon.load(), clean_order, 0.21)))
    assert 0.0 <= clean < 0.5 <= risky <= 1.0


def test_the_runtime_is_the_one_for_this_python() -> None:
    """tflite-runtime up to 3.11, its successor ai-edge-litert from 3.12 (CI runs both)."""
    expected = "tflite_runtime" if sys.version_info < (3, 12) else "ai_edge_litert"
    assert load_risk_model().runtime == expected


def test_station_and_eval_rows_compute_the_same_features() -> None:
    """Parity: the vector from a parcel at the station equals the one from a CSV row."""
    csv_row = {
        "description": "4-Piperidone hydrochloride powder",
        "hts_code": "2933399100",
        "declared_value_usd": "25.0",
        "declared_weight_kg": "0.5",
        "measured_weight_kg": "0.52",
        "origin_country": "CN",
        "quantity": "1",
        "label": "1",
    }
    assert features.vectorize(measure(lexicon.load(), ORDER, 0.52)) == features.vectorize_row(csv_row)
    assert len(features.vectorize_row(csv_row)) == len(features.NAMES) == 25


def test_screening_records_model_version_and_score() -> None:
    screener = Screener(ScreeningConfig(), load_risk_model())
    result = screener.screen(
        ParcelFacts(barcode=decode("1Z5R89390357567127"), weight_kg=Decimal("0.52"), order=ORDER)
    )
    assert result.mode == "rules+model"
    assert result.model_version == "risk-v2"
    assert result.score is not None
    assert result.score >= 0.85
    codes = {f.code for f in result.findings}
    # the rules already hold it: the model adds no finding (it only ever raises a CLEAR)
    assert "PRECURSOR_CHEMICAL" in codes
    assert not codes & {"MODEL_HIGH_RISK", "MODEL_ELEVATED_RISK"}
    assert not result.model_raised


def test_corrupt_model_is_refused(model_copy: Path) -> None:
    manifest = json.loads((model_copy / "model.json").read_text())
    tflite = model_copy / manifest["file"]
    tflite.write_bytes(tflite.read_bytes()[:-100] + b"\0" * 100)
    with pytest.raises(ModelLoadError, match=r"SHA-256 .* does not match the manifest"):
        load_risk_model(model_copy)


def test_garbage_with_a_matching_hash_is_refused(model_copy: Path) -> None:
    import hashlib

    manifest = json.loads((model_copy / "model.json").read_text())
    garbage = b"not a flatbuffer" * 10
    (model_copy / manifest["file"]).write_bytes(garbage)
    manifest["sha256"] = hashlib.sha256(garbage).hexdigest()
    (model_copy / "model.json").write_text(json.dumps(manifest))
    with pytest.raises(ModelLoadError, match="not a loadable TFLite model"):
        load_risk_model(model_copy)


def test_unknown_format_version_is_refused(model_copy: Path) -> None:
    manifest = json.loads((model_copy / "model.json").read_text())
    manifest["format"] = 99
    (model_copy / "model.json").write_text(json.dumps(manifest))
    with pytest.raises(ModelLoadError, match="format 99 is not supported"):
        load_risk_model(model_copy)


def test_other_feature_spec_is_refused(model_copy: Path) -> None:
    manifest = json.loads((model_copy / "model.json").read_text())
    manifest["feature_spec"]["version"] = "features-v0"
    (model_copy / "model.json").write_text(json.dumps(manifest))
    with pytest.raises(ModelLoadError, match="feature spec 'features-v0'"):
        load_risk_model(model_copy)


def test_missing_model_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ModelLoadError, match="missing or unreadable model manifest"):
        load_risk_model(tmp_path)


def test_agent_runs_rules_only_when_the_model_is_bad(tmp_path: Path) -> None:
    from prescreen.ops import config
    from prescreen.packing.app import load_model

    conf = config.replace(config.Config(), "screening", model_path=str(tmp_path))
    assert load_model(conf) is None
    result = Screener(conf.screening, None).screen(
        ParcelFacts(barcode=decode("1Z5R89390357567127"), weight_kg=Decimal("0.52"), order=ORDER)
    )
    assert result.mode == "rules-only"
    assert result.verdict == "HOLD"
