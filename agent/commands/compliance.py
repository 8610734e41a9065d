"""Commands for the seller's compliance team: ``correct``, ``outcome``, ``rfi answer``,
``rfs screened``, ``report sellers``, ``export``.

``correct``, ``outcome`` and the answers to customs referrals ask the running agent (its localhost
API), so the station thread commits them in order with the scans and the agent's own rules
re-screen a correction. ``report`` and ``export`` only read the outbox, so they also work while the
agent is stopped.
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

from prescreen.commands.helpers import (
    EXIT_FAILURE,
    EXIT_OK,
    Choices,
    add_command,
    add_config_option,
    add_export_options,
    add_json_option,
    error,
    export,
    load_config,
    outbox_path,
    post_to_agent,
    print_json,
    subcommands,
)
from prescreen.core.errors import ConfigError, OutboxError


def _ask_agent(config_path: str, route: str, body: dict[str, Any], as_json: bool) -> int:
    """POST a correction, outcome or referral answer to the running agent; print its record."""
    status, answer = post_to_agent(load_config(config_path), route, body)
    if status == 202:  # being committed: not a failure to retry, not a record to print yet
        error(f"pending: {answer.get('detail')}")
        return EXIT_FAILURE
    if status != 201:
        error(str(answer.get("error", answer)))
        return EXIT_FAILURE
    record = answer["record"]
    if as_json:
        print_json(record)
    else:
        print(_summary(record))
    return EXIT_OK


def _summary(record: dict[str, Any]) -> str:
    if record["kind"] == "outcome":
        o = record["outcome"]
        return f"outcome {o['outcome']} recorded for {o['tracking_number']} (record {record['record_id']})"
    if record["kind"] == "rfi_response":
        r = record["rfi_response"]
        answered = ", ".join(r["fields"])
        return f"RFI on {r['tracking_number']} answered: {answered} (record {record['record_id']})"
    if record["kind"] == "screening":
        s = record["screened"]
        done = f"{s['method']}: {s['result']}"
        return f"{s['tracking_number']} screened by {done} (record {record['record_id']})"
    return (
        f"corrected: {record['parcel']['tracking_number']} is now {record['screening']['verdict']} "
        f"(record {record['record_id']} supersedes {record['supersedes']['record_id']})"
    )


def name_values(pairs: list[str], option: str) -> dict[str, str]:
    """``NAME=VALUE`` arguments (``--set``, ``--field``) as a dict.

    Raises:
        ConfigError: one without ``=``.
    """
    found = {}
    for pair in pairs:
        name, sep, value = pair.partition("=")
        if not sep:
            raise ConfigError(f"{option} takes NAME=VALUE, got {pair!r}")
        found[name.strip()] = value
    return found


def cmd_correct(args: argparse.Namespace) -> int:
    """Correct an order's data; the agent re-screens it and sends the new version."""
    changes = name_values(args.set, "--set")
    body = {"record": args.record, "changes": changes, "line": args.line, "by": args.by}
    return _ask_agent(args.config, "/api/correct", body, args.json)


def cmd_outcome(args: argparse.Namespace) -> int:
    """Record what became of a held or referred parcel."""
    body = {
        "record": args.record,
        "outcome": args.outcome,
        "decided_by": args.decided_by,
        "customs_reference": args.customs_reference,
        "note": args.note,
    }
    return _ask_agent(args.config, "/api/outcome", body, args.json)


def cmd_rfi_answer(args: argparse.Namespace) -> int:
    """Answer the open RFI on a tracking number with the fields it asked for."""
    fields = name_values(args.field, "--field")
    body = {"tracking_number": args.tracking, "fields": fields, "answered_by": args.by, "note": args.note}
    return _ask_agent(args.config, "/api/rfi", body, args.json)


def cmd_rfs_screened(args: argparse.Namespace) -> int:
    """Record that a parcel was screened by a high-risk method, and the result."""
    body = {
        "tracking_number": args.tracking,
        "method": args.method,
        "operator": args.operator,
        "result": args.result,
        "screened_at": args.at,
        "note": args.note,
    }
    return _ask_agent(args.config, "/api/screening", body, args.json)


