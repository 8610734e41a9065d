"""Reproducible training pipeline: synthetic data → TensorFlow MLP → full-int8 TFLite → model card.

Run with ``make model`` (TensorFlow lives in its own virtualenv, extra ``train``; never at run time).
Everything is seeded, so the same code produces the same data, split and metrics.

Synthetic data assumptions (no real personal data; drawn from the public risk indicators in
shared/docs/domain.md §5): most parcels are ordinary consumer goods with plausible value per kg and
a measured weight within a few percent of the declared one. Positives (should be held or
reviewed) are parcels with precursor or pill-press wording (including misspellings), vague
one-word descriptions with low values, chemical chapters in a B2C parcel, large weight
discrepancies, or implausibly low value per kg. 4 % label noise stands in for the ambiguity of real
outcomes. The held-out test split is generated, split off, and never seen by training or by the
conversion's representative dataset.
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import json
import random
from pathlib import Path
from typing import Any

from prescreen.models import features
from prescreen.models.evaluation import metrics

SEED = 20261123
VERSION = "risk-v1"
REVIEW, HOLD = 0.5, 0.85  # the ScreeningConfig defaults

_GOODS = [
    ("wireless earbuds", "8518300000", 15, 60, 0.1, 0.3),
    ("cotton t-shirt", "6109100012", 5, 25, 0.1, 0.3),
    ("running shoes", "6404110000", 20, 90, 0.5, 1.2),
    ("phone case silicone", "3926909990", 2, 15, 0.03, 0.1),
    ("wooden puzzle", "9503006000", 5, 30, 0.2, 0.6),
    ("leather wallet", "4202310000", 8, 60, 0.1, 0.2),
    ("led desk lamp", "9405110000", 10, 50, 0.5, 1.5),
    ("ceramic mug", "6912004400", 4, 20, 0.3, 0.6),
    ("paperback book", "4901990000", 5, 25, 0.2, 0.8),
    ("usb charging cable", "8544429000", 2, 15, 0.03, 0.1),
    ("yoga mat", "9506910030", 10, 40, 0.8, 1.5),
    ("stainless water bottle", "9617001000", 8, 35, 0.3, 0.6),
    ("bluetooth speaker", "8518220000", 15, 80, 0.3, 1.0),
    ("hair dryer", "8516310000", 15, 60, 0.5, 1.0),
    ("smartwatch band", "9113900000", 3, 20, 0.02, 0.08),
    ("kitchen knife set", "8211910000", 15, 70, 0.5, 1.5),
]
_RISK_WORDS = [
    "4-piperidone",
    "4 piperidone",
    "piperidone hcl",
    "npp powder",
    "anpp",
    "1-boc-4-piperidone",
    "boc 4 piperidinone",
    "propionyl chloride",
    "fentanil",
    "tablet press",
    "pill press",
    "tdp-5",
    "tdp 5 machine",
    "punch die m30",
    "candy press",
    "sugar press mold",
    "pill maker",
    "4-anilinopiperidine",
]
_COVER = [
    "chemical raw material",
    "research chemical",
    "food additive",
    "machine parts",
    "mold",
    "cosmetic raw material",
    "industrial powder",
]
# Everyday listing words added to both classes, so that words the model never saw as risk signals
# (colours, materials, audiences, sizes) do not hash into buckets it learned from risk words alone.
_FILLER = [
    "women's",
    "men's",
    "kids",
    "black",
    "white",
    "red",
    "blue",
    "green",
    "pink",
    "grey",
    "large",
    "small",
    "medium",
    "set",
    "pack",
    "new",
    "cotton",
    "leather",
    "plastic",
    "steel",
    "wooden",
    "ceramic",
    "silicone",
    "glass",
    "knitted",
    "portable",
    "digital",
    "wireless",
    "usb",
    "rechargeable",
    "waterproof",
    "for",
    "with",
    "and",
    "home",
    "kitchen",
    "office",
    "travel",
    "outdoor",
    "sports",
    "summer",
    "winter",
    "classic",
    "premium",
    "mini",
    "pro",
    "2",
    "3",
    "10",
    "100",
    "ml",
    "cm",
    "mm",
    "pcs",
    "piece",
    "pair",
    "english",
    "language",
    "case",
    "cover",
    "holder",
    "stand",
    "charging",
    "port",
    "upper",
    "sole",
    "sleeve",
]
_VAGUE = ["gift", "parts", "sample", "accessories", "goods", "stuff", "items", "merchandise", "misc"]


def synth_row(rng: random.Random) -> dict[str, Any]:
    """One synthetic parcel with its label (1 = should be held or reviewed)."""
    kind = rng.random()
    name, hts, vmin, vmax, wmin, wmax = rng.choice(_GOODS)
    declared = round(rng.uniform(wmin, wmax), 3)
    value = round(rng.uniform(vmin, vmax), 2)
    measured = declared * rng.uniform(0.97, 1.05) + 0.02
    description, label = name, 0
    if kind < 0.06:
        description = f"{rng.choice(_RISK_WORDS)} {rng.choice(['99%', 'powder', '', 'machine', 'kit'])}"
        hts = rng.choice(["2933399100", "3824999000", "8479899000", "8480719000", "2942000000"])
        label = 1
    elif kind < 0.09:
        description = rng.choice(_COVER)
        hts = rng.choice(["2933399100", "3824999000", "2915900000", "3302900000"])
        value = round(rng.uniform(5, 40), 2)
        label = 1
    elif kind < 0.15:
        description = rng.choice(_VAGUE)
        value = round(rng.uniform(0.5, 8), 2)
        label = 1
    elif kind < 0.20:
        measured = declared * rng.uniform(2.0, 6.0)
        label = 1
    elif kind < 0.24:
        value = round(rng.uniform(0.2, 1.5), 2)
        declared = measured = round(rng.uniform(1.5, 4.0), 3)
        label = 1
    elif kind < 0.30:
        description = f"{name} {rng.choice(['gift', 'set', 'pack', 'new'])}"
    if description not in _VAGUE:
        extra = rng.sample(_FILLER, rng.randint(0, 4))
        description = " ".join([*extra[:2], description, *extra[2:]])
    if rng.random() < 0.04:
        label = 1 - label
    return {
        "description": description,
        "hts_code": hts,
        "declared_value_usd": value,
        "declared_weight_kg": declared,
        "measured_weight_kg": round(measured, 3),
        "origin_country": rng.choice(["CN", "VN", "IN", "BD", "TR", "MX"]),
        "quantity": rng.choice([1, 1, 1, 2, 3]),
        "label": label,
    }


def main() -> None:  # pragma: no cover - needs TensorFlow; run by `make model`
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default=str(Path(__file__).parent))
    parser.add_argument("--rows", type=int, default=30000)
    args = parser.parse_args()
    import numpy as np
    import tensorflow as tf

    rng = random.Random(SEED)
    tf.keras.utils.set_random_seed(SEED)
    rows = [synth_row(rng) for _ in range(args.rows)]
    split = int(len(rows) * 0.8)
    train_rows, test_rows = rows[:split], rows[split:]
    x_train = np.array([features.vectorize(r) for r in train_rows], dtype=np.float32)
    y_train = np.array([r["label"] for r in train_rows], dtype=np.float32)
    x_test = np.array([features.vectorize(r) for r in test_rows], dtype=np.float32)
    y_test = [int(r["label"]) for r in test_rows]

    model = tf.keras.Sequential(
        [
            tf.keras.Input(shape=(len(features.NAMES),)),
            tf.keras.layers.Dense(32, activation="relu"),
            tf.keras.layers.Dense(16, activation="relu"),
            tf.keras.layers.Dense(1, activation="sigmoid"),
        ]
    )
    model.compile(optimizer=tf.keras.optimizers.Adam(0.005), loss="binary_crossentropy")
    model.fit(x_train, y_train, epochs=25, batch_size=256, validation_split=0.1, verbose=0)
    float_scores = [float(s) for s in model.predict(x_test, verbose=0)[:, 0]]

    def representative() -> Any:
        for row in x_train[:500]:
            yield [row.reshape(1, -1)]

    converter = tf.lite.TFLiteConverter.from_keras_model(model)
    converter.optimizations = [tf.lite.Optimize.DEFAULT]
    converter.representative_dataset = representative
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    converter.inference_input_type = tf.int8
    converter.inference_output_type = tf.int8
    content = converter.convert()

    out = Path(args.out)
    (out / f"{VERSION}.tflite").write_bytes(content)
    manifest = {
        "format": 1,
        "version": VERSION,
        "file": f"{VERSION}.tflite",
        "sha256": hashlib.sha256(content).hexdigest(),
        "feature_spec": features.spec(),
        "thresholds": {"review": REVIEW, "hold": HOLD},
    }
    (out / "model.json").write_text(json.dumps(manifest, indent=1) + "\n")

    from prescreen.models.runner import load_risk_model

    runner = load_risk_model(out)
    int8_scores = [runner.score(list(map(float, row))) for row in x_test]
    agreement = sum(
        (a >= REVIEW) == (b >= REVIEW) for a, b in zip(float_scores, int8_scores, strict=True)
    ) / len(x_test)
    report = {
        "int8": metrics(y_test, int8_scores),
        "float": metrics(y_test, float_scores),
        "float_int8_agreement": round(agreement, 4),
        "mean_abs_score_diff": round(
            float(np.mean(np.abs(np.array(float_scores) - np.array(int8_scores)))), 4
        ),
        "model_bytes": len(content),
        "train_rows": len(train_rows),
        "test_rows": len(test_rows),
    }
    (out / "metrics.json").write_text(json.dumps(report, indent=1) + "\n")
    with (out / "holdout.csv").open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(test_rows[0]))
        writer.writeheader()
        writer.writerows(test_rows[:2000])
    (out / "MODEL_CARD.md").write_text(model_card(report))
    print(json.dumps(report, indent=1))


def model_card(report: dict[str, Any]) -> str:
    """The model card, written from the held-out evaluation of this very run."""
    m, f = report["int8"], report["float"]
    return f"""# Model card: {VERSION}

