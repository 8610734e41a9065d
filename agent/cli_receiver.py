"""CLI commands for the customs side and for trust: ``receiver``, ``records``, ``key``.

Kept apart from :mod:`prescreen.cli` so each command module stays small; like it, each command
calls one library function and turns the result into output and an exit code.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from typing import Any

from prescreen import logs
from prescreen.errors import ConfigError

EXIT_FAILURE = 1


def cmd_receiver(args: argparse.Namespace) -> int:
    """Run the reference receiver until SIGTERM/SIGINT."""
    from prescreen.cli import _stop_on_signal
    from prescreen.sdnotify import notify
    from prescreen.signing import TrustStore
    from prescreen.sync.mqtt import Security
    from prescreen.sync.receiver import Receiver

    logs.configure(args.log_level)
    if not args.trust and not args.no_verify:
        raise ConfigError("give --trust FILE (station public keys) or, for a test bench only, --no-verify")
    trust = TrustStore.load(args.trust) if args.trust else None
    security = Security(
        cafile=args.cafile or "",
        certfile=args.certfile or "",
        keyfile=args.keyfile or "",
        username=args.username or "",
        password=os.environ.get(args.password_env, "") if args.username else "",
    )
    stop = _stop_on_signal()
    receiver = Receiver(
        args.db,
        trust=trust,
        host=args.host,
        port=args.port,
        prefix=args.prefix,
        shared=not args.no_share,
        mqtt_options={"security": security},
    ).start()
    try:
        if not receiver.mqtt.subscribed.wait(10):
            print(
                f"prescreen: warning: broker {args.host}:{args.port} not reachable yet; receiving once it is",
                file=sys.stderr,
            )
        notify(READY="1", STATUS=f"receiving from {args.host}:{args.port}")
        stop.wait()
    finally:
        receiver.stop()
    return 0


def cmd_records(args: argparse.Namespace) -> int:
    """Query or export stored records, or report sequence gaps per device."""
    from prescreen.exports import write_records
    from prescreen.sync.store import Filters, open_store

    logs.configure("error")
    store = open_store(args.db)
    try:
        if args.what == "gaps":
            gaps = store.gaps()
            if args.json:
                print(json.dumps({"gaps": gaps}))
            else:
                for gap in gaps:
                    print(
                        f"{gap['site_id']}/{gap['device_id']}: seq {gap['first_missing']}"
                        f"..{gap['last_missing']} missing ({gap['missing']})"
                    )
                print(f"{len(gaps)} gaps")
            return EXIT_FAILURE if gaps else 0
        filters = Filters(
            tracking_number=args.tracking,
            device_id=args.device,
            verdict=args.verdict,
            since=args.since,
            until=args.until,
        )
        rows = store.query(filters, limit=args.limit)
    finally:
        store.close()
    bodies = [json.loads(row["body"]) for row in rows]
    write_records(bodies, args.format, sys.stdout)
    return 0


def cmd_key(args: argparse.Namespace) -> int:
    """Print this station's trust-store entry (creating the key on a new station)."""
    from prescreen import config
    from prescreen.app import device_key_path
    from prescreen.signing import DeviceKey

    logs.configure("warning")
    conf = config.load(args.config)
    key = DeviceKey.load_or_create(device_key_path(conf))
    print(json.dumps(key.trust_entry(conf.station.site_id, conf.station.device_id)))
    return 0


def add_receiver_commands(sub: Any) -> None:
    """receiver, records and key."""
    receiver = sub.add_parser(
        "receiver",
        help="run the reference receiver (customs side)",
        description="Verify signatures, dedupe, store and ack records. --db takes a SQLite path or a "
        "postgresql:// URL (several receivers may share one). Example: "
        "prescreen receiver --db receiver.db --trust trust.json --port 1883",
    )
    receiver.add_argument("--db", default="receiver.db", help="SQLite path or postgresql:// URL")
    receiver.add_argument("--trust", help='trust store JSON: {"keys": [output of `prescreen key show`, ...]}')
    receiver.add_argument("--no-verify", action="store_true", help="accept unsigned records (test benches)")
    receiver.add_argument("--host", default="127.0.0.1", help="broker host")
    receiver.add_argument("--port", type=int, default=1883, help="broker port")
    receiver.add_argument("--prefix", default="prescreen/v1", help="topic prefix")
    receiver.add_argument("--cafile", help="CA bundle: TLS with server verification")
    receiver.add_argument("--certfile", help="client certificate (mTLS)")
    receiver.add_argument("--keyfile", help="client certificate key (mTLS)")
    receiver.add_argument("--username", help="broker user name")
    receiver.add_argument(
        "--password-env", default="PRESCREEN_RECEIVER_PASSWORD", help="environment variable with the password"
    )
    receiver.add_argument(
        "--no-share", action="store_true", help="plain subscription instead of a shared one"
    )
    receiver.set_defaults(func=cmd_receiver)

    records = sub.add_parser(
        "records",
        help="query, export or check a receiver store",
        description="Example: prescreen records export --db receiver.db --verdict HOLD --format csv",
    )
    what = records.add_subparsers(dest="what", required=True, metavar="WHAT")
    for name, text in (
        ("query", "matching records as NDJSON"),
        ("export", "matching records as NDJSON or CSV"),
    ):
        each = what.add_parser(name, help=text, description=f"{text}. Filters combine with AND.")
        each.add_argument("--db", default="receiver.db", help="SQLite path or postgresql:// URL")
        each.add_argument("--tracking", help="tracking number")
        each.add_argument("--device", help="device id")
        each.add_argument("--verdict", choices=["CLEAR", "REVIEW", "HOLD"])
        each.add_argument("--since", help="created at or after (RFC 3339, e.g. 2026-11-01T00:00:00Z)")
        each.add_argument("--until", help="created before (RFC 3339)")
        each.add_argument("--limit", type=int)
        each.add_argument(
            "--format",
            default="ndjson",
            choices=["ndjson", "csv", "entry", "entry-csv", "ics2"],
            help="ndjson/csv: the record schema; entry, ics2: mapped onto the US low-value entry or "
            "the 7+1 pre-loading data elements (docs/data-mapping.md)",
        )
        each.set_defaults(func=cmd_records)
    gaps = what.add_parser("gaps", help="missing sequence numbers per device (exit 1 if any)")
    gaps.add_argument("--db", default="receiver.db", help="SQLite path or postgresql:// URL")
    gaps.add_argument("--json", action="store_true")
    gaps.set_defaults(func=cmd_records)

    key = sub.add_parser(
        "key",
        help="this station's signing key",
        description="Example: prescreen key show --config /etc/prescreen/agent.toml >> entries.json",
    )
    key_what = key.add_subparsers(dest="what", required=True, metavar="WHAT")
    show = key_what.add_parser("show", help="print the trust-store entry (creates the key if new)")
    show.add_argument("--config", required=True, help="TOML config file of the agent")
    show.set_defaults(func=cmd_key)