def read_outbox(path: Path) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Every record in an outbox file, and the customs feedback messages it holds (read only)."""
    from prescreen.packing.outbox_schema import read_feedback

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


def cmd_report_sellers(args: argparse.Namespace) -> int:
    """Print the per-seller data-quality scorecard."""
    from prescreen.trade import scorecard

    records, feedback = read_outbox(outbox_path(args))
    now = datetime.now(timezone.utc)
    try:
        since = scorecard.parse_since(args.since, now)
    except ValueError:
        raise ConfigError(f"--since takes 7d, 24h, 90m or an ISO date, got {args.since!r}") from None
    scores = scorecard.scorecard(records, since=since, now=now, feedback=feedback)
    if args.format == "json":
        print_json({"since": since.isoformat(), "sellers": [s.as_json(args.language) for s in scores]})
    elif args.format == "csv":
        columns, rows = scorecard.csv_rows(scores)
        writer = csv.DictWriter(sys.stdout, fieldnames=columns, lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)
    else:
        print(f"Seller data quality since {since:%Y-%m-%d %H:%M} UTC ({len(scores)} sellers)")
        print(scorecard.table([s.as_json(args.language) for s in scores]))
    return EXIT_OK


def cmd_export(args: argparse.Namespace) -> int:
    """Export the station's records from its outbox."""
    records, _ = read_outbox(outbox_path(args))
    return export(records, args)


def add_compliance_commands(sub: Any) -> None:
    """correct, outcome, rfi answer, rfs screened, report sellers and export."""
    _add_correct_command(sub)
    _add_outcome_command(sub)
    _add_referral_commands(sub)
    report = add_command(
        sub,
        "report",
        help="reports from the station's outbox",
        description="Reports built from the station's outbox, for compliance and the trade.",
        example="prescreen report sellers --outbox /var/lib/prescreen/outbox.db --since 7d",
    )
    sellers = add_command(
        subcommands(report),
        "sellers",
        help="per-seller data-quality scorecard",
        description=(
            "One row per seller: parcels, verdicts, the data-quality findings that were the seller's doing, "
            "corrections and customs feedback, over a time window."
        ),
        example="prescreen report sellers --config agent.toml --since 7d --format csv",
        run=cmd_report_sellers,
        log_level="error",
    )
    sellers.add_argument("--since", default="7d", help="7d, 24h, 90m or an ISO date (default 7d)")
    sellers.add_argument(
        "--format", default="table", choices=["table", "csv", "json"], help="output shape (default table)"
    )
    sellers.add_argument("--language", default="en", choices=["en", "es"], help="of the advice to sellers")
    export_parser = add_command(
        sub,
        "export",
        help="export the station's records (NDJSON, CSV, or mapped for a filer)",
        description=(
            "Formats and field tables: docs/data-mapping.md. A parcel missing a mandatory element is "
            "refused (listed on stderr, exit 1)."
        ),
        example="prescreen export --config agent.toml --format us-informal > type11.csv",
        run=cmd_export,
        log_level="error",
    )
    add_export_options(export_parser)
    for each in (sellers, export_parser):
        each.add_argument("--config", help="TOML config file of the agent (finds the outbox)")
        each.add_argument("--outbox", help="outbox file (instead of --config)")


