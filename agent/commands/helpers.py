"""What every ``prescreen`` command shares: how a command is declared, exit codes, JSON output, the
agent's config and its local API, and the export options of the station's and the receiver's stores.

Why one module: each audience's commands (station, sim, compliance, screening, customs, records,
ops) stay a list of small functions, and a rule that holds for all of them (every command has a
description and an example; logging is set up before the command runs; errors end as one line and
exit 1) is written once. Only the standard library and light modules of the package are imported
here at the top: ``prescreen version`` and ``--help`` build the whole parser and must not load
numpy, SQLite helpers, drivers or paho (tests/test_lazy_imports.py checks it); a command imports
what it needs when it runs.
"""

from __future__ import annotations

import argparse
import importlib
import json
import signal
import sys
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from prescreen.ops.config import DEFAULT_PATH

EXIT_OK = 0
EXIT_FAILURE = 1  # the command ran and the answer is no (a check failed, a record was refused)
EXIT_USAGE = 2  # argparse's own code for a wrong command line
EXIT_INTERRUPTED = 130  # Ctrl-C, as a shell reports it

Command = Callable[[argparse.Namespace], int]
# What a command's ``log_level`` default may be: a fixed least severe level, or "option" for the
# global --log-level. Commands without one set up no logging (their output is all they say).
LOG_FROM_OPTION = "option"


class HelpFormatter(argparse.HelpFormatter):
    """Wraps descriptions, but shows an example (an epilog) as written: the default wrapping
    breaks lines at the hyphens of paths and options, and a wrapped command cannot be pasted."""

    def _fill_text(self, text: str, width: int, indent: str) -> str:
        if text.startswith("Example:"):
            return indent + text
        return super()._fill_text(text, width, indent)


class Parser(argparse.ArgumentParser):
    """Every command's parser (subparsers are made of the parent's class): the help formatter above."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("formatter_class", HelpFormatter)
        super().__init__(*args, **kwargs)


class Choices:
    """The values an option takes, read from the module that owns them the first time they are asked
    for (when the option is parsed or its help is shown).

    Why not the tuple itself: the owner of a vocabulary is often a heavy module (the exports import
    the entry rules and the barcode drivers, the downlink imports paho), and building the parser for
    ``prescreen version`` must not import them. The list stays in one place, its owner's. Give the
    option a ``metavar`` (argparse formats the choices of one without, when it is added) and name
    the values in its help with ``%(choices)s``.
    """

    def __init__(self, module: str, name: str) -> None:
        self._where = (module, name)
        self._values: tuple[str, ...] | None = None

    def _load(self) -> tuple[str, ...]:
        if self._values is None:
            module, name = self._where
            self._values = tuple(getattr(importlib.import_module(module), name))
        return self._values

    def __contains__(self, value: object) -> bool:
        return value in self._load()

    def __iter__(self) -> Iterator[str]:
        return iter(self._load())

    def __len__(self) -> int:
        return len(self._load())


def add_command(
    sub: Any,
    name: str,
    *,
    help: str,
    description: str,
    example: str,
    run: Command | None = None,
    log_level: str | None = None,
    aliases: tuple[str, ...] = (),
) -> argparse.ArgumentParser:
    """Declare one command (or a group of them, without ``run``) under ``sub``.

    A description and an example are required arguments, so no command can ship without them;
    ``log_level`` is the least severe log line the command writes (``LOG_FROM_OPTION``: the global
    ``--log-level``), set up by :func:`setup_logging` before it runs.
    """
    parser: argparse.ArgumentParser = sub.add_parser(
        name, help=help, description=description, epilog=f"Example: {example}", aliases=list(aliases)
    )
    if run is not None:
        parser.set_defaults(func=run, command_log_level=log_level)
    return parser


def subcommands(parser: argparse.ArgumentParser, dest: str = "what", metavar: str = "WHAT") -> Any:
    """The subcommands of a command group (one of them is required)."""
    return parser.add_subparsers(dest=dest, required=True, metavar=metavar)


def add_config_option(parser: argparse.ArgumentParser, of: str = "the agent") -> None:
    """``--config FILE``, defaulting to the installed station's file."""
    parser.add_argument("--config", default=DEFAULT_PATH, help=f"TOML config file of {of} ({DEFAULT_PATH})")


