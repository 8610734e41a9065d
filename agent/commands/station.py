"""Commands for the people who install and run a packing station: ``run``, ``status``, ``page-url``,
``doctor``, ``config example|check``, ``key show|new`` and ``outbox migrate|requeue``.

They act on the station's own config, key and outbox, or ask the running agent over its local
HTTP endpoint; each calls one library function and turns its answer into lines and an exit code.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from prescreen.commands.helpers import (
    EXIT_FAILURE,
    EXIT_OK,
    add_command,
    add_config_option,
    add_json_option,
    load_config,
    print_json,
    stop_on_signal,
    subcommands,
)
from prescreen.core.errors import ConfigError, OutboxError
from prescreen.ops.config import DEFAULT_PATH


def cmd_run(args: argparse.Namespace) -> int:
    """Run a packing station from a config file until SIGTERM/SIGINT (systemd Type=notify)."""
    from prescreen.packing.service import limit_malloc

    limit_malloc()  # before the imports and threads below allocate
    from prescreen.ops import config, logs
    from prescreen.packing.app import Agent
    from prescreen.packing.service import supervise

    stop = stop_on_signal()
    conf = config.load_station(args.config)
    logs.configure(conf.logging.level)
    agent = Agent(conf).start()
    try:
        supervise(agent, stop)
    finally:
        agent.stop()
    return EXIT_OK


def cmd_status(args: argparse.Namespace) -> int:
    """Ask the running agent for its health; exit 0 only when every condition is ok."""
    import httpx

    url = load_config(args.config).http.url("/status")
    try:
        status: dict[str, Any] = httpx.get(url, timeout=3).json()
        status["running"] = True
    except (httpx.HTTPError, ValueError) as exc:
        status = {
            "running": False,
            "health": "down",
            "healthy": False,
            "problems": [f"agent not answering at {url}: {exc}"],
        }
    if args.json:
        print_json(status)
    elif status["running"]:
        from prescreen.packing.service import status_line

        print(f"{status['device_id']}: {status['health']}, up {status['uptime_s']} s")
        print(status_line(status))
        for problem in status["problems"]:
            print(f"problem: {problem}")
    else:
        print(status["problems"][0])
    return EXIT_OK if status["running"] and status["healthy"] else EXIT_FAILURE


def cmd_page_url(args: argparse.Namespace) -> int:
    """Print the station page's address with the local API token, for the bench screen's kiosk."""
    from prescreen.web.server import TOKEN_HEADER, api_headers

    conf = load_config(args.config)
    print(f"{conf.http.url('/station')}#token={api_headers(conf.api_token_path())[TOKEN_HEADER]}")
    return EXIT_OK


def cmd_doctor(args: argparse.Namespace) -> int:
    """Check config, devices, orders, disk, model, broker, outbox and clock; exit 1 on a FAIL."""
    from prescreen.ops.doctor import run_checks

    checks = run_checks(args.config)
    for check in checks:
        print(check.line())
    failed = sum(c.level == "FAIL" for c in checks)
    print(f"{len(checks)} checks, {failed} failed")
    return EXIT_FAILURE if failed else EXIT_OK


def cmd_config_example(args: argparse.Namespace) -> int:
    """Print the commented example config (every key, its default, allowed values, meaning)."""
    from prescreen.ops.configdoc import example

    print(example(), end="")
    return EXIT_OK


def cmd_config_check(args: argparse.Namespace) -> int:
    """Validate a config file exactly as ``prescreen run`` does; one line, exit 1 if refused."""
    from prescreen.ops import config

    try:
        config.load_station(args.file)
    except ConfigError as exc:
        print(f"FAIL {exc}")
        return EXIT_FAILURE
    print(f"ok   {args.file} (as prescreen run checks it; prescreen doctor also checks devices, broker)")
    return EXIT_OK


def cmd_key(args: argparse.Namespace) -> int:
    """Print this station's trust-store entry (creating the key on a new station)."""
    from prescreen.core.signing import DeviceKey
    from prescreen.packing.app import device_key_path

    conf = load_config(args.config)
    key = DeviceKey.load_or_create(device_key_path(conf))
    entry = key.trust_entry(conf.station.site_id, conf.station.device_id)
    if args.trust_file:
        from prescreen.core import truststore

        print(truststore.add(Path(args.trust_file), entry))
    else:
        print_json(entry)
    return EXIT_OK


