"""``prescreen outbox migrate``: bring a station's outbox schema up to date, once, outside the agent.

Why a command of its own: the package's post-install script runs it on upgrade, between stopping the
old agent and starting the new one, so a migration problem is reported by the upgrade itself (one
clear line, the service left stopped) instead of as a restart loop in the journal.
"""

from __future__ import annotations

import argparse
import sqlite3
from pathlib import Path
from typing import Any

from prescreen.core.errors import OutboxError
from prescreen.ops import logs
from prescreen.ops.config import DEFAULT_PATH


def cmd_outbox_migrate(args: argparse.Namespace) -> int:
    """Migrate the configured outbox in place; a station that has none yet has nothing to migrate."""
    from prescreen.ops import config
    from prescreen.packing.outbox_schema import SCHEMA_VERSION, migrate, open_durable

    logs.configure("warning")
    path = Path(config.load(args.config).outbox.path)
    if not path.exists():
        print(f"{path}: no outbox yet (the first start creates it at schema v{SCHEMA_VERSION})")
        return 0
    db = open_durable(path)
    try:
        found = migrate(db, path)
    except sqlite3.Error as exc:
        raise OutboxError(f"{path}: cannot migrate outbox: {exc}") from exc
    finally:
        db.conn.close()
    change = f"migrated from v{found}" if found < SCHEMA_VERSION else "already current"
    print(f"{path}: outbox schema v{SCHEMA_VERSION} ({change})")
    return 0


def cmd_outbox_requeue(args: argparse.Namespace) -> int:
    """Put rejected records back to pending (after a person looked at why); prints how many."""
    from prescreen.ops import config
    from prescreen.packing.outbox import Outbox

    logs.configure("warning")
    outbox = Outbox(config.load(args.config).outbox.path)
    try:
        count = outbox.requeue(args.record)
    finally:
        outbox.close()
    print(f"{count} rejected record(s) queued again")
    return 0


def add_outbox_commands(sub: Any) -> None:
    """outbox migrate and requeue."""
    outbox = sub.add_parser(
        "outbox",
        help="station outbox maintenance",
        description=(
            "Maintenance of the station's outbox: schema upgrades and re-sending records the receiver "
            "rejected."
        ),
        epilog="Example: sudo -u prescreen prescreen outbox migrate",
    )
    what = outbox.add_subparsers(dest="what", required=True, metavar="WHAT")
    migrate = what.add_parser(
        "migrate",
        help="upgrade the outbox schema in place (the package runs this on upgrade)",
        description="Upgrade the outbox schema in place. Each migration runs in one transaction; an "
        "outbox written by a newer agent is refused.",
        epilog=f"Example: prescreen outbox migrate --config {DEFAULT_PATH}",
    )
    migrate.add_argument(
        "--config", default=DEFAULT_PATH, help=f"TOML config file of the station ({DEFAULT_PATH})"
    )
    migrate.set_defaults(func=cmd_outbox_migrate)
    requeue = what.add_parser(
        "requeue",
        help="send records the receiver rejected again, after review (all, or --record ID)",
        description="Puts rejected records back to pending; the running uplink sends them on its next pass.",
        epilog=f"Example: prescreen outbox requeue --config {DEFAULT_PATH} --record 3f0c...",
    )
    requeue.add_argument(
        "--config", default=DEFAULT_PATH, help=f"TOML config file of the station ({DEFAULT_PATH})"
    )
    requeue.add_argument("--record", action="append", help="only this record id (repeatable)")
    requeue.set_defaults(func=cmd_outbox_requeue)
