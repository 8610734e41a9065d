"""Drive a station's simulated devices: scan a code, put a weight on the pan, unplug a cable.

Why: a site must be able to try a whole station (``prescreen run`` with ``sim://`` devices, the
broker, a receiver) before its hardware arrives, and IT must be able to rehearse what an unplugged
scale looks like. The simulators speak the real wire protocols on ptys, so everything after the
cable is the production code path.

Three ways in, all through :class:`SimBench`:

- the agent's local HTTP server (``POST /sim/scan``, ``/sim/weight``, ``/sim/lift``, ``/sim/unplug``,
  ``/sim/replug``; ``GET /sim``), only when a device is ``sim://``;
- ``prescreen sim scan CODE --weight KG`` (and ``sim weight|lift|unplug|replug``) on that API;
- ``sim://mt-sics?script=FILE`` (or on the scanner's URL): a timed file replayed at start, one step
  a line, ``WAIT_S ACTION [ARGUMENT]``, ``#`` comments::

      # wait  action  argument
      1.0     weight  1.250
      0.2     scan    1Z5R89390357567127
      3.0     lift
      1.0     unplug  scale
      5.0     replug  scale
"""

from __future__ import annotations

import dataclasses
import json
import logging
import threading
from collections.abc import Callable
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

from prescreen.core.errors import ConfigError
from prescreen.drivers.sim import PtyDevice, ScaleSimulator, ScannerSimulator, SsiScannerSimulator
from prescreen.packing.events import StationEvent
from prescreen.web.server import PostRoute, Response, Route, json_response

log = logging.getLogger("prescreen.sim")

ACTIONS = ("scan", "weight", "lift", "unplug", "replug")
_ANSWERED = ("verdict", "not_recorded", "carton_open", "hold_confirmed", "ignored")
MAX_WEIGHT_KG = Decimal(1000)


class SimError(ValueError):
    """A sim command that cannot be carried out (bad value, or no such simulated device)."""


@dataclasses.dataclass(frozen=True)
class Step:
    """One line of a script: wait ``wait_s``, then do ``action`` with ``argument``."""

    wait_s: float
    action: str
    argument: str = ""


def parse_script(text: str, where: str) -> list[Step]:
    """The steps of a script file.

    Raises:
        ConfigError: a line is not ``WAIT_S ACTION [ARGUMENT]`` with a known action (file:line).
    """
    steps = []
    for number, line in enumerate(text.splitlines(), start=1):
        words = line.split("#", 1)[0].split()
        if not words:
            continue
        expected = f"expected 'WAIT_S ACTION [ARGUMENT]' with ACTION one of {', '.join(ACTIONS)}"
        try:
            wait_s = float(words[0])
        except ValueError:
            raise ConfigError(
                f"{where}:{number}: {words[0]!r} is not a number of seconds; {expected}"
            ) from None
        if len(words) < 2 or words[1] not in ACTIONS or wait_s < 0 or len(words) > 3:
            raise ConfigError(f"{where}:{number}: {line.strip()!r}: {expected}")
        steps.append(Step(wait_s, words[1], words[2] if len(words) == 3 else ""))
    return steps


def load_script(path: Path) -> list[Step]:
    """The steps of the script file at ``path``.

    Raises:
        ConfigError: the file is unreadable or a line is wrong (file:line).
    """
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: cannot read the sim script: {exc}") from None
    return parse_script(text, str(path))


def script_of(url: str) -> Path | None:
    """The ``script=FILE`` of a ``sim://`` URL, if any."""
    values = parse_qs(urlsplit(url).query).get("script")
    return Path(values[0]) if values else None


def _kg(value: object) -> Decimal:
    try:
        weight = Decimal(str(value))
    except InvalidOperation:
        raise SimError(f"weight must be a number of kg, got {value!r}") from None
    if not (0 <= weight <= MAX_WEIGHT_KG):
        raise SimError(f"weight must be between 0 and {MAX_WEIGHT_KG} kg, got {value!r}")
    return weight