def cmd_key_new(args: argparse.Namespace) -> int:
    """Set the station's key aside and make a new one; prints the new trust-store entry."""
    import time

    from prescreen.core.signing import DeviceKey
    from prescreen.packing.app import device_key_path

    if not args.i_know:
        raise ConfigError(
            "a new key is a new identity: customs must enrol it, and records signed by the old key "
            "stay the old key's. Give --i-know to go ahead"
        )
    conf = load_config(args.config)
    path = device_key_path(conf)
    if path.exists():
        aside = path.with_name(f"{path.name}.replaced-{time.strftime('%Y%m%dT%H%M%S')}")
        path.rename(aside)
        print(f"old key kept as {aside}", file=sys.stderr)
    key = DeviceKey.load_or_create(path)
    print_json(key.trust_entry(conf.station.site_id, conf.station.device_id))
    return EXIT_OK


def cmd_outbox_migrate(args: argparse.Namespace) -> int:
    """Migrate the configured outbox in place; a station that has none yet has nothing to migrate.

    A command of its own because the package's post-install script runs it on upgrade, between
    stopping the old agent and starting the new one: a migration problem is then reported by the
    upgrade itself (one clear line, the service left stopped), not as a restart loop in the journal.
    """
    import sqlite3

    from prescreen.packing.outbox_schema import SCHEMA_VERSION, migrate, open_durable

    path = Path(load_config(args.config).outbox.path)
    if not path.exists():
        print(f"{path}: no outbox yet (the first start creates it at schema v{SCHEMA_VERSION})")
        return EXIT_OK
    db = open_durable(path)
    try:
        found = migrate(db, path)
    except sqlite3.Error as exc:
        raise OutboxError(f"{path}: cannot migrate outbox: {exc}") from exc
    finally:
        db.conn.close()
    change = f"migrated from v{found}" if found < SCHEMA_VERSION else "already current"
    print(f"{path}: outbox schema v{SCHEMA_VERSION} ({change})")
    return EXIT_OK


def cmd_outbox_requeue(args: argparse.Namespace) -> int:
    """Put rejected records back to pending (after a person looked at why); prints how many."""
    from prescreen.packing.outbox import Outbox

    outbox = Outbox(load_config(args.config).outbox.path)
    try:
        count = outbox.requeue(args.record)
    finally:
        outbox.close()
    print(f"{count} rejected record(s) queued again")
    return EXIT_OK


def add_station_commands(sub: Any) -> None:
    """run, status, page-url, doctor, config, key and outbox."""
    run = add_command(
        sub,
        "run",
        help="run a packing station from a config file",
        description="Run a station until stopped.",
        example="prescreen run --config /etc/prescreen/agent.toml",
        run=cmd_run,
    )
    add_config_option(run)
    status = add_command(
        sub,
        "status",
        help="health, devices, backlog, last ack, model and uptime of the running agent",
        description=(
            "Asks the running agent over its local HTTP endpoint. Exit 0 when every health condition is ok, "
            "1 when one is degraded or down or the agent does not answer."
        ),
        example="prescreen status --config /etc/prescreen/agent.toml --json",
        run=cmd_status,
    )
    add_config_option(status)
    add_json_option(status)
    page_url = add_command(
        sub,
        "page-url",
        help="the station page's address with the local API token (for the bench screen's kiosk)",
        description="Run as the station's user or root (the token file is 0600).",
        example='chromium --kiosk "$(prescreen page-url --config /etc/prescreen/agent.toml)"',
        run=cmd_page_url,
    )
    add_config_option(page_url)
    doctor = add_command(
        sub,
        "doctor",
        help="check an installation: one line per check, what to do on failure",
        description=(
            "Checks config, serial ports, order source, disk, model, broker, outbox backlog and clock. Exit "
            "1 if any check fails."
        ),
        example="prescreen doctor --config /etc/prescreen/agent.toml",
        run=cmd_doctor,
        log_level="error",
    )
    add_config_option(doctor)
    _add_config_commands(sub)
    _add_key_commands(sub)
    _add_outbox_commands(sub)


