"""The ``prescreen`` command: a thin layer over the library (each command calls one function).

This is the one place that turns a :class:`PrescreenError` into an exit code and a one-line
message; the library never prints or exits.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import signal
import sys
import threading
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from prescreen._version import __version__
from prescreen.commands.compliance import add_compliance_commands
from prescreen.commands.outbox import add_outbox_commands
from prescreen.commands.receiver import add_receiver_commands
from prescreen.commands.setup import add_setup_commands
from prescreen.commands.sim import add_sim_commands
from prescreen.core.errors import PrescreenError
from prescreen.ops import logs
from prescreen.ops.config import DEFAULT_PATH
from prescreen.trade import scorecard

EXIT_FAILURE = 1
EXIT_USAGE = 2


class _HelpFormatter(argparse.HelpFormatter):
    """Wraps descriptions, but shows an example (an epilog) as written: the default wrapping
    breaks lines at the hyphens of paths and options, and a wrapped command cannot be pasted."""

    def _fill_text(self, text: str, width: int, indent: str) -> str:
        if text.startswith("Example:"):
            return indent + text
        return super()._fill_text(text, width, indent)


class _Parser(argparse.ArgumentParser):
    """Every command's parser (subparsers are made of the parent's class): the help formatter above."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("formatter_class", _HelpFormatter)
        super().__init__(*args, **kwargs)


_SYMBOL = {"CLEAR": "✔ CLEAR ", "REVIEW": "▲ REVIEW", "HOLD": "✖ HOLD  "}


def _stop_on_signal() -> threading.Event:
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    return stop


def cmd_run(args: argparse.Namespace) -> int:
    """Run a packing station from a config file until SIGTERM/SIGINT (systemd Type=notify)."""
    from prescreen.ops import config
    from prescreen.packing.app import Agent
    from prescreen.packing.service import supervise

    stop = _stop_on_signal()
    conf = config.load_station(args.config)
    logs.configure(conf.logging.level)
    agent = Agent(conf).start()
    try:
        supervise(agent, stop)
    finally:
        agent.stop()
    return 0


def _announce(url: str) -> None:
    print(f"station page: {url}  (live while the demo runs: add --pace 1 to watch it)", file=sys.stderr)
    print(
        "demo: [sync] allow_insecure = true: the broker is on loopback without TLS or a login "
        "(downlink and acks are still signed); never run a station like this",
        file=sys.stderr,
    )


def _print_progress(number: int, total: int, step: Any, event: Any) -> None:
    if event.record is None:
        print(f"[{number:>4}/{total}] {event.message}", file=sys.stderr)
        return
    screening = event.record["screening"]
    codes = ",".join(r["code"] for r in screening["reasons"] if r["severity"] != "info")
    tracking = event.record["parcel"]["tracking_number"] or "?"
    print(
        f"[{number:>4}/{total}] {_SYMBOL[screening['verdict']]} {tracking:<24} "
        f"{event.latency_ms:6.2f} ms  {step.label:<20} {codes}",
        file=sys.stderr,
    )


def _print_summary(summary: dict[str, Any]) -> None:
    verdicts = summary["verdicts"]
    latency = summary["latency_ms"]
    lines = [
        "",
        "prescreen demo: one simulated packing station, end to end",
        f"  parcels screened   {summary['parcels']}",
        f"  verdicts           CLEAR {verdicts['CLEAR']}   REVIEW {verdicts['REVIEW']}   "
        f"HOLD {verdicts['HOLD']}",
        f"  holds on shelf     {summary['holds_on_shelf']} (confirmed by shelf-label scan: outcome records)",
        f"  committed (outbox) {summary['committed']}",
        f"  acked by receiver  {summary['acked']}",
        f"  stored by receiver {summary['received']}   re-sent {summary['resent']}, "
        f"deduplicated {summary['duplicates']}",
        "  exactly once       "
        + ("yes (per device: every seq once, no gaps)" if summary["exactly_once"] else "NO: ")
        + "; ".join(summary["delivery_problems"]),
        f"  scan→verdict       p50 {latency['p50']:.2f} ms   p99 {latency['p99']:.2f} ms "
        f"(agent's own time, record committed)",
        f"  model              {summary['model'] or 'none (rules-only)'}",
        f"  broker             {summary['broker']}   wall time {summary['seconds']} s",
        *_compliance_lines(summary["compliance"]),
        *_export_lines(summary["exports"]),
        "",
        "Seller data-quality scorecard:",
        scorecard.table(summary["sellers"][:8]),
        (
            f"  again: prescreen report sellers --outbox {summary['workdir']}/outbox.db --since 1d"
            if summary.get("workdir_kept")
            else "  (the outbox was in a temporary folder: run the demo with --workdir DIR to keep it, then "
            "prescreen report sellers --outbox DIR/outbox.db --since 1d)"
        ),
    ]
    print("\n".join(lines))