**Intended use.** Rank parcels at the packing station by risk so that a CLEAR from the rules can be
raised to REVIEW (score ≥ {REVIEW}; ≥ {HOLD} is reported as MODEL_HIGH_RISK). It never lowers a
rule's verdict and never holds a parcel alone (its label means "hold or review"); it flags
parcels for a person to look at.

**Not for.** Judging people or sellers; any use on data unlike the features below; a final
customs decision.

**Model.** MLP {len(features.NAMES)}→32→16→1 (ReLU, sigmoid), full-integer int8 TensorFlow Lite,
{report["model_bytes"]} bytes. Inputs and output are int8; scores are dequantized in the runner.

**Features** (spec `{features.SPEC_VERSION}`, `model.json` → `feature_spec`): scaled declared
value, declared and measured weight, their ratio, value per kg, quantity, tariff-code shape and
chapter group flags, description length, and {features.HASH_BUCKETS} CRC32-hashed description
tokens. The same function (`prescreen.models.features.vectorize`) computes them for training and
at the station.

**Data.** {report["train_rows"]} synthetic training rows and {report["test_rows"]} held-out rows
generated by `prescreen.models.train` (seed {SEED}) from the public risk indicators in the
product's domain notes: precursor and pill-press wording with misspellings, cover descriptions on
chemical chapters, vague descriptions with low values, large weight discrepancies, implausibly
low value per kg; 4 % label noise. No real personal or trade data.

**Metrics on the held-out split** (never seen in training or quantization):

| metric | int8 (shipped) | float |
|---|---|---|
| PR-AUC (average precision) | {m["pr_auc"]} | {f["pr_auc"]} |
| precision in the top 5 % of scores | {m["precision_at_5pct"]} | {f["precision_at_5pct"]} |
| recall at the HOLD threshold ({HOLD}) | {m["recall_at_hold"]} | {f["recall_at_hold"]} |
| recall at the REVIEW threshold ({REVIEW}) | {m["recall_at_review"]} | {f["recall_at_review"]} |

Float vs int8: same REVIEW decision on {report["float_int8_agreement"]:.2%} of held-out parcels;
mean absolute score difference {report["mean_abs_score_diff"]}.

**Limits.** Synthetic data encodes our assumptions, so these figures say the model learned them,
not that it finds real contraband at this rate. Retrain on outcome labels (RFI/RFS/DNL results,
seizures) before trusting the score for more than ranking. Descriptions in languages other than
English are out of distribution.
"""


if __name__ == "__main__":  # pragma: no cover
    main()
