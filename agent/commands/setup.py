"""CLI commands for setting a station up: ``config example|check`` and ``trust add|remove|list``.

Kept apart from :mod:`prescreen.commands.main` so each command module stays small; like it, each command
calls one library function and turns the result into output and an exit code.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from prescreen.core.errors import ConfigError

EXIT_FAILURE = 1


def cmd_config_example(args: argparse.Namespace) -> int:
    """Print the commented example config (every key, its default, allowed values, meaning)."""
    from prescreen.ops.configdoc import example

    print(example(), end="")
    return 0


def cmd_config_check(args: argparse.Namespace) -> int:
    """Validate a config file exactly as ``prescreen run`` does; one line, exit 1 if refused."""
    from prescreen.ops import config

    try:
        config.load_station(args.file)
    except ConfigError as exc:
        print(f"FAIL {exc}")
        return EXIT_FAILURE
    print(f"ok   {args.file} (as prescreen run checks it; prescreen doctor also checks devices, broker)")
    return 0


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
    else:
        entries = truststore.read(path)
        if args.json:
            print(json.dumps({"keys": entries}))
        for entry in [] if args.json else entries:
            print(f"{entry['key_id']}  {entry['site_id']}/{entry['device_id']}")
        if not args.json:
            print(f"{len(entries)} key(s) in {path}")
    return 0


def add_setup_commands(sub: Any) -> None:
    """``config example|check`` and ``trust add|remove|list``."""
    conf = sub.add_parser(
        "config",
        help="start a config file, or check one the way prescreen run will",
        description=(
            "Write a config file to start from, or check one with the same validation as prescreen run."
        ),
        epilog="Example: prescreen config example > agent.toml && prescreen config check agent.toml",
    )
    conf_what = conf.add_subparsers(dest="what", required=True, metavar="WHAT")
    example = conf_what.add_parser(
        "example",
        help="print a commented config with every key, its default, allowed values and meaning",
        description="Generated from the schema, so it always matches what the agent accepts.",
        epilog="Example: prescreen config example | sudo tee /etc/prescreen/agent.toml",
    )
    example.set_defaults(func=cmd_config_example)
    check = conf_what.add_parser(
        "check",
        help="validate a config file exactly as prescreen run does (exit 1 if refused)",
        description=(
            "Validate a config file exactly as prescreen run does: a refused value is named with its file, "
            "line, key and rule (exit 1)."
        ),
        epilog="Example: prescreen config check /etc/prescreen/agent.toml",
    )
    check.add_argument("file", help="TOML config file")
    check.set_defaults(func=cmd_config_check)

    trust = sub.add_parser(
        "trust",
        help="manage a receiver's trust store (station keys)",
        description='The file is {"keys": [entries]}, each entry what `prescreen key show` prints.',
        epilog="Example: prescreen key show --config agent.toml | prescreen trust add --file trust.json",
    )
    trust_what = trust.add_subparsers(dest="action", required=True, metavar="ACTION")
    add = trust_what.add_parser(
        "add",
        help="add a station's key (the output of prescreen key show)",
        description=(
            "Reads the entry from ENTRY (a file) or stdin; creates the file if needed; replaces an entry "
            "with the same key id."
        ),
        epilog="Example: prescreen key show | prescreen trust add --file trust.json",
    )
    add.add_argument("entry", nargs="?", help="file with one `prescreen key show` entry (default: stdin)")
    remove = trust_what.add_parser(
        "remove",
        help="remove a key (by key id, or every key of SITE/DEVICE)",
        description="Remove a key from a receiver's trust store, by key id or every key of one SITE/DEVICE.",
        epilog="Example: prescreen trust remove --file trust.json site-01/station-07",
    )
    remove.add_argument("key", help="key id, or SITE/DEVICE")
    listing = trust_what.add_parser(
        "list",
        help="list the trusted keys",
        description="List the keys a receiver's trust store holds: site, device, key id.",
        epilog="Example: prescreen trust list --file trust.json",
    )
    listing.add_argument("--json", action="store_true", help="print the whole store as one JSON object")
    for parser in (add, remove, listing):
        parser.add_argument("--file", required=True, help="trust store JSON file (the receiver's --trust)")
        parser.set_defaults(func=cmd_trust)