def _export_lines(exports: dict[str, dict[str, int]]) -> list[str]:
    """One line per filer export: rows written, parcels refused as incomplete."""
    lines = [
        f"  {'filer exports' if n == 0 else '':<19}{fmt:<16} {c['rows']} rows, {c['refused']} parcels refused"
        for n, (fmt, c) in enumerate(exports.items())
    ]
    return [*lines, f"{'':<21}(prescreen export --outbox OUTBOX --format FORMAT; docs/data-mapping.md)"]


def _compliance_lines(compliance: dict[str, Any]) -> list[str]:
    lines = []
    fix = compliance.get("correction")
    if fix:
        before, after = fix["changed"]["declared_weight_kg"]
        lines.append(
            f"  correction         {fix['tracking_number']}: HOLD, declared {before} kg → {after} kg, "
            f"re-screened {fix['verdict_after']}, outcome {fix['outcome']}"
        )
    late = compliance.get("late_hold")
    if late:
        state = late["parcel_state"]
        lines.append(
            f"  customs RFS        {late['tracking_number']} "
            f"(already scanned, {state['verdict']}): {late['status']}"
        )
    if compliance.get("feedback"):
        lines.append(f"  customs feedback   to {fix['seller'] if fix else '?'}: {compliance['feedback']}")
    return lines


def cmd_demo(args: argparse.Namespace) -> int:
    """Run the simulated station; exit 1 unless every parcel reached the receiver once."""
    from prescreen.sim.demo import run_demo

    logs.configure("warning" if args.json or args.log_level == "info" else args.log_level)
    progress = None if args.json else _print_progress
    summary = run_demo(
        args.parcels,
        workdir=Path(args.workdir) if args.workdir else None,
        progress=progress,
        broker_kind=args.broker,
        announce=None if args.json else _announce,
        pace_s=args.pace,
    )
    if args.json:
        print(json.dumps(summary))
    else:
        _print_summary(summary)
    ok = summary["parcels"] == args.parcels and summary["exactly_once"]
    return 0 if ok else EXIT_FAILURE


def cmd_version(args: argparse.Namespace) -> int:
    """Print the version."""
    print(f"prescreen-agent {__version__}")
    return 0


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
            print(json.dumps({"status": "error", "stable": False, "weight_kg": None, "error": str(exc)}))
            continue
        if reading is not None:
            print(json.dumps(reading.as_json()))
    return 0


def cmd_detect(args: argparse.Namespace) -> int:
    """Try the known protocols and baud rates on a port; report what answered."""
    from prescreen.drivers.detect import BAUDRATES, best, detect

    attempts = detect(args.port, baudrates=tuple(args.baud) if args.baud else BAUDRATES)
    found = best(attempts)
    if args.json:
        print(
            json.dumps(
                {
                    "port": args.port,
                    "found": dataclasses.asdict(found) if found else None,
                    "attempts": [dataclasses.asdict(a) for a in attempts],
                }
            )
        )
    else:
        for attempt in attempts:
            mark = "ANSWERED" if attempt.answered else "-"
            print(f"{attempt.protocol:<18} {attempt.settings:<10} frames={attempt.frames:<3} {mark}")
        if found is None:
            print(
                f"nothing answered on {args.port}: check power, cable, and that nothing else holds the port"
            )
        else:
            print(
                f"found: {found.protocol} at {found.settings}"
                + (f" reading {found.sample}" if found.sample else "")
            )
    return 0 if found else EXIT_FAILURE


def cmd_decode_barcode(args: argparse.Namespace) -> int:
    """Decode one scan per stdin line: one JSON object per line."""
    from prescreen.drivers.barcodes import decode

    # Split on line ends only: str.splitlines() also splits at GS (0x1D), the GS1 field separator.
    for line in sys.stdin.read().replace("\r\n", "\n").replace("\r", "\n").split("\n"):
        if line.strip():
            print(json.dumps(decode(line).as_json()))
    return 0


