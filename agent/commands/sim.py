"""``prescreen sim``: drive the ``sim://`` devices of a running station from a terminal.

Kept apart from :mod:`prescreen.commands.main` so each command module stays small. Each command is one POST
to the agent's local control endpoint (see :mod:`prescreen.simbench`); the agent does the rest.
"""

from __future__ import annotations

import argparse
import json
from typing import Any

EXIT_FAILURE = 1
DEFAULT_STATION = "http://127.0.0.1:9108"


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
        print(json.dumps(answer))
    elif "error" in answer:
        print(f"prescreen: error: {answer['error']}")
    elif action == "scan":
        print(_scan_line(args.code, answer.get("answer")))
    else:
        print(json.dumps(answer))
    return 0 if 200 <= status < 300 else EXIT_FAILURE


def _scan_line(code: str, answer: dict[str, Any] | None) -> str:
    if answer is None:
        return f"{code}: scanned; no answer from the station yet (still waiting for a weight?)"
    if answer["verdict"] is None:
        return f"{code}: {answer['kind']}: {answer['message']}"
    reasons = ",".join(answer["reasons"]) or "-"
    return f"{code}: {answer['verdict']} {reasons} ({answer['latency_ms']} ms, record {answer['record_id']})"


def add_sim_commands(sub: Any) -> None:
    """``sim scan|weight|lift|unplug|replug``."""
    sim = sub.add_parser(
        "sim",
        help="drive the simulated scanner and scale of a running station (sim:// devices)",
        description=(
            "Talks to the station's local HTTP server, which offers these controls only when a device url "
            "is sim://..."
        ),
        epilog="Example: prescreen sim scan 1Z5R89390357567127 --weight 1.25",
    )
    what = sim.add_subparsers(dest="action", required=True, metavar="ACTION")
    scan = what.add_parser(
        "scan",
        help="scan a code (after putting --weight on the pan) and print the verdict",
        description=(
            "Puts the weight on the simulated scale (if given), scans CODE, waits for the verdict and lifts "
            "the parcel off."
        ),
        epilog="Example: prescreen sim scan 1Z5R89390357567127 --weight 1.25",
    )
    scan.add_argument("code", help="the label's barcode text (GS1: use a real GS, \\x1d, between fields)")
    scan.add_argument("--weight", help="kg to put on the pan before the scan")
    scan.add_argument("--timeout", type=float, default=30.0, help="seconds to wait for the verdict")
    weight = what.add_parser(
        "weight",
        help="put a weight on the simulated pan",
        description="Put a weight on the simulated scale's pan of a running station (sim:// scale only).",
        epilog="Example: prescreen sim weight 1.25",
    )
    weight.add_argument("kg", help="kilograms (0 empties the pan)")
    what.add_parser(
        "lift",
        help="take the parcel off the pan",
        description="Take the parcel off the simulated scale's pan (the weight goes back to zero).",
        epilog="Example: prescreen sim lift",
    )
    for action, text in (("unplug", "pull the cable of"), ("replug", "plug back in")):
        device = what.add_parser(
            action,
            help=f"{text} the simulated scanner or scale",
            description=f"Rehearse a device fault: {text} the simulated scanner or scale of a running "
            "station (sim:// devices only).",
            epilog=f"Example: prescreen sim {action} scale",
        )
        device.add_argument("device", choices=["scanner", "scale"], help="which simulated device")
    for parser in what.choices.values():
        parser.add_argument("--station", help=f"the station's local URL (default {DEFAULT_STATION})")
        parser.add_argument(
            "--config", help="take the station's URL and API token file from its TOML config ([http])"
        )
        parser.add_argument("--json", action="store_true", help="print the station's JSON answer")
        parser.set_defaults(func=cmd_sim)
