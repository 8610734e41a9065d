"""CLI commands for the compliance team: ``correct``, ``outcome``, ``report sellers``, ``export``.

``correct`` and ``outcome`` ask the running agent (its localhost API), so the station thread
commits them in order with the scans and the agent's own rules re-screen a correction. ``report``
and ``export`` only read the outbox, so they also work while the agent is stopped.
"""

from __future__ import annotations

import argparse
import csv
import json
import sqlite3
import sys
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from prescreen.core.errors import ConfigError, OutboxError
from prescreen.ops import logs
from prescreen.ops.config import DEFAULT_PATH
from prescreen.packing.outbox_schema import read_feedback

EXIT_FAILURE = 1


def _post(config_path: str, route: str, body: dict[str, Any], as_json: bool) -> int:
    import httpx
    from prescreen.ops import config
    from prescreen.web.server import api_headers

    conf = config.load(config_path)
    url = conf.http.url(route)
    try:
        response = httpx.post(url, json=body, headers=api_headers(conf.api_token_path()), timeout=15)
        answer = response.json()
    except (httpx.HTTPError, ValueError) as exc:
        raise ConfigError(f"the agent is not answering at {url}: {exc}") from exc
    if response.status_code != 201:
        print(f"prescreen: error: {answer.get('error', response.text)}", file=sys.stderr)
        return EXIT_FAILURE
    record = answer["record"]
    print(json.dumps(record) if as_json else _summary(record))
    return 0


def _summary(record: dict[str, Any]) -> str:
    if record["kind"] == "outcome":
        o = record["outcome"]
        return f"outcome {o['outcome']} recorded for {o['tracking_number']} (record {record['record_id']})"
    return (
        f"corrected: {record['parcel']['tracking_number']} is now {record['screening']['verdict']} "
        f"(record {record['record_id']} supersedes {record['supersedes']['record_id']})"
    )


def cmd_correct(args: argparse.Namespace) -> int:
    """Correct an order's data; the agent re-screens it and sends the new version."""
    changes = {}
    for pair in args.set:
        name, sep, value = pair.partition("=")
        if not sep:
            raise ConfigError(f"--set takes FIELD=VALUE, got {pair!r}")
        changes[name.strip()] = value
    body = {"record": args.record, "changes": changes, "line": args.line, "by": args.by}
    return _post(args.config, "/api/correct", body, args.json)


def cmd_outcome(args: argparse.Namespace) -> int:
    """Record what became of a held or referred parcel."""
    body = {
        "record": args.record,
        "outcome": args.outcome,
        "decided_by": args.decided_by,
        "customs_reference": args.customs_reference,
        "note": args.note,
    }
    return _post(args.config, "/api/outcome", body, args.json)


def read_outbox(path: Path) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Every record in an outbox file, and the customs feedback messages it holds (read only)."""
    if not path.exists():
        raise OutboxError(f"{path}: no outbox here")
    try:
        conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
        with conn:
            records = [json.loads(b) for (b,) in conn.execute("SELECT body FROM records ORDER BY seq")]
            feedback = read_feedback(conn)
        conn.close()
    except sqlite3.Error as exc:
        raise OutboxError(f"{path}: cannot read outbox: {exc}") from exc
    return records, feedback


def _outbox_path(args: argparse.Namespace) -> Path:
    if args.outbox:
        return Path(args.outbox)
    if not args.config:
        raise ConfigError("give --config (the agent's TOML) or --outbox PATH")
    from prescreen.ops import config

    return Path(config.load(args.config).outbox.path)


def cmd_report_sellers(args: argparse.Namespace) -> int:
    """Print the per-seller data-quality scorecard."""
    from prescreen.trade import scorecard

    logs.configure("error")
    records, feedback = read_outbox(_outbox_path(args))
    now = datetime.now(timezone.utc)
    try:
        since = scorecard.parse_since(args.since, now)
    except ValueError:
        raise ConfigError(f"--since takes 7d, 24h, 90m or an ISO date, got {args.since!r}") from None
    scores = scorecard.scorecard(records, since=since, now=now, feedback=feedback)
    if args.format == "json":
        print(json.dumps({"since": since.isoformat(), "sellers": [s.as_json(args.language) for s in scores]}))
    elif args.format == "csv":
        columns, rows = scorecard.csv_rows(scores)
        writer = csv.DictWriter(sys.stdout, fieldnames=columns, lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)
    else:
        print(f"Seller data quality since {since:%Y-%m-%d %H:%M} UTC ({len(scores)} sellers)")
        print(scorecard.table([s.as_json(args.language) for s in scores]))
    return 0


def cmd_export(args: argparse.Namespace) -> int:
    """Export the station's records from its outbox."""
    from prescreen.trade.exports import write_records

    logs.configure("error")
    records, _ = read_outbox(_outbox_path(args))
    return finish_export(
        write_records(records, args.format, sys.stdout, allow_incomplete=args.allow_incomplete)
    )