def _add_config_commands(sub: Any) -> None:
    """config example and config check."""
    conf = add_command(
        sub,
        "config",
        help="start a config file, or check one the way prescreen run will",
        description=(
            "Write a config file to start from, or check one with the same validation as prescreen run."
        ),
        example="prescreen config example > agent.toml && prescreen config check agent.toml",
    )
    what = subcommands(conf)
    add_command(
        what,
        "example",
        help="print a commented config with every key, its default, allowed values and meaning",
        description="Generated from the schema, so it always matches what the agent accepts.",
        example="prescreen config example | sudo tee /etc/prescreen/agent.toml",
        run=cmd_config_example,
    )
    check = add_command(
        what,
        "check",
        help="validate a config file exactly as prescreen run does (exit 1 if refused)",
        description=(
            "Validate a config file exactly as prescreen run does: a refused value is named with its file, "
            "line, key and rule (exit 1)."
        ),
        example="prescreen config check /etc/prescreen/agent.toml",
        run=cmd_config_check,
    )
    check.add_argument("file", help="TOML config file")


def _add_key_commands(sub: Any) -> None:
    """key show and key new: the station's signing key."""
    key = add_command(
        sub,
        "key",
        help="this station's signing key",
        description=(
            "The station's Ed25519 signing key: print its trust-store entry for customs, or replace it "
            "after a loss."
        ),
        example="prescreen key show --config /etc/prescreen/agent.toml --trust-file trust.json",
    )
    what = subcommands(key)
    show = add_command(
        what,
        "show",
        help="print the trust-store entry (creates the key if new)",
        description="Prints the entry a receiver's trust store needs, or adds it to --trust-file.",
        example="prescreen key show | prescreen trust add --file trust.json",
        run=cmd_key,
        log_level="warning",
    )
    add_config_option(show)
    show.add_argument("--trust-file", help="add the entry to this trust store file instead of printing it")
    new = add_command(
        what,
        "new",
        help="replace this station's key: a new identity (the old key is kept aside)",
        description=(
            "For a station whose key or outbox is lost: the agent refuses to start with only one of them. "
            "Sequence numbers go on from the last one the old key signed. Enrol the new key with customs "
            "afterwards."
        ),
        example="prescreen key new --config /etc/prescreen/agent.toml --i-know",
        run=cmd_key_new,
        log_level="warning",
    )
    add_config_option(new)
    new.add_argument(
        "--i-know", action="store_true", help="yes: records signed by the old key stay the old key's"
    )


def _add_outbox_commands(sub: Any) -> None:
    """outbox migrate and outbox requeue."""
    outbox = add_command(
        sub,
        "outbox",
        help="station outbox maintenance",
        description=(
            "Maintenance of the station's outbox: schema upgrades and re-sending records the receiver "
            "rejected."
        ),
        example="sudo -u prescreen prescreen outbox migrate",
    )
    what = subcommands(outbox)
    migrate = add_command(
        what,
        "migrate",
        help="upgrade the outbox schema in place (the package runs this on upgrade)",
        description="Upgrade the outbox schema in place. Each migration runs in one transaction; an "
        "outbox written by a newer agent is refused.",
        example=f"prescreen outbox migrate --config {DEFAULT_PATH}",
        run=cmd_outbox_migrate,
        log_level="warning",
    )
    add_config_option(migrate, of="the station")
    requeue = add_command(
        what,
        "requeue",
        help="send records the receiver rejected again, after review (all, or --record ID)",
        description="Puts rejected records back to pending; the running uplink sends them on its next pass.",
        example=f"prescreen outbox requeue --config {DEFAULT_PATH} --record 3f0c...",
        run=cmd_outbox_requeue,
        log_level="warning",
    )
    add_config_option(requeue, of="the station")
    requeue.add_argument("--record", action="append", help="only this record id (repeatable)")