def _screening_config(args: argparse.Namespace) -> Any:
    from prescreen.ops import config

    conf = config.load(args.config) if args.config else config.Config()
    changes: dict[str, Any] = {}
    if args.model:
        changes["model_path"] = args.model
    if args.rules_only:
        changes["use_model"] = False
    return config.replace(conf, "screening", **changes) if changes else conf


def cmd_screen(args: argparse.Namespace) -> int:
    """Screen parcel JSON lines from stdin; one verdict JSON line each; exit 1 if a line was bad."""
    from prescreen.packing.app import load_model
    from prescreen.packing.batch import screen_lines
    from prescreen.risk.entry import EntrySettings
    from prescreen.risk.screening import Screener

    logs.configure(args.log_level)
    conf = _screening_config(args)
    screener = Screener(conf.screening, load_model(conf), entry=EntrySettings.from_config(conf.entry))
    bad = 0
    for result in screen_lines(sys.stdin, screener):
        bad += "error" in result
        print(json.dumps(result), flush=True)
    return EXIT_FAILURE if bad else 0


def cmd_model_eval(args: argparse.Namespace) -> int:
    """Score a labelled CSV with the model and print PR-AUC, precision@5 %, recall at HOLD."""
    from prescreen.models.evaluation import evaluate, read_labelled_rows
    from prescreen.models.runner import load_risk_model

    logs.configure(args.log_level)
    conf = _screening_config(args).screening
    model = load_risk_model(args.model or conf.model_path or None)
    review = conf.review_score
    if review is None:
        review = model.threshold_for(conf.model_review_budget)
    rows = read_labelled_rows(args.data)
    report: dict[str, Any] = evaluate(model.score, rows, review=review, hold=conf.hold_score)
    report["model_version"] = model.version
    if args.json:
        print(json.dumps(report))
    else:
        for key, value in report.items():
            print(f"{key:<20} {value}")
    return 0


def cmd_model_train(args: argparse.Namespace) -> int:
    """Train a model on outcome labels (customs side, training virtualenv) and print its comparison."""
    from pathlib import Path

    from prescreen.core.errors import ModelError
    from prescreen.models.outcome_train import train_on_outcomes

    logs.configure(args.log_level)
    try:
        import tensorflow  # noqa: F401  (only to say clearly where training runs)
    except ImportError:
        raise ModelError(
            "model train needs TensorFlow, which is never installed on a station: run it in the "
            "training virtualenv (make train-venv; .venv-train/bin/prescreen model train ...)"
        ) from None
    report = train_on_outcomes(
        args.labels,
        Path(args.out),
        synthetic=args.synthetic,
        test_share=args.test_share,
        version=args.version,
        shipped=args.shipped,
    )
    newer = report["newer"]
    print(
        f"{report['version']} written to {args.out}: PR-AUC on the newer {report['split']['test_rows']} "
        f"parcels {newer['outcome_trained']['pr_auc']} (the fleet's {report['shipped_version']}: "
        f"{newer['shipped']['pr_auc']})"
    )
    return 0


def cmd_model_reinstate(args: argparse.Namespace) -> int:
    """Ask the running agent to lift its model quarantine; exit 1 if none was lifted."""
    import httpx
    from prescreen.ops import config
    from prescreen.web.server import api_headers

    conf = config.load(args.config)
    url = conf.http.url("/api/model/reinstate")
    try:
        response = httpx.post(url, json={}, headers=api_headers(conf.api_token_path()), timeout=15)
        result = response.json().get("result") or response.json().get("error")
    except (httpx.HTTPError, ValueError) as exc:
        print(f"prescreen: error: agent not answering at {url}: {exc}", file=sys.stderr)
        return EXIT_FAILURE
    print(result)
    return 0 if response.status_code == 200 else EXIT_FAILURE


def cmd_doctor(args: argparse.Namespace) -> int:
    """Check config, devices, orders, disk, model, broker, outbox and clock; exit 1 on a FAIL."""
    from prescreen.ops.doctor import run_checks

    logs.configure("error")
    checks = run_checks(args.config)
    for check in checks:
        print(check.line())
    failed = sum(c.level == "FAIL" for c in checks)
    print(f"{len(checks)} checks, {failed} failed")
    return EXIT_FAILURE if failed else 0


def cmd_page_url(args: argparse.Namespace) -> int:
    """Print the station page's address with the local API token, for the bench screen's kiosk."""
    from prescreen.ops import config
    from prescreen.web.server import TOKEN_HEADER, api_headers

    conf = config.load(args.config)
    print(f"{conf.http.url('/station')}#token={api_headers(conf.api_token_path())[TOKEN_HEADER]}")
    return 0


