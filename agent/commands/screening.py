"""Commands for whoever answers for the screening itself: ``screen`` (parcels in, verdicts out: batch
and what-if) and ``model eval|train|reinstate`` (measure a model, train one on customs outcomes,
lift a station's quarantine of its model).

Kept together because they share one question (what would the rules and the model say?) and the
options that choose the thresholds and the model.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from prescreen.commands.helpers import (
    EXIT_FAILURE,
    EXIT_OK,
    LOG_FROM_OPTION,
    add_command,
    add_config_option,
    add_json_option,
    load_config,
    post_to_agent,
    print_json,
    subcommands,
)


def _screening_config(args: argparse.Namespace) -> Any:
    """The config ``--config`` names (defaults without it), with ``--model`` and ``--rules-only``."""
    from prescreen.ops import config

    conf = config.load(args.config) if args.config else config.Config()
    changes: dict[str, Any] = {}
    if args.model:
        changes["model_path"] = args.model
    if args.rules_only:
        changes["use_model"] = False
    return config.replace(conf, "screening", **changes) if changes else conf


def cmd_screen(args: argparse.Namespace) -> int:
    """Screen parcel JSON lines from stdin; one verdict JSON line each; exit 1 if a line was bad."""
    from functools import partial

    from prescreen.packing.replay import default_workers, load_screener, screen_lines

    make_screener = partial(load_screener, _screening_config(args))
    # Typed at a terminal, each line is answered at once: no chunks for worker processes there.
    workers = args.workers or (1 if sys.stdin.isatty() else default_workers())
    bad = 0
    for result in screen_lines(sys.stdin, make_screener, workers=workers):
        bad += "error" in result
        print_json(result, flush=True)
    return EXIT_FAILURE if bad else EXIT_OK


def cmd_model_eval(args: argparse.Namespace) -> int:
    """Score a labelled CSV with the model and print PR-AUC, precision@5 %, recall at HOLD."""
    from prescreen.models.evaluation import evaluate, read_labelled_rows
    from prescreen.models.runner import load_risk_model

    conf = _screening_config(args).screening
    model = load_risk_model(args.model or conf.model_path or None)
    review = conf.review_score
    if review is None:
        review = model.threshold_for(conf.model_review_budget)
    rows = read_labelled_rows(args.data)
    report: dict[str, Any] = evaluate(model.score, rows, review=review, hold=conf.hold_score)
    report["model_version"] = model.version
    if args.json:
        print_json(report)
    else:
        for key, value in report.items():
            print(f"{key:<20} {value}")
    return EXIT_OK


def cmd_model_train(args: argparse.Namespace) -> int:
    """Train a model on outcome labels (customs side) and print its comparison with the fleet's."""
    from prescreen.models.outcome_train import read_screened, train_on_outcomes

    report = train_on_outcomes(
        args.labels,
        Path(args.out),
        synthetic=args.synthetic,
        test_share=args.test_share,
        version=args.version,
        shipped=args.shipped,
        trainer=args.trainer,
        stream=read_screened(args.calibrate_on) if args.calibrate_on else (),
    )
    newer = report["newer"]
    print(
        f"{report['version']} ({report['trainer']}) written to {args.out}: PR-AUC on the newer "
        f"{report['split']['test_rows']} parcels {newer['outcome_trained']['pr_auc']} "
        f"(the fleet's {report['shipped_version']}: {newer['shipped']['pr_auc']})"
    )
    return EXIT_OK


def cmd_model_manifest(args: argparse.Namespace) -> int:
    """Print the manifest of a model directory as customs publishes it (what ``downlink send
    --type model --manifest`` signs)."""
    import json

    from prescreen.core.errors import ModelError
    from prescreen.sync.customs import model_manifest

    directory = Path(args.dir)
    version = args.version or json.loads((directory / "model.json").read_text())["version"]
    files = [p.name for p in directory.iterdir() if p.name in ("model.json", f"{version}.tflite")]
    if len(files) != 2:
        raise ModelError(f"{directory}: no model.json and {version}.tflite to publish")
    manifest = model_manifest(directory, args.base_url, version)
    manifest["files"] = [f for f in manifest["files"] if f["name"] in files]  # the card stays home
    print_json(manifest)
    return EXIT_OK


def cmd_model_reinstate(args: argparse.Namespace) -> int:
    """Ask the running agent to lift its model quarantine; exit 1 if none was lifted."""
    status, answer = post_to_agent(load_config(args.config), "/api/model/reinstate", {})
    print(answer.get("result") or answer.get("error") or answer.get("detail"))  # detail: 202 pending
    return EXIT_OK if status == 200 else EXIT_FAILURE


