"""The ``prescreen`` command: a thin layer over the library (each command calls one function).

The commands live one module per audience (station, compliance, screening, customs, records, ops,
sim) and share :mod:`prescreen.commands.helpers`; this module builds the parser from them and is
the one place that turns a :class:`PrescreenError` into an exit code and a one-line message (the
library never prints or exits).
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
from collections.abc import Sequence

from prescreen.commands.helpers import (
    EXIT_FAILURE,
    EXIT_INTERRUPTED,
    EXIT_USAGE,
    Command,
    Parser,
    error,
    setup_logging,
)
from prescreen.core.errors import PrescreenError

# In the order ``prescreen --help`` lists them: the station's people first, customs after. Each is
# (module, function) imported when the parser is built: ``prescreen run`` builds the station's
# commands only, and the agent then never imports the other commands' modules (nor what their
# option defaults import: the shadow report, the labels).
AUDIENCES: tuple[tuple[str, str], ...] = (
    ("station", "add_station_commands"),
    ("sim", "add_sim_commands"),
    ("compliance", "add_compliance_commands"),
    ("screening", "add_screening_commands"),
    ("customs", "add_customs_commands"),
    ("records", "add_records_commands"),
    ("ops", "add_ops_commands"),
)


def _command_of(argv: Sequence[str]) -> str | None:
    """The command named in ``argv`` (after the global options), or None."""
    first = argparse.ArgumentParser(add_help=False)
    first.add_argument("--log-level")
    first.add_argument("command", nargs="?")
    command: str | None = first.parse_known_args(argv)[0].command
    return command


def build_parser(command: str | None = None) -> argparse.ArgumentParser:
    """The argument parser (exposed so tests can check every command has help); with ``command``,
    the audiences up to the one that has it (all of them if none has)."""
    parser = Parser(
        prog="prescreen",
        description=__doc__.splitlines()[0],
        epilog="Example: prescreen demo --parcels 20   (then prescreen COMMAND --help on each command)",
    )
    parser.add_argument(
        "--log-level",
        default="info",
        choices=["debug", "info", "warning", "error"],
        help="least severe log line written to stderr (default info)",
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for module, function in AUDIENCES:
        getattr(importlib.import_module(f"prescreen.commands.{module}"), function)(sub)
        if command is not None and command in sub.choices:
            break
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``prescreen`` console script."""
    args_given = sys.argv[1:] if argv is None else list(argv)
    parser = build_parser(_command_of(args_given))
    if not args_given:
        parser.print_help(sys.stderr)  # no command: show the commands, not just "required: COMMAND"
        return EXIT_USAGE
    args = parser.parse_args(argv)
    func: Command = args.func
    try:
        setup_logging(args)
        return func(args)
    except PrescreenError as exc:
        error(str(exc))
        return EXIT_FAILURE
    except KeyboardInterrupt:
        return EXIT_INTERRUPTED
    except BrokenPipeError:  # `prescreen doctor | head`: the reader left, which is not an error here
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())  # so the interpreter's final flush does not fail too
        return EXIT_FAILURE


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