def cmd_status(args: argparse.Namespace) -> int:
    """Ask the running agent for its health; exit 0 only when every condition is ok."""
    import httpx
    from prescreen.ops import config

    conf = config.load(args.config)
    url = conf.http.url("/status")
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
        print(json.dumps(status))
    elif status["running"]:
        from prescreen.packing.service import status_line

        print(f"{status['device_id']}: {status['health']}, up {status['uptime_s']} s")
        print(status_line(status))
        for problem in status["problems"]:
            print(f"problem: {problem}")
    else:
        print(status["problems"][0])
    return 0 if status["running"] and status["healthy"] else EXIT_FAILURE


def cmd_bench_sync(args: argparse.Namespace) -> int:
    """Fill an outbox with N records and drain them to a local broker and receiver."""
    from prescreen.sim.syncbench import run_sync_bench

    logs.configure("warning")
    summary = run_sync_bench(
        args.records,
        workdir=Path(args.workdir) if args.workdir else None,
        batch_size=args.batch_size,
        inflight_batches=args.inflight,
        compress=args.compress,
    )
    if args.json:
        print(json.dumps(summary))
    else:
        for key, value in summary.items():
            print(f"{key:<20} {value}")
    return 0 if summary["exactly_once"] else EXIT_FAILURE


def cmd_bench_fleet(args: argparse.Namespace) -> int:
    """Run a fleet of stations against a local 3-node cluster; one JSON line."""
    from prescreen.sim.fleet import FleetPlan, run_fleet

    logs.configure("warning")
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
    print(json.dumps(summary))
    return 0 if summary["exactly_once"] else EXIT_FAILURE


