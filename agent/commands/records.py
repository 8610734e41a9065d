"""Commands for the customs side's store: ``records query|export|gaps|verify|shadow-report|labels``,
and ``trust add|remove|list`` for the station keys the receiver and ``records verify`` accept.

They read a receiver's store (SQLite or PostgreSQL) or its trust-store file; none talks to a
station. Each calls one library function and turns its answer into lines and an exit code.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from prescreen.commands.helpers import (
    EXIT_FAILURE,
    EXIT_OK,
    add_command,
    add_export_options,
    add_json_option,
    export,
    print_json,
    subcommands,
)
from prescreen.commands.promotion import add_gate_options
from prescreen.core.errors import ConfigError


@contextmanager
def _store(db: str) -> Iterator[Any]:
    """The receiver's store at ``db`` (a SQLite path or a postgresql:// URL), closed afterwards."""
    from prescreen.sync.store import open_store

    store = open_store(db)
    try:
        yield store
    finally:
        store.close()


def _bodies(args: argparse.Namespace, **filters: Any) -> list[dict[str, Any]]:
    """The stored records matching ``filters`` (in device sequence order), as the stations sent them."""
    from prescreen.sync.store import Filters

    with _store(args.db) as store:
        rows = store.query(Filters(**filters), limit=getattr(args, "limit", None))
    return [json.loads(row["body"]) for row in rows]


@contextmanager
def _streamed(args: argparse.Namespace, **filters: Any) -> Iterator[Iterator[dict[str, Any]]]:
    """The stored verdict and downlink records matching ``filters`` (what labels and the shadow
    report are built from), parsed one by one as they are read: never the whole store at once."""
    from prescreen.sync.labels import KINDS
    from prescreen.sync.store import Filters

    with _store(args.db) as store, store.stream(Filters(kinds=KINDS, **filters)) as rows:
        yield (json.loads(row["body"]) for row in rows)


def cmd_records(args: argparse.Namespace) -> int:
    """Query or export stored records (``records query|export``)."""
    bodies = _bodies(
        args,
        tracking_number=args.tracking,
        device_id=args.device,
        verdict=args.verdict,
        since=args.since,
        until=args.until,
    )
    return export(bodies, args)


def cmd_records_gaps(args: argparse.Namespace) -> int:
    """Report the sequence gaps per device; exit 1 if there is one."""
    with _store(args.db) as store:
        gaps = store.gaps()
    if args.json:
        print_json({"gaps": gaps})
    else:
        for gap in gaps:
            print(
                f"{gap['site_id']}/{gap['device_id']}: seq {gap['first_missing']}"
                f"..{gap['last_missing']} missing ({gap['missing']})"
            )
        print(f"{len(gaps)} gaps")
    return EXIT_FAILURE if gaps else EXIT_OK


def cmd_records_labels(args: argparse.Namespace) -> int:
    """Write the model's training table: verdicts joined with their customs outcomes."""
    from prescreen.core.signing import KeyRing
    from prescreen.sync.labels import SCREENED_COLUMNS, label_rows, screened_rows, write_csv

    with _streamed(args, device_id=args.device, since=args.since, until=args.until) as bodies:
        if args.screened:
            count = write_csv(screened_rows(bodies), sys.stdout, SCREENED_COLUMNS)
            print(f"{count} screened parcels", file=sys.stderr)
            return EXIT_OK
        rows = label_rows(bodies, KeyRing(args.customs_key) if args.customs_key else None)
    count = write_csv(rows, sys.stdout)
    positives = sum(int(r["label"]) for r in rows)
    print(f"{count} labelled parcels, {positives} positive", file=sys.stderr)
    return EXIT_OK


def cmd_records_shadow_report(args: argparse.Namespace) -> int:
    """Per station, how a shadow model's raises compare with the live model's, and whether the
    evidence supports promoting it (``downlink send --promote --evidence`` applies the same gate)."""
    from prescreen.sync.shadow import promotion_refusal, shadow_report

    with _streamed(args, device_id=args.device, since=args.since, until=args.until) as bodies:
        report = shadow_report(bodies)
    for row in report:
        row["promotion_refused"] = promotion_refusal(row, budget=args.budget, tolerance=args.tolerance)
    if args.json:
        print_json({"stations": report})
        return EXIT_OK

    def share(value: float | None) -> str:
        return "-" if value is None else f"{value:.1%}"

    for row in report:
        print(
            f"{row['site_id']}/{row['device_id']}: {row['parcels']} parcels; live "
            f"{row['live_version']} raised {row['live_raise_share']:.1%}, shadow "
            f"{row['shadow_version']} would raise {row['shadow_raise_share']:.1%}; "
            f"agreement {row['agreement']:.1%}"
        )
        if row["labelled"]:
            print(
                f"  customs outcomes on {row['labelled']} parcels ({row['found']} found): live precision "
                f"{share(row['live_precision'])} recall {share(row['live_recall'])}; shadow precision "
                f"{share(row['shadow_precision'])} recall {share(row['shadow_recall'])}"
            )
        refused = row["promotion_refused"]
        print(f"  not promoted: {refused}" if refused else "  promotion: supported by the evidence")
    print(f"{len(report)} station(s) with a shadow model")
    return EXIT_OK