def add_screening_commands(sub: Any) -> None:
    """screen and model."""
    screen = _add_screen_command(sub)
    model = add_command(
        sub,
        "model",
        help="risk model tools",
        description=(
            "Evaluate the on-device risk model, train a new one from customs outcomes, or lift a station's "
            "quarantine of its model."
        ),
        example="prescreen model eval --data labelled.csv",
    )
    what = subcommands(model)
    evaluate = add_command(
        what,
        "eval",
        help="metrics of the model on a labelled CSV",
        description=(
            "CSV columns: description, hts_code, declared_value_usd, declared_weight_kg, "
            "measured_weight_kg, origin_country, quantity, label (1 = hold or review)."
        ),
        example="prescreen model eval --data labelled.csv --json",
        run=cmd_model_eval,
        log_level=LOG_FROM_OPTION,
    )
    evaluate.add_argument("--data", required=True, help="labelled CSV file")
    add_json_option(evaluate)
    for each in (screen, evaluate):
        each.add_argument("--config", help="take thresholds and model path from this TOML config")
        each.add_argument("--model", help="model directory (default: the shipped model)")
        each.add_argument("--rules-only", action="store_true", help=argparse.SUPPRESS)
    _add_train_command(what)
    _add_manifest_command(what)
    reinstate = add_command(
        what,
        "reinstate",
        help="lift the running station's quarantine of its model",
        description=(
            "The station quarantines a model that raises more than twice its card's share of parcels (it "
            "then screens rules only; prescreen status says so). Look at the raises first."
        ),
        example="prescreen model reinstate --config /etc/prescreen/agent.toml",
        run=cmd_model_reinstate,
    )
    add_config_option(reinstate)


def _add_screen_command(sub: Any) -> Any:
    screen = add_command(
        sub,
        "screen",
        help="screen parcel JSON lines from stdin (batch, what-if)",
        description=(
            "One parcel per line (an order, {order, measured_weight_kg, tracking_number} or a flat row with "
            "the model-eval columns); prints one JSON line each with verdict, score and reasons."
        ),
        example='echo \'{"description": "gift", "declared_value_usd": 2}\' | prescreen screen',
        run=cmd_screen,
        log_level=LOG_FROM_OPTION,
    )
    screen.add_argument(
        "--workers",
        type=int,
        default=0,
        help="processes screening in parallel, in input order (default: one per core, 1 at a terminal)",
    )
    return screen


def _add_train_command(what: Any) -> None:
    trainer = add_command(
        what,
        "train",
        help="customs side: train a model on outcome labels (TensorFlow where installed, else numpy)",
        description=(
            "Time-ordered: trained on the older parcels of the labels table, tested on the newer ones "
            "against the fleet's model; writes the model, model.json, metrics.json and the card."
        ),
        example="prescreen model train --labels labels.csv --out new --synthetic 300",
        run=cmd_model_train,
        log_level=LOG_FROM_OPTION,
    )
    trainer.add_argument("--labels", required=True, help="CSV of `prescreen records labels`")
    trainer.add_argument("--out", required=True, help="directory for the new model")
    trainer.add_argument("--synthetic", type=int, default=0, help="synthetic rows per generator to mix in")
    trainer.add_argument(
        "--test-share", type=float, default=0.3, help="newest share of parcels kept for test"
    )
    trainer.add_argument("--version", help="model version (default risk-outcomes-<newest date>)")
    trainer.add_argument(
        "--calibrate-on",
        metavar="CSV",
        help="every parcel screened in the period (`records labels --screened`): the review budget is "
        "measured on them, not on the positive-rich training mix",
    )
    trainer.add_argument("--shipped", help="the fleet's model directory to compare with (default: shipped)")
    trainer.add_argument(
        "--trainer",
        default="auto",
        choices=["auto", "tensorflow", "numpy"],
        help="auto: TensorFlow if installed (make train-venv), else numpy (seconds, no TensorFlow)",
    )


def _add_manifest_command(what: Any) -> None:
    manifest = add_command(
        what,
        "manifest",
        help="customs side: the manifest of a trained model published at a URL",
        description=(
            "Print the manifest of a model directory (its version, and model.json and the .tflite "
            "with their URL and SHA-256) for downlink send --type model, which signs it."
        ),
        example="prescreen model manifest --dir new --base-url https://models.example/new > m.json",
        run=cmd_model_manifest,
        log_level="warning",
    )
    manifest.add_argument("--dir", required=True, help="the model directory (prescreen model train --out)")
    manifest.add_argument("--base-url", required=True, help="where its files are published (HTTPS)")
    manifest.add_argument("--version", help="model version (default: model.json's)")