def _add_fleet_bench(bench_sub: Any) -> None:
    """``bench fleet``: many stations, a 3-node cluster, receivers on a replicated stream."""
    fleet = bench_sub.add_parser(
        "fleet",
        help="many stations against a 3-node NATS cluster and receivers on PostgreSQL",
        description="Starts a 3-node NATS cluster (JetStream + MQTT) on free loopback ports, receivers "
        "on a JetStream stream and a PostgreSQL database of their own, and the stations in worker "
        "processes; prints one JSON line. Exit 1 if any record was lost or stored twice.",
        epilog="Example: prescreen bench fleet --stations 200 --parcels-per-minute 12 --backlog 1000",
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
    fleet.set_defaults(func=cmd_bench_fleet)


def _add_operations(sub: Any) -> None:
    """screen, model eval, doctor, status and bench: the commands for checking and operating."""
    screen = sub.add_parser(
        "screen",
        help="screen parcel JSON lines from stdin (batch, what-if)",
        description=(
            "One parcel per line (an order, {order, measured_weight_kg, tracking_number} or a flat row with "
            "the model-eval columns); prints one JSON line each with verdict, score and reasons."
        ),
        epilog='Example: echo \'{"description": "gift", "declared_value_usd": 2}\' | prescreen screen',
    )
    model = sub.add_parser(
        "model",
        help="risk model tools",
        description=(
            "Evaluate the on-device risk model, train a new one from customs outcomes, or lift a station's "
            "quarantine of its model."
        ),
        epilog="Example: prescreen model eval --data labelled.csv",
    )
    model_sub = model.add_subparsers(dest="what", required=True, metavar="WHAT")
    evaluate = model_sub.add_parser(
        "eval",
        help="metrics of the model on a labelled CSV",
        description=(
            "CSV columns: description, hts_code, declared_value_usd, declared_weight_kg, "
            "measured_weight_kg, origin_country, quantity, label (1 = hold or review)."
        ),
        epilog="Example: prescreen model eval --data labelled.csv --json",
    )
    evaluate.add_argument("--data", required=True, help="labelled CSV file")
    evaluate.add_argument("--json", action="store_true", help="print one JSON object")
    for each in (screen, evaluate):
        each.add_argument("--config", help="take thresholds and model path from this TOML config")
        each.add_argument("--model", help="model directory (default: the shipped model)")
        each.add_argument("--rules-only", action="store_true", help=argparse.SUPPRESS)
    screen.set_defaults(func=cmd_screen)
    evaluate.set_defaults(func=cmd_model_eval)
    trainer = model_sub.add_parser(
        "train",
        help="customs side: train a model on outcome labels (training virtualenv only)",
        description=(
            "Time-ordered: trained on the older parcels of the labels table, tested on the newer ones "
            "against the fleet's model; writes the model, model.json, metrics.json and the card."
        ),
        epilog=(
            "Example: .venv-train/bin/prescreen model train --labels labels.csv --out new --synthetic 2000"
        ),
    )
    trainer.add_argument("--labels", required=True, help="CSV of `prescreen records labels`")
    trainer.add_argument("--out", required=True, help="directory for the new model")
    trainer.add_argument("--synthetic", type=int, default=0, help="synthetic rows per generator to mix in")
    trainer.add_argument(
        "--test-share", type=float, default=0.3, help="newest share of parcels kept for test"
    )
    trainer.add_argument("--version", help="model version (default risk-outcomes-<newest date>)")
    trainer.add_argument("--shipped", help="the fleet's model directory to compare with (default: shipped)")
    trainer.set_defaults(func=cmd_model_train)
    reinstate = model_sub.add_parser(
        "reinstate",
        help="lift the running station's quarantine of its model",
        description=(
            "The station quarantines a model that raises more than twice its card's share of parcels (it "
            "then screens rules only; prescreen status says so). Look at the raises first."
        ),
        epilog="Example: prescreen model reinstate --config /etc/prescreen/agent.toml",
    )
    reinstate.add_argument(
        "--config", default=DEFAULT_PATH, help=f"TOML config of the agent ({DEFAULT_PATH})"
    )
    reinstate.set_defaults(func=cmd_model_reinstate)

    doctor = sub.add_parser(
        "doctor",
        help="check an installation: one line per check, what to do on failure",
        description=(
            "Checks config, serial ports, order source, disk, model, broker, outbox backlog and clock. Exit "
            "1 if any check fails."
        ),
        epilog="Example: prescreen doctor --config /etc/prescreen/agent.toml",
    )
    doctor.add_argument("--config", default=DEFAULT_PATH, help=f"TOML config file ({DEFAULT_PATH})")
    doctor.set_defaults(func=cmd_doctor)

    page_url = sub.add_parser(
        "page-url",
        help="the station page's address with the local API token (for the bench screen's kiosk)",
        description="Run as the station's user or root (the token file is 0600).",
        epilog='Example: chromium --kiosk "$(prescreen page-url --config /etc/prescreen/agent.toml)"',
    )
    page_url.add_argument("--config", default=DEFAULT_PATH, help=f"TOML config of the agent ({DEFAULT_PATH})")
    page_url.set_defaults(func=cmd_page_url)

    status = sub.add_parser(
        "status",
        help="health, devices, backlog, last ack, model and uptime of the running agent",
        description=(
            "Asks the running agent over its local HTTP endpoint. Exit 0 when every health condition is ok, "
            "1 when one is degraded or down or the agent does not answer."
        ),
        epilog="Example: prescreen status --config /etc/prescreen/agent.toml --json",
    )
    status.add_argument("--config", default=DEFAULT_PATH, help=f"TOML config of the agent ({DEFAULT_PATH})")
    status.add_argument("--json", action="store_true", help="print one JSON object")
    status.set_defaults(func=cmd_status)

    bench = sub.add_parser(
        "bench",
        help="measure this machine",
        description=(
            "Benchmarks that size a deployment on this machine, with real processes (broker, receiver)."
        ),
        epilog="Example: prescreen bench sync --records 10000",
    )
    bench_sub = bench.add_subparsers(dest="what", required=True, metavar="WHAT")
    bench_sync = bench_sub.add_parser(
        "sync",
        help="drain N records through a local broker to the receiver; count lost and duplicates",
        description=(
            "Starts its own broker and receiver process. Exit 1 if any record was lost or stored twice."
        ),
        epilog="Example: prescreen bench sync --records 100000 --json",
    )
    bench_sync.add_argument("--records", type=int, default=100_000, help="records (default 100000)")
    bench_sync.add_argument("--batch-size", type=int, default=500, help="records per MQTT message")
    bench_sync.add_argument("--inflight", type=int, default=8, help="unacked batches at once")
    bench_sync.add_argument("--compress", action="store_true", help="zlib-compress batches ([sync] compress)")
    bench_sync.add_argument("--workdir", help="keep the outbox and receiver store here")
    bench_sync.add_argument("--json", action="store_true", help="print one JSON object")
    bench_sync.set_defaults(func=cmd_bench_sync)
    _add_fleet_bench(bench_sub)


def build_parser() -> argparse.ArgumentParser:
    """The argument parser (exposed so tests can check every command has help)."""
    parser = _Parser(
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

    run = sub.add_parser(
        "run",
        help="run a packing station from a config file",
        description="Run a station until stopped.",
        epilog="Example: prescreen run --config /etc/prescreen/agent.toml",
    )
    run.add_argument("--config", default=DEFAULT_PATH, help=f"TOML config file ({DEFAULT_PATH})")
    run.set_defaults(func=cmd_run)

    demo = sub.add_parser(
        "demo",
        help="run a whole simulated packing station end to end",
        description="Simulated scanner and scale on ptys, sample orders, a local broker and receiver.",
        epilog="Example: prescreen demo --parcels 200 --json",
    )
    demo.add_argument("--parcels", type=int, default=100, help="parcels to screen (default 100)")
    demo.add_argument("--json", action="store_true", help="print one JSON summary on stdout")
    demo.add_argument("--workdir", help="keep outbox, receiver store and orders here")
    demo.add_argument(
        "--pace", type=float, default=0.0, help="seconds between parcels, to watch the station page"
    )
    demo.add_argument(
        "--broker",
        choices=["mosquitto", "amqtt"],
        default="mosquitto",
        help="broker to start (mosquitto falls back to amqtt if not installed)",
    )
    demo.set_defaults(func=cmd_demo)

    add_receiver_commands(sub)
    add_compliance_commands(sub)
    add_sim_commands(sub)
    add_setup_commands(sub)
    add_outbox_commands(sub)

    _add_operations(sub)

    version = sub.add_parser(
        "version",
        help="print the version",
        description="Print the installed version of prescreen-agent.",
        epilog="Example: prescreen version",
    )
    version.set_defaults(func=cmd_version)

    detect = sub.add_parser(
        "detect",
        help="find which scale or scanner protocol answers on a port",
        description=(
            "Try every scale and scanner protocol at 9600, 19200, 4800 and 2400 baud with its own data "
            "format, and say what answered."
        ),
        epilog="Example: prescreen detect /dev/ttyUSB0",
    )
    detect.add_argument("port", help="device path or pyserial URL")
    detect.add_argument("--baud", type=int, action="append", help="baud rate to try (repeatable)")
    detect.add_argument("--json", action="store_true", help="one JSON object")
    detect.set_defaults(func=cmd_detect)

    decode = sub.add_parser(
        "decode",
        help="decode raw device data from stdin",
        description=(
            "Decode what a device sends, read from stdin, with the same parsers the station uses: for "
            "checking a captured trace."
        ),
        epilog="Example: printf 'S S      1.250 kg\\r\\n' | prescreen decode scale --protocol mt-sics",
    )
    what = decode.add_subparsers(dest="what", required=True, metavar="WHAT")
    scale = what.add_parser(
        "scale",
        help="scale bytes → one JSON object per frame",
        description=(
            "Read scale bytes from stdin and print one JSON object per frame (status, stable, weight_kg)."
        ),
        epilog="Example: printf 'S S      1.250 kg\\r\\n' | prescreen decode scale --protocol mt-sics",
    )
    scale.add_argument("--protocol", required=True, help="mt-sics, nci, toledo-8213, toledo-continuous")
    scale.set_defaults(func=cmd_decode_scale)
    barcode = what.add_parser(
        "barcode",
        help="one scan per line → one JSON object per line",
        description=(
            "Read one scan per line from stdin and print what the station would make of it (carrier, "
            "tracking number, GS1 fields)."
        ),
        epilog="Example: echo 1Z5R89390357567127 | prescreen decode barcode",
    )
    barcode.set_defaults(func=cmd_decode_barcode)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``prescreen`` console script."""
    parser = build_parser()
    if not (sys.argv[1:] if argv is None else argv):
        parser.print_help(sys.stderr)  # no command: show the commands, not just "required: COMMAND"
        return EXIT_USAGE
    args = parser.parse_args(argv)
    func: Callable[[argparse.Namespace], int] = args.func
    try:
        return func(args)
    except PrescreenError as exc:
        print(f"prescreen: error: {exc}", file=sys.stderr)
        return EXIT_FAILURE
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:  # `prescreen doctor | head`: the reader left, which is not an error here
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())  # so the interpreter's final flush does not fail too
        return EXIT_FAILURE


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
