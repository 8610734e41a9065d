"""Simulated packing stations: ``demo`` (a whole station end to end, with its broker and receiver)
and ``sim scan|weight|lift|unplug|replug`` (drive the ``sim://`` devices of a running station).

Each ``sim`` command is one POST to the agent's local control endpoint (see
:mod:`prescreen.sim.simbench`); the agent does the rest. The demo prints its progress and summary
for a person, or one JSON summary with ``--json``.
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
    add_json_option,
    print_json,
    subcommands,
)

DEFAULT_STATION = "http://127.0.0.1:9108"
_SYMBOL = {"CLEAR": "✔ CLEAR ", "REVIEW": "▲ REVIEW", "HOLD": "✖ HOLD  "}


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
    from prescreen.sim.demo_loop import summary_lines
    from prescreen.trade import scorecard

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
        *(summary_lines(summary["learning"]) if summary["learning"] else ()),
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
    from prescreen.ops import logs
    from prescreen.sim.demo import run_demo

    # The progress lines are the demo's story; info log lines would interleave with them.
    logs.configure("warning" if args.json or args.log_level == "info" else args.log_level)
    progress = None if args.json else _print_progress
    summary = run_demo(
        args.parcels,
        workdir=Path(args.workdir) if args.workdir else None,
        progress=progress,
        broker_kind=args.broker,
        announce=None if args.json else _announce,
        pace_s=args.pace,
        learning=not args.no_learning,
    )
    if args.json:
        print_json(summary)
    else:
        _print_summary(summary)
    ok = summary["parcels"] == args.parcels and summary["exactly_once"]
    return EXIT_OK if ok else EXIT_FAILURE


def _station(args: argparse.Namespace) -> str:
    if args.station:
        return str(args.station).rstrip("/")
    if args.config:
        from prescreen.ops import config

        return config.load(args.config).http.url("")
    return DEFAULT_STATION


def _post(
    args: argparse.Namespace, path: str, body: dict[str, Any], timeout: float
) -> tuple[int, dict[str, Any]]:
    import httpx
    from prescreen.core.errors import ConfigError
    from prescreen.ops import config
    from prescreen.web.server import api_headers

    url = _station(args) + path
    conf = config.load(args.config) if args.config else config.Config()
    try:
        headers = api_headers(conf.api_token_path())
    except ConfigError as exc:  # sent without: the station's answer says what is missing
        headers, unauthorised = {}, str(exc)
    else:
        unauthorised = "the station refused the API token"
    try:
        response = httpx.post(url, json=body, headers=headers, timeout=timeout)
    except httpx.HTTPError as exc:
        return 0, {"error": f"no station answering at {url}: {exc} (is `prescreen run` running?)"}
    try:
        answer: dict[str, Any] = response.json()
    except ValueError:
        answer = {"error": f"{url}: HTTP {response.status_code}: {response.text.strip()}"}
    if response.status_code == 401:
        answer = {"error": f"{url}: {unauthorised} (give --config; run as the station's user)"}
    if response.status_code == 404:
        answer = {"error": f"{url}: not found: the station has no simulated devices (no sim:// url)"}
    return response.status_code, answer


def cmd_sim(args: argparse.Namespace) -> int:
    """One sim action; prints the station's answer (the verdict, for a scan)."""
    action = args.action
    timeout = 10.0
    if action == "scan":
        body: dict[str, Any] = {"code": args.code}
        if args.weight is not None:
            body["weight_kg"] = args.weight
        path, timeout = "/sim/scan", args.timeout
    elif action == "weight":
        path, body = "/sim/weight", {"kg": args.kg}
    elif action == "lift":
        path, body = "/sim/lift", {}
    else:
        path, body = f"/sim/{action}", {"device": args.device}
    status, answer = _post(args, path, body, timeout)
    if args.json:
        print_json(answer)
    elif "error" in answer:
        print(f"prescreen: error: {answer['error']}")
    elif action == "scan":
        print(_scan_line(args.code, answer.get("answer")))
    else:
        print_json(answer)
    return EXIT_OK if 200 <= status < 300 else EXIT_FAILURE


