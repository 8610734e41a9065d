"""Commands for whoever wires and sizes the hardware: ``detect``, ``decode scale|barcode``,
``bench sync|fleet`` and ``version``.

They need no running agent and no config: they talk to a serial port, read a captured trace from
stdin, or start their own broker, receivers and stations to measure this machine.
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
from pathlib import Path
from typing import Any

from prescreen._version import __version__
from prescreen.commands.helpers import (
    EXIT_FAILURE,
    EXIT_OK,
    add_command,
    add_json_option,
    print_json,
    subcommands,
)


def cmd_version(args: argparse.Namespace) -> int:
    """Print the version."""
    print(f"prescreen-agent {__version__}")
    return EXIT_OK


def cmd_detect(args: argparse.Namespace) -> int:
    """Try the known protocols and baud rates on a port; report what answered."""
    from prescreen.drivers.detect import BAUDRATES, best, detect

    attempts = detect(args.port, baudrates=tuple(args.baud) if args.baud else BAUDRATES)
    found = best(attempts)
    if args.json:
        print_json(
            {
                "port": args.port,
                "found": dataclasses.asdict(found) if found else None,
                "attempts": [dataclasses.asdict(a) for a in attempts],
            }
        )
        return EXIT_OK if found else EXIT_FAILURE
    for attempt in attempts:
        mark = "ANSWERED" if attempt.answered else "-"
        print(f"{attempt.protocol:<18} {attempt.settings:<10} frames={attempt.frames:<3} {mark}")
    if found is None:
        print(f"nothing answered on {args.port}: check power, cable, and that nothing else holds the port")
        return EXIT_FAILURE
    sample = f" reading {found.sample}" if found.sample else ""
    print(f"found: {found.protocol} at {found.settings}{sample}")
    return EXIT_OK


def cmd_decode_scale(args: argparse.Namespace) -> int:
    """Decode raw scale bytes from stdin: one JSON object per frame."""
    from prescreen.core.errors import FrameError
    from prescreen.drivers.registry import scale_protocol

    protocol = scale_protocol(args.protocol)
    framer = protocol.framer()
    for frame in framer.feed(sys.stdin.buffer.read()):
        try:
            reading = protocol.parse(frame)
        except FrameError as exc:
            print_json({"status": "error", "stable": False, "weight_kg": None, "error": str(exc)})
            continue
        if reading is not None:
            print_json(reading.as_json())
    return EXIT_OK


def cmd_decode_barcode(args: argparse.Namespace) -> int:
    """Decode one scan per stdin line: one JSON object per line."""
    from prescreen.drivers.barcodes import decode

    # Split on line ends only: str.splitlines() also splits at GS (0x1D), the GS1 field separator.
    for line in sys.stdin.read().replace("\r\n", "\n").replace("\r", "\n").split("\n"):
        if line.strip():
            print_json(decode(line).as_json())
    return EXIT_OK


def cmd_bench_sync(args: argparse.Namespace) -> int:
    """Fill an outbox with N records and drain them to a local broker and receiver."""
    from prescreen.sim.syncbench import run_sync_bench

    summary = run_sync_bench(
        args.records,
        workdir=Path(args.workdir) if args.workdir else None,
        batch_size=args.batch_size,
        inflight_batches=args.inflight,
        compress=args.compress,
        receiver_workers=args.receiver_workers,
    )
    if args.json:
        print_json(summary)
    else:
        for key, value in summary.items():
            print(f"{key:<20} {value}")
    return EXIT_OK if summary["exactly_once"] else EXIT_FAILURE


def cmd_bench_fleet(args: argparse.Namespace) -> int:
    """Run a fleet of stations against a local 3-node cluster; one JSON line."""
    from prescreen.sim.fleet import FleetPlan, run_fleet

    plan = FleetPlan(
        stations=args.stations,
        parcels_per_minute=args.parcels_per_minute,
        backlog=args.backlog,
        receivers=args.receivers,
        live_s=args.live_s,
        processes=args.processes,
        admin_db=args.db,
    )
    summary = run_fleet(plan)
    print_json(summary)
    return EXIT_OK if summary["exactly_once"] else EXIT_FAILURE


def add_ops_commands(sub: Any) -> None:
    """detect, decode, bench and version."""
    detect = add_command(
        sub,
        "detect",
        help="find which scale or scanner protocol answers on a port",
        description=(
            "Try every scale and scanner protocol at 9600, 19200, 4800 and 2400 baud with its own data "
            "format, and say what answered."
        ),
        example="prescreen detect /dev/ttyUSB0",
        run=cmd_detect,
    )
    detect.add_argument("port", help="device path or pyserial URL")
    detect.add_argument("--baud", type=int, action="append", help="baud rate to try (repeatable)")
    add_json_option(detect, "one JSON object")
    _add_decode_commands(sub)
    _add_bench_commands(sub)
    add_command(
        sub,
        "version",
        help="print the version",
        description="Print the installed version of prescreen-agent.",
        example="prescreen version",
        run=cmd_version,
    )


def _add_decode_commands(sub: Any) -> None:
    """decode scale and decode barcode: a captured trace through the station's own parsers."""
    example = "printf 'S S      1.250 kg\\r\\n' | prescreen decode scale --protocol mt-sics"
    decode = add_command(
        sub,
        "decode",
        help="decode raw device data from stdin",
        description=(
            "Decode what a device sends, read from stdin, with the same parsers the station uses: for "
            "checking a captured trace."
        ),
        example=example,
    )
    what = subcommands(decode)
    scale = add_command(
        what,
        "scale",
        help="scale bytes → one JSON object per frame",
        description=(
            "Read scale bytes from stdin and print one JSON object per frame (status, stable, weight_kg)."
        ),
        example=example,
        run=cmd_decode_scale,
    )
    scale.add_argument("--protocol", required=True, help="mt-sics, nci, toledo-8213, toledo-continuous")
    add_command(
        what,
        "barcode",
        help="one scan per line → one JSON object per line",
        description=(
            "Read one scan per line from stdin and print what the station would make of it (carrier, "
            "tracking number, GS1 fields)."
        ),
        example="echo 1Z5R89390357567127 | prescreen decode barcode",
        run=cmd_decode_barcode,
    )