def cmd_records_verify(args: argparse.Namespace) -> int:
    """Re-check every stored record's own signature (evidence audit); exit 1 if any fails."""
    from prescreen.core.signing import TrustStore
    from prescreen.sync.store import Filters

    trust = TrustStore.load(args.trust)
    with _store(args.db) as store:
        rows = store.query(Filters(device_id=args.device))
    failed = 0
    for row in rows:
        rejection = trust.check(json.loads(row["body"]))
        if rejection is not None:
            failed += 1
            print(
                f"{row['record_id']} {row['site_id']}/{row['device_id']} seq {row['seq']}: {rejection.kind}: "
                f"{rejection.reason}"
            )
    print(f"{len(rows)} records checked, {failed} failed")
    return EXIT_FAILURE if failed else EXIT_OK


def _entry_from(args: argparse.Namespace) -> dict[str, Any]:
    source = args.entry
    try:
        text = sys.stdin.read() if source in (None, "-") else Path(source).read_text(encoding="utf-8")
        entry: dict[str, Any] = json.loads(text)
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise ConfigError(
            f"{source or 'stdin'}: not a trust entry ({exc}); expected the JSON `prescreen key show` prints"
        ) from None
    return entry


def cmd_trust(args: argparse.Namespace) -> int:
    """add, remove or list the keys in a receiver's trust-store file."""
    from prescreen.core import truststore

    path = Path(args.file)
    if args.action == "add":
        print(truststore.add(path, _entry_from(args)))
    elif args.action == "remove":
        for entry in truststore.remove(path, args.key):
            print(f"removed key {entry['key_id']} of {entry['site_id']}/{entry['device_id']}")
    elif args.json:
        print_json({"keys": truststore.read(path)})
    else:
        entries = truststore.read(path)
        for entry in entries:
            print(f"{entry['key_id']}  {entry['site_id']}/{entry['device_id']}")
        print(f"{len(entries)} key(s) in {path}")
    return EXIT_OK


def add_records_commands(sub: Any) -> None:
    """records and trust."""
    records = add_command(
        sub,
        "records",
        help="query, export or check a receiver store",
        description=(
            "Customs side: read the receiver's store (query, export, gaps), re-check signatures, and build "
            "the model's training labels and shadow reports."
        ),
        example="prescreen records export --db receiver.db --verdict HOLD --format csv",
    )
    what = subcommands(records)
    _add_query_commands(what)
    verify = _add_store_command(
        what,
        "verify",
        help="re-check every stored record's own signature against the trust store (exit 1 if any fails)",
        description="Evidence check of a store: every record against the station keys in --trust.",
        example="prescreen records verify --db receiver.db --trust trust.json",
        run=cmd_records_verify,
    )
    verify.add_argument("--trust", required=True, help="trust store JSON")
    verify.add_argument("--device", help="only this device")
    _add_model_data_commands(what)
    gaps = _add_store_command(
        what,
        "gaps",
        help="missing sequence numbers per device (exit 1 if any)",
        description="A gap is a record a station committed that the store never got.",
        example="prescreen records gaps --db receiver.db",
        run=cmd_records_gaps,
    )
    add_json_option(gaps, "one JSON object listing the gaps")
    _add_trust_commands(sub)


def _add_store_command(what: Any, name: str, **texts: Any) -> argparse.ArgumentParser:
    """One ``records`` subcommand: it reads the store ``--db`` names, and logs errors only."""
    parser = add_command(what, name, log_level="error", **texts)
    parser.add_argument("--db", default="receiver.db", help="SQLite path or postgresql:// URL")
    return parser