def _scan_line(code: str, answer: dict[str, Any] | None) -> str:
    if answer is None:
        return f"{code}: scanned; no answer from the station yet (still waiting for a weight?)"
    if answer["verdict"] is None:
        return f"{code}: {answer['kind']}: {answer['message']}"
    reasons = ",".join(answer["reasons"]) or "-"
    return f"{code}: {answer['verdict']} {reasons} ({answer['latency_ms']} ms, record {answer['record_id']})"


def add_sim_commands(sub: Any) -> None:
    """demo and ``sim scan|weight|lift|unplug|replug``."""
    demo = add_command(
        sub,
        "demo",
        help="run a whole simulated packing station end to end",
        description="Simulated scanner and scale on ptys, sample orders, a local broker and receiver; "
        "then the compliance loop and the learning loop (outcomes, labels, training, shadow, promotion).",
        example="prescreen demo --parcels 200 --json",
        run=cmd_demo,
    )
    demo.add_argument("--parcels", type=int, default=100, help="parcels to screen (default 100)")
    add_json_option(demo, "print one JSON summary on stdout")
    demo.add_argument("--workdir", help="keep outbox, receiver store and orders here")
    demo.add_argument(
        "--pace", type=float, default=0.0, help="seconds between parcels, to watch the station page"
    )
    demo.add_argument(
        "--no-learning",
        action="store_true",
        help="leave out the learning loop (outcomes, labels, training, shadow, promotion) after the parcels",
    )
    demo.add_argument(
        "--broker",
        choices=["mosquitto", "amqtt"],
        default="mosquitto",
        help="broker to start (mosquitto falls back to amqtt if not installed)",
    )
    _add_device_commands(sub)


def _add_device_commands(sub: Any) -> None:
    """sim scan, weight, lift, unplug and replug: one POST each to a running station."""
    sim = add_command(
        sub,
        "sim",
        help="drive the simulated scanner and scale of a running station (sim:// devices)",
        description=(
            "Talks to the station's local HTTP server, which offers these controls only when a device url "
            "is sim://..."
        ),
        example="prescreen sim scan 1Z5R89390357567127 --weight 1.25",
    )
    what = subcommands(sim, dest="action", metavar="ACTION")
    scan = add_command(
        what,
        "scan",
        help="scan a code (after putting --weight on the pan) and print the verdict",
        description=(
            "Puts the weight on the simulated scale (if given), scans CODE, waits for the verdict and lifts "
            "the parcel off."
        ),
        example="prescreen sim scan 1Z5R89390357567127 --weight 1.25",
        run=cmd_sim,
    )
    scan.add_argument("code", help="the label's barcode text (GS1: use a real GS, \\x1d, between fields)")
    scan.add_argument("--weight", help="kg to put on the pan before the scan")
    scan.add_argument("--timeout", type=float, default=30.0, help="seconds to wait for the verdict")
    weight = add_command(
        what,
        "weight",
        help="put a weight on the simulated pan",
        description="Put a weight on the simulated scale's pan of a running station (sim:// scale only).",
        example="prescreen sim weight 1.25",
        run=cmd_sim,
    )
    weight.add_argument("kg", help="kilograms (0 empties the pan)")
    add_command(
        what,
        "lift",
        help="take the parcel off the pan",
        description="Take the parcel off the simulated scale's pan (the weight goes back to zero).",
        example="prescreen sim lift",
        run=cmd_sim,
    )
    for action, text in (("unplug", "pull the cable of"), ("replug", "plug back in")):
        device = add_command(
            what,
            action,
            help=f"{text} the simulated scanner or scale",
            description=f"Rehearse a device fault: {text} the simulated scanner or scale of a running "
            "station (sim:// devices only).",
            example=f"prescreen sim {action} scale",
            run=cmd_sim,
        )
        device.add_argument("device", choices=["scanner", "scale"], help="which simulated device")
    for parser in what.choices.values():
        _add_station_options(parser)


def _add_station_options(parser: argparse.ArgumentParser) -> None:
    """Which station a ``sim`` command drives, and how it prints the answer."""
    parser.add_argument("--station", help=f"the station's local URL (default {DEFAULT_STATION})")
    parser.add_argument(
        "--config", help="take the station's URL and API token file from its TOML config ([http])"
    )
    add_json_option(parser, "print the station's JSON answer")
