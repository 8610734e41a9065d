"""The evidence gate of ``downlink send --type model --promote``: promote only on the shadow report.

A model in shadow is promoted when the receiver's shadow report for that station and that version
shows it at least as good as the live model on the parcels customs decided
(:func:`prescreen.sync.shadow.promotion_refusal`: recall not lower, precision not lower beyond a
tolerance, raise share within the station's budget). Without the report (``--evidence``) the
command refuses; ``--force`` promotes against, or without, the evidence and says so.
"""

from __future__ import annotations

import argparse
import json
from typing import Any

from prescreen.commands.helpers import error, warn
from prescreen.core.errors import ConfigError


def add_promotion_options(send: argparse.ArgumentParser) -> None:
    """The options of the gate (``downlink send``)."""
    send.add_argument(
        "--evidence",
        metavar="DB",
        help="promote: the receiver's store (SQLite path or postgresql:// URL) whose shadow report for "
        "this station and version must support the promotion",
    )
    send.add_argument("--since", help="promote: the shadow report from this time on (RFC 3339)")
    add_gate_options(send)
    send.add_argument(
        "--force", action="store_true", help="promote: even when the shadow report does not support it"
    )


def add_gate_options(parser: argparse.ArgumentParser) -> None:
    """The gate's thresholds (``downlink send --promote`` and ``records shadow-report``)."""
    from prescreen.sync.shadow import BUDGET, PRECISION_TOLERANCE

    parser.add_argument(
        "--budget",
        type=float,
        default=BUDGET,
        help="the station's [screening] model_review_budget: the shadow may raise at most twice it "
        "(default %(default)s)",
    )
    parser.add_argument(
        "--tolerance",
        type=float,
        default=PRECISION_TOLERANCE,
        help="how much lower than live's the shadow's precision may be (default %(default)s)",
    )


def refusal(args: argparse.Namespace, version: str) -> str | None:
    """Why the evidence does not support promoting ``version`` at ``--site``/``--device`` (None: it does)."""
    from prescreen.sync.labels import KINDS
    from prescreen.sync.shadow import promotion_refusal, shadow_report
    from prescreen.sync.store import Filters, open_store

    store = open_store(args.evidence)
    try:  # only the kinds the report reads, parsed as they are read (never the whole store)
        with store.stream(Filters(device_id=args.device, since=args.since, kinds=KINDS)) as rows:
            stations = shadow_report(json.loads(r["body"]) for r in rows)
    finally:
        store.close()
    report = [
        row
        for row in stations
        if (row["site_id"], row["device_id"], row["shadow_version"]) == (args.site, args.device, version)
    ]
    if not report:
        return f"no shadow report for {version} at {args.site}/{args.device} in {args.evidence}"
    reasons = [promotion_refusal(row, budget=args.budget, tolerance=args.tolerance) for row in report]
    return next((why for why in reasons if why), None)


def promotion_allowed(args: argparse.Namespace, manifest: dict[str, Any]) -> bool:
    """Whether to send the promotion; says 'not promoted: <why>' when not."""
    if not args.evidence and not args.force:
        raise ConfigError("--promote needs --evidence DB (the shadow report it is judged on), or --force")
    why = refusal(args, str(manifest.get("version"))) if args.evidence else "no --evidence given"
    if why is None:
        return True
    if args.force:
        warn(f"promoting anyway (--force): {why}")
        return True
    error(f"not promoted: {why}")
    return False