def _add_correct_command(sub: Any) -> None:
    from prescreen.trade.correctable import CORRECTABLE

    correct = add_command(
        sub,
        "correct",
        help="correct a parcel's order data; the agent re-screens it and sends a new version",
        description=f"RECORD is a record id or a tracking number (its newest verdict). Fields: "
        f"{', '.join(CORRECTABLE)}.",
        example="prescreen correct --config /etc/prescreen/agent.toml 1Z999AA10123456784 "
        "--set description='brake pads for cars' --set hts_code=8708301050",
        run=cmd_correct,
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
    add_config_option(correct, of="the running agent")
    add_json_option(correct, "print the new record")


def _add_outcome_command(sub: Any) -> None:
    outcome = add_command(
        sub,
        "outcome",
        help="record what became of a held or referred parcel",
        description=(
            "Record a compliance outcome (returned to seller, destroyed, released, ...) for a parcel's "
            "newest verdict; the running agent commits it as an outcome record that goes to customs."
        ),
        example="prescreen outcome --config agent.toml 1Z999AA10123456784 returned_to_seller",
        run=cmd_outcome,
    )
    outcome.add_argument("record", help="record id or tracking number")
    outcome.add_argument(
        "outcome",
        choices=Choices("prescreen.packing.outcomes", "OUTCOMES"),
        metavar="OUTCOME",
        help="what became of the parcel: %(choices)s",
    )
    outcome.add_argument(
        "--decided-by",
        default="compliance",
        choices=["station", "compliance", "customs"],
        help="who decided (default compliance)",
    )
    outcome.add_argument("--customs-reference", help="needed for handed_to_carrier")
    outcome.add_argument("--note", help="free text kept in the outcome record")
    add_config_option(outcome, of="the running agent")
    add_json_option(outcome, "print the new record")


def _add_referral_commands(sub: Any) -> None:
    """rfi answer and rfs screened: the station's answers to customs referrals."""
    for each in (_add_rfi_command(sub), _add_rfs_command(sub)):
        each.add_argument("--note", help="free text kept in the record (500 characters)")
        add_config_option(each, of="the running agent")
        add_json_option(each, "print the new record")


def _add_rfi_command(sub: Any) -> argparse.ArgumentParser:
    rfi = add_command(
        sub,
        "rfi",
        help="answer a customs request for information (RFI)",
        description="Answers to customs requests for information, committed by the running agent.",
        example="prescreen rfi answer --config agent.toml 1Z999AA10123456784 --field invoice=INV-1",
    )
    answer = add_command(
        subcommands(rfi),
        "answer",
        help="send customs the data an RFI asked for (an rfi_response record)",
        description="Commit an rfi_response record with the data the open RFI on the parcel asked for; "
        "every field it names must be given.",
        example="prescreen rfi answer --config /etc/prescreen/agent.toml 1Z999AA10123456784 "
        "--field invoice=INV-2291 --field hts_code=8708301050",
        run=cmd_rfi_answer,
    )
    answer.add_argument("tracking", help="the parcel's tracking number")
    answer.add_argument(
        "--field",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        required=True,
        help="an answered field (repeatable): those the RFI asks for, e.g. invoice, hts_code, description, "
        "consignee_tax_id, manufacturer",
    )
    answer.add_argument(
        "--by", default="station", choices=["station", "compliance"], help="who answers (default station)"
    )
    return answer


def _add_rfs_command(sub: Any) -> argparse.ArgumentParser:
    rfs = add_command(
        sub,
        "rfs",
        help="answer a customs request for screening (RFS)",
        description="Answers to customs requests for screening, recorded by the running agent.",
        example="prescreen rfs screened --config agent.toml 1Z999AA10123456784 --method x_ray "
        "--operator badge-114 --result cleared",
    )
    screened = add_command(
        subcommands(rfs),
        "screened",
        help="record that a parcel was screened by a high-risk method (a screening record)",
        description="Commit a screening record: method, operator, time and result, tied to the open RFS. "
        "Methods (ICAO/ICS2 codes): x_ray XRY, eds EDS, etd ETD, edd EDD, physical_search PHS, "
        "visual_check VCK, metal_detection CMD, other_means AOM.",
        example="prescreen rfs screened --config /etc/prescreen/agent.toml 1Z999AA10123456784 "
        "--method x_ray --operator badge-114 --result cleared",
        run=cmd_rfs_screened,
    )
    screened.add_argument("tracking", help="the parcel's tracking number")
    screened.add_argument(
        "--method",
        required=True,
        choices=Choices("prescreen.trade.referrals", "SCREENING_METHODS"),
        metavar="METHOD",
        help="how it was screened: %(choices)s",
    )
    screened.add_argument("--operator", required=True, help="who screened it (name or badge)")
    screened.add_argument(
        "--result",
        required=True,
        choices=Choices("prescreen.trade.referrals", "SCREENING_RESULTS"),
        metavar="RESULT",
        help="what it found: %(choices)s",
    )
    screened.add_argument("--at", help="when it was screened, RFC 3339 (default: now)")
    return screened