def add_json_option(parser: argparse.ArgumentParser, what: str = "print one JSON object") -> None:
    """``--json``: machine-readable output instead of lines for a person."""
    parser.add_argument("--json", action="store_true", help=what)


def print_json(value: Any, *, flush: bool = False) -> None:
    """One JSON document on one stdout line (what ``--json`` and the line-per-record commands print)."""
    print(json.dumps(value), flush=flush)


def warn(message: str) -> None:
    """One warning line on stderr, in the format of the errors :mod:`prescreen.commands.main` prints."""
    print(f"prescreen: warning: {message}", file=sys.stderr)


def error(message: str) -> None:
    """One error line on stderr (the command then returns ``EXIT_FAILURE``)."""
    print(f"prescreen: error: {message}", file=sys.stderr)


def setup_logging(args: argparse.Namespace) -> None:
    """Configure logging as the command declared (see :func:`add_command`)."""
    level = getattr(args, "command_log_level", None)
    if level is not None:
        from prescreen.ops import logs

        logs.configure(args.log_level if level == LOG_FROM_OPTION else level)


def stop_on_signal() -> threading.Event:
    """An event set by SIGINT or SIGTERM: long-running commands wait on it and then stop cleanly."""
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    return stop


def load_config(path: str) -> Any:
    """The agent's validated config (:func:`prescreen.ops.config.load`)."""
    from prescreen.ops import config

    return config.load(path)


def post_to_agent(conf: Any, route: str, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
    """POST ``body`` to the running agent's local API with its token; the status and JSON answer.

    Raises:
        ConfigError: the agent does not answer (not running, or another port in the config).
    """
    import httpx
    from prescreen.core.errors import ConfigError
    from prescreen.web.server import api_headers

    url = conf.http.url(route)
    try:
        response = httpx.post(url, json=body, headers=api_headers(conf.api_token_path()), timeout=15)
        answer: dict[str, Any] = response.json()
    except (httpx.HTTPError, ValueError) as exc:
        raise ConfigError(f"the agent is not answering at {url}: {exc}") from exc
    return response.status_code, answer


def outbox_path(args: argparse.Namespace) -> Path:
    """The station's outbox file: ``--outbox``, else the one ``--config`` names."""
    from prescreen.core.errors import ConfigError

    if args.outbox:
        return Path(args.outbox)
    if not args.config:
        raise ConfigError("give --config (the agent's TOML) or --outbox PATH")
    return Path(load_config(args.config).outbox.path)


def add_export_options(parser: argparse.ArgumentParser) -> None:
    """--format and --allow-incomplete, the same for the station's and the receiver's export."""
    parser.add_argument(
        "--format",
        default="ndjson",
        choices=Choices("prescreen.trade.exports", "FORMATS"),
        metavar="FORMAT",
        help="ndjson/csv: the record schema; us-informal (Type 11), us-formal-lines (Type 01), "
        "us-mail (Type 13), ics2-ens, pact: mapped per docs/data-mapping.md (default ndjson)",
    )
    parser.add_argument(
        "--allow-incomplete",
        action="store_true",
        help="write parcels missing mandatory elements too, naming the gaps in the 'incomplete' column",
    )


def export(records: list[dict[str, Any]], args: argparse.Namespace) -> int:
    """Write ``records`` to stdout in ``--format``; tell the operator on stderr what was refused
    (exit 1) or left out as not of the format's kind."""
    from prescreen.trade.exports import write_records

    result = write_records(records, args.format, sys.stdout, allow_incomplete=args.allow_incomplete)
    for refusal in result.refused:
        print(f"prescreen: refused {refusal}", file=sys.stderr)
    if result.refused or result.not_applicable:
        print(
            f"prescreen: {result.written} rows written, {len(result.refused)} parcels refused as incomplete "
            f"(--allow-incomplete writes them marked), {result.not_applicable} records not for this format",
            file=sys.stderr,
        )
    return EXIT_FAILURE if result.refused else EXIT_OK