class SimBench:
    """The simulated scanner and scale of one station (either may be None: a real device)."""

    def __init__(self, scanner: PtyDevice | None, scale: PtyDevice | None) -> None:
        self.devices: dict[str, PtyDevice] = {
            name: device for name, device in (("scanner", scanner), ("scale", scale)) if device is not None
        }
        self._answers: dict[str, list[StationEvent]] = {}
        self._cond = threading.Condition()
        self._stop = threading.Event()
        self._player: threading.Thread | None = None

    # --- actions -----------------------------------------------------------------------------

    def _device(self, name: str, kind: type[PtyDevice] | tuple[type[PtyDevice], ...]) -> Any:
        device = self.devices.get(name)
        if device is None or not isinstance(device, kind):
            raise SimError(f"the {name} is not simulated (its url is not sim://...)")
        return device

    def weight(self, value: object) -> Decimal:
        """Put ``value`` kg on the pan (it moves a little, then settles); 0 empties it."""
        weight = _kg(value)
        scale: ScaleSimulator = self._device("scale", ScaleSimulator)
        scale.place(weight, motion=2)
        return weight

    def scan(self, code: str) -> None:
        """The operator scans ``code`` (printable ASCII; ``\\x1d`` for a GS1 group separator)."""
        if not code or len(code) > 512 or any(not (" " <= c <= "~" or c == "\x1d") for c in code):
            raise SimError("code must be 1 to 512 printable ASCII characters (or GS, \\x1d)")
        scanner = self._device("scanner", (ScannerSimulator, SsiScannerSimulator))
        scanner.scan(code)

    def unplug(self, name: str) -> None:
        """Pull the cable of ``name`` (scanner or scale)."""
        self._device(name, PtyDevice).unplug()

    def replug(self, name: str) -> None:
        """Plug ``name`` back in."""
        self._device(name, PtyDevice).replug()

    def do(self, step: Step) -> None:
        """Carry out one script step."""
        if step.action == "scan":
            self.scan(step.argument)
        elif step.action == "weight":
            self.weight(step.argument)
        elif step.action == "lift":
            self.weight(0)
        elif step.action == "unplug":
            self.unplug(step.argument)
        else:
            self.replug(step.argument)

    # --- waiting for the verdict of a scan ----------------------------------------------------

    def on_event(self, event: StationEvent) -> None:
        """Station listener: hand the answer to a scan to whoever is waiting for it."""
        if event.kind not in _ANSWERED:
            return
        with self._cond:
            if event.scan in self._answers:
                self._answers[event.scan].append(event)
                self._cond.notify_all()

    def scan_and_wait(self, code: str, weight: object | None, timeout_s: float) -> StationEvent | None:
        """Put ``weight`` on the pan (if given), scan ``code``, and wait for the station's answer;
        the parcel is lifted off again after it (as the operator does)."""
        with self._cond:
            self._answers.setdefault(code, [])
        try:
            if weight is not None:
                self.weight(weight)
            self.scan(code)
            with self._cond:
                self._cond.wait_for(lambda: bool(self._answers[code]), timeout=timeout_s)
                answered = self._answers[code]
                return answered[0] if answered else None
        finally:
            with self._cond:
                self._answers.pop(code, None)
            if weight is not None and "scale" in self.devices:
                self.weight(0)

    # --- scripts -------------------------------------------------------------------------------

    def play(self, steps: list[Step], where: str) -> None:
        """Replay ``steps`` in a background thread (stopped by :meth:`stop`)."""

        def run() -> None:
            log.info("sim script started", extra={"script": where, "steps": len(steps)})
            for number, step in enumerate(steps, start=1):
                if self._stop.wait(step.wait_s):
                    return
                try:
                    self.do(step)
                except SimError as exc:
                    log.warning(
                        "sim script step failed", extra={"script": where, "step": number, "reason": str(exc)}
                    )
            log.info("sim script done", extra={"script": where})

        self._player = threading.Thread(target=run, name="sim-script", daemon=True)
        self._player.start()

    def stop(self) -> None:
        """Stop a script being played."""
        self._stop.set()
        if self._player is not None:
            self._player.join(timeout=2)

    # --- HTTP ----------------------------------------------------------------------------------

    def routes(self) -> dict[str, Route]:
        """``GET /sim``: which devices are simulated and plugged in."""
        return {"/sim": lambda: json_response(self.describe())}

    def describe(self) -> dict[str, Any]:
        """Simulated devices and whether each is plugged in."""
        return {"devices": {name: {"plugged": d.plugged} for name, d in self.devices.items()}}

    def post_routes(self, wait_s: Callable[[], float]) -> dict[str, PostRoute]:
        """The control endpoints; ``wait_s()`` is how long ``/sim/scan`` waits for the verdict."""

        def scan(body: dict[str, Any]) -> Response:
            event = self.scan_and_wait(str(body.get("code", "")), body.get("weight_kg"), wait_s())
            if event is None:
                return json_response({"accepted": True, "answer": None}, 202)
            return json_response({"accepted": True, "answer": _answer(event)})

        def device(action: Callable[[str], None]) -> Callable[[dict[str, Any]], Response]:
            def route(body: dict[str, Any]) -> Response:
                action(str(body.get("device", "")))
                return json_response(self.describe())

            return route

        handlers: dict[str, Callable[[dict[str, Any]], Response]] = {
            "/sim/scan": scan,
            "/sim/weight": lambda body: json_response({"weight_kg": str(self.weight(body.get("kg")))}),
            "/sim/lift": lambda body: json_response({"weight_kg": str(self.weight(0))}),
            "/sim/unplug": device(self.unplug),
            "/sim/replug": device(self.replug),
        }
        return {path: _json_body(handler) for path, handler in handlers.items()}


def _answer(event: StationEvent) -> dict[str, Any]:
    record = event.record or {}
    screening = record.get("screening") or {}
    return {
        "kind": event.kind,
        "verdict": screening.get("verdict"),
        "reasons": [r["code"] for r in screening.get("reasons", []) if r.get("severity") != "info"],
        "record_id": record.get("record_id"),
        "latency_ms": None if event.latency_ms is None else round(event.latency_ms, 2),
        "message": event.message,
    }


def _json_body(handler: Callable[[dict[str, Any]], Response]) -> PostRoute:
    """A POST route taking a JSON object; a bad body or value is a 400 naming what is wrong."""

    def route(data: bytes) -> Response:
        try:
            body = json.loads(data or b"{}")
        except ValueError:
            return json_response({"error": "body must be a JSON object"}, 400)
        if not isinstance(body, dict):
            return json_response({"error": "body must be a JSON object"}, 400)
        try:
            return handler(body)
        except SimError as exc:
            return json_response({"error": str(exc)}, 400)

    return route