def _add_query_commands(what: Any) -> None:
    """records query and records export: the same filters, NDJSON or another export format."""
    for name, text in (
        ("query", "matching records as NDJSON"),
        ("export", "matching records as NDJSON, CSV or mapped for a filer (docs/data-mapping.md)"),
    ):
        each = _add_store_command(
            what,
            name,
            help=text,
            description=f"{text[0].upper()}{text[1:]}, in device sequence order. Filters combine with AND.",
            example=f"prescreen records {name} --db receiver.db --device station-01 --since 2026-11-01",
            run=cmd_records,
        )
        each.add_argument("--tracking", help="tracking number")
        each.add_argument("--device", help="device id")
        each.add_argument(
            "--verdict", choices=["CLEAR", "REVIEW", "HOLD"], help="only records with this verdict"
        )
        each.add_argument("--since", help="created at or after (RFC 3339, e.g. 2026-11-01T00:00:00Z)")
        each.add_argument("--until", help="created before (RFC 3339)")
        each.add_argument("--limit", type=int, help="at most this many records")
        add_export_options(each)


def _add_model_data_commands(what: Any) -> None:
    """records shadow-report and records labels: what the model learns and is judged from."""
    shadow = _add_store_command(
        what,
        "shadow-report",
        help="per station: how a shadow model's raises compare with the live model's",
        description=(
            "Reads verdict records that carry a shadow score (a model sent with `downlink send --type model "
            "--shadow`)."
        ),
        example="prescreen records shadow-report --db receiver.db --since 2026-11-01T00:00:00Z --json",
        run=cmd_records_shadow_report,
    )
    shadow.add_argument("--device", help="only this device")
    shadow.add_argument("--since", help="created at or after (RFC 3339)")
    shadow.add_argument("--until", help="created before (RFC 3339)")
    add_gate_options(shadow)
    add_json_option(shadow, "one JSON object instead of a table")
    labels = _add_store_command(
        what,
        "labels",
        help="training table: verdicts joined with their customs outcomes (one CSV row per parcel)",
        description=(
            "Label rule: seized, denied_entry, penalty, destroyed -> 1; released, assessment_complete -> 0; "
            "abandoned, returned or no outcome -> no row; the final version of a corrected record counts. "
            "Columns: the `model eval` ones plus station, time, outcome."
        ),
        example="prescreen records labels --db receiver.db --since 2026-06-01T00:00:00Z --format csv > "
        "labels.csv",
        run=cmd_records_labels,
    )
    labels.add_argument("--device", help="only this device")
    labels.add_argument("--since", help="scanned at or after (RFC 3339)")
    labels.add_argument("--until", help="records created before (RFC 3339)")
    labels.add_argument(
        "--customs-key",
        action="append",
        metavar="B64",
        help="a customs public key (as in [sync] customs_keys; repeatable): only outcomes carrying customs' "
        "message signed by one of them, to that station, for that parcel, are labels",
    )
    labels.add_argument("--format", choices=["csv"], default="csv", help="the `model eval` CSV shape")
    labels.add_argument(
        "--screened",
        action="store_true",
        help="every parcel screened instead, labelled or not, with a cleared column (for model train "
        "--calibrate-on)",
    )


def _add_trust_commands(sub: Any) -> None:
    """trust add, remove and list."""
    trust = add_command(
        sub,
        "trust",
        help="manage a receiver's trust store (station keys)",
        description='The file is {"keys": [entries]}, each entry what `prescreen key show` prints.',
        example="prescreen key show --config agent.toml | prescreen trust add --file trust.json",
    )
    what = subcommands(trust, dest="action", metavar="ACTION")
    add = add_command(
        what,
        "add",
        help="add a station's key (the output of prescreen key show)",
        description=(
            "Reads the entry from ENTRY (a file) or stdin; creates the file if needed; replaces an entry "
            "with the same key id."
        ),
        example="prescreen key show | prescreen trust add --file trust.json",
        run=cmd_trust,
    )
    add.add_argument("entry", nargs="?", help="file with one `prescreen key show` entry (default: stdin)")
    remove = add_command(
        what,
        "remove",
        help="remove a key (by key id, or every key of SITE/DEVICE)",
        description="Remove a key from a receiver's trust store, by key id or every key of one SITE/DEVICE.",
        example="prescreen trust remove --file trust.json site-01/station-07",
        run=cmd_trust,
    )
    remove.add_argument("key", help="key id, or SITE/DEVICE")
    listing = add_command(
        what,
        "list",
        help="list the trusted keys",
        description="List the keys a receiver's trust store holds: site, device, key id.",
        example="prescreen trust list --file trust.json",
        run=cmd_trust,
    )
    add_json_option(listing, "print the whole store as one JSON object")
    for parser in (add, remove, listing):
        parser.add_argument("--file", required=True, help="trust store JSON file (the receiver's --trust)")