def finish_export(result: Any) -> int:
    """Tell the operator on stderr what an export refused (exit 1) or left out as not its kind."""
    for refusal in result.refused:
        print(f"prescreen: refused {refusal}", file=sys.stderr)
    if result.refused or result.not_applicable:
        print(
            f"prescreen: {result.written} rows written, {len(result.refused)} parcels refused as incomplete "
            f"(--allow-incomplete writes them marked), {result.not_applicable} records not for this format",
            file=sys.stderr,
        )
    return EXIT_FAILURE if result.refused else 0


def add_export_options(parser: Any) -> None:
    """--format and --allow-incomplete, the same for the station's and the receiver's export."""
    from prescreen.trade.exports import FORMATS

    parser.add_argument(
        "--format",
        default="ndjson",
        choices=FORMATS,
        help="ndjson/csv: the record schema; us-informal (Type 11), us-formal-lines (Type 01), "
        "us-mail (Type 13), ics2-ens, pact: mapped per docs/data-mapping.md",
    )
    parser.add_argument(
        "--allow-incomplete",
        action="store_true",
        help="write parcels missing mandatory elements too, naming the gaps in the 'incomplete' column",
    )


def add_compliance_commands(sub: Any) -> None:
    """correct, outcome, report sellers and export."""
    from prescreen.packing.outcomes import OUTCOMES
    from prescreen.trade.compliance import CORRECTABLE

    correct = sub.add_parser(
        "correct",
        help="correct a parcel's order data; the agent re-screens it and sends a new version",
        description="RECORD is a record id or a tracking number (its newest verdict). Fields: "
        + ", ".join(CORRECTABLE)
        + ".",
        epilog="Example: prescreen correct --config /etc/prescreen/agent.toml 1Z999AA10123456784 "
        "--set description='brake pads for cars' --set hts_code=8708301050",
    )
    correct.add_argument("record", help="record id or tracking number")
    correct.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="FIELD=VALUE",
        required=True,
        help="a corrected field (repeatable)",
    )
    correct.add_argument("--line", type=int, default=1, help="item line for item fields (default 1)")
    correct.add_argument("--by", default="compliance", help="who corrects (kept in the record)")
    correct.add_argument(
        "--config", default=DEFAULT_PATH, help=f"TOML config file of the running agent ({DEFAULT_PATH})"
    )
    correct.add_argument("--json", action="store_true", help="print the new record")
    correct.set_defaults(func=cmd_correct)

    outcome = sub.add_parser(
        "outcome",
        help="record what became of a held or referred parcel",
        description=(
            "Record a compliance outcome (returned to seller, destroyed, released, ...) for a parcel's "
            "newest verdict; the running agent commits it as an outcome record that goes to customs."
        ),
        epilog="Example: prescreen outcome --config agent.toml 1Z999AA10123456784 returned_to_seller",
    )
    outcome.add_argument("record", help="record id or tracking number")
    outcome.add_argument("outcome", choices=OUTCOMES, help="what became of the parcel")
    outcome.add_argument(
        "--decided-by",
        default="compliance",
        choices=["station", "compliance", "customs"],
        help="who decided (default compliance)",
    )
    outcome.add_argument("--customs-reference", help="needed for handed_to_carrier")
    outcome.add_argument("--note", help="free text kept in the outcome record")
    outcome.add_argument(
        "--config", default=DEFAULT_PATH, help=f"TOML config file of the running agent ({DEFAULT_PATH})"
    )
    outcome.add_argument("--json", action="store_true", help="print the new record")
    outcome.set_defaults(func=cmd_outcome)

    report = sub.add_parser(
        "report",
        help="reports from the station's outbox",
        description="Reports built from the station's outbox, for compliance and the trade.",
        epilog="Example: prescreen report sellers --outbox /var/lib/prescreen/outbox.db --since 7d",
    )
    report_sub = report.add_subparsers(dest="what", required=True, metavar="WHAT")
    sellers = report_sub.add_parser(
        "sellers",
        help="per-seller data-quality scorecard",
        description=(
            "One row per seller: parcels, verdicts, the data-quality findings that were the seller's doing, "
            "corrections and customs feedback, over a time window."
        ),
        epilog="Example: prescreen report sellers --config agent.toml --since 7d --format csv",
    )
    sellers.add_argument("--since", default="7d", help="7d, 24h, 90m or an ISO date (default 7d)")
    sellers.add_argument(
        "--format", default="table", choices=["table", "csv", "json"], help="output shape (default table)"
    )
    sellers.add_argument("--language", default="en", choices=["en", "es"], help="of the advice to sellers")
    export = sub.add_parser(
        "export",
        help="export the station's records (NDJSON, CSV, or mapped for a filer)",
        description=(
            "Formats and field tables: docs/data-mapping.md. A parcel missing a mandatory element is "
            "refused (listed on stderr, exit 1)."
        ),
        epilog="Example: prescreen export --config agent.toml --format us-informal > type11.csv",
    )
    add_export_options(export)
    for each in (sellers, export):
        each.add_argument("--config", help="TOML config file of the agent (finds the outbox)")
        each.add_argument("--outbox", help="outbox file (instead of --config)")
    sellers.set_defaults(func=cmd_report_sellers)
    export.set_defaults(func=cmd_export)