def _add_bench_commands(sub: Any) -> None:
    """bench sync and bench fleet: size a deployment on this machine."""
    bench = add_command(
        sub,
        "bench",
        help="measure this machine",
        description=(
            "Benchmarks that size a deployment on this machine, with real processes (broker, receiver)."
        ),
        example="prescreen bench sync --records 10000",
    )
    what = subcommands(bench)
    sync = add_command(
        what,
        "sync",
        help="drain N records through a local broker to the receiver; count lost and duplicates",
        description=(
            "Starts its own broker and receiver process. Exit 1 if any record was lost or stored twice."
        ),
        example="prescreen bench sync --records 100000 --json",
        run=cmd_bench_sync,
        log_level="warning",
    )
    sync.add_argument("--records", type=int, default=100_000, help="records (default 100000)")
    sync.add_argument("--batch-size", type=int, default=500, help="records per MQTT message")
    sync.add_argument("--inflight", type=int, default=8, help="unacked batches at once")
    sync.add_argument("--compress", action="store_true", help="zlib-compress batches ([sync] compress)")
    sync.add_argument(
        "--receiver-workers", type=int, default=1, help="receiver processes (prescreen receiver --workers)"
    )
    sync.add_argument("--workdir", help="keep the outbox and receiver store here")
    add_json_option(sync)
    fleet = add_command(
        what,
        "fleet",
        help="many stations against a 3-node NATS cluster and receivers on PostgreSQL",
        description="Starts a 3-node NATS cluster (JetStream + MQTT) on free loopback ports, receivers "
        "on a JetStream stream and a PostgreSQL database of their own, and the stations in worker "
        "processes; prints one JSON line. Exit 1 if any record was lost or stored twice.",
        example="prescreen bench fleet --stations 200 --parcels-per-minute 12 --backlog 1000",
        run=cmd_bench_fleet,
        log_level="warning",
    )
    fleet.add_argument("--stations", type=int, default=200, help="stations (default 200)")
    fleet.add_argument("--parcels-per-minute", type=float, default=12.0, help="per station, live phase")
    fleet.add_argument("--backlog", type=int, default=1000, help="records each station holds at the start")
    fleet.add_argument("--receivers", type=int, default=2, choices=(1, 2, 3), help="receiver processes")
    fleet.add_argument("--live-s", type=float, default=60.0, help="seconds of live parcels")
    fleet.add_argument("--processes", type=int, default=2, help="worker processes running the stations")
    fleet.add_argument(
        "--db",
        default="postgresql://postgres@127.0.0.1:5432/postgres",
        help="PostgreSQL server (a database of its own is created there and dropped)",
    )
