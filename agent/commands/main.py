"""The ``prescreen`` command: a thin layer over the library (each command calls one function).

The commands live one module per audience (station, compliance, screening, customs, records, ops,
sim) and share :mod:`prescreen.commands.helpers`; this module builds the parser from them and is
the one place that turns a :class:`PrescreenError` into an exit code and a one-line message (the
library never prints or exits).
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable, Sequence
from typing import Any

from prescreen.commands.compliance import add_compliance_commands
from prescreen.commands.customs import add_customs_commands
from prescreen.commands.helpers import (
    EXIT_FAILURE,
    EXIT_INTERRUPTED,
    EXIT_USAGE,
    Command,
    Parser,
    error,
    setup_logging,
)
from prescreen.commands.ops import add_ops_commands
from prescreen.commands.records import add_records_commands
from prescreen.commands.screening import add_screening_commands
from prescreen.commands.sim import add_sim_commands
from prescreen.commands.station import add_station_commands
from prescreen.core.errors import PrescreenError

# In the order ``prescreen --help`` lists them: the station's people first, customs after.
AUDIENCES: tuple[Callable[[Any], None], ...] = (
    add_station_commands,
    add_sim_commands,
    add_compliance_commands,
    add_screening_commands,
    add_customs_commands,
    add_records_commands,
    add_ops_commands,
)


def build_parser() -> argparse.ArgumentParser:
    """The argument parser (exposed so tests can check every command has help)."""
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
    for add_commands in AUDIENCES:
        add_commands(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``prescreen`` console script."""
    parser = build_parser()
    if not (sys.argv[1:] if argv is None else argv):
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
