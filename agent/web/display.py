"""The station display: what the operator at the bench sees, pushed live to a local web page.

The display is a listener of the station (it hears a verdict only after the record is committed)
and a reader of device and sync status. Browsers subscribe to ``/station/events`` (server-sent
events: plain HTTP, reconnects by itself, no library and no CDN). On (re)connect a client gets a
snapshot, then each parcel, the live weight (4 times a second when it changes) and status (each
second). Touch confirmations come back as POST ``/station/confirm``.
"""

from __future__ import annotations

import collections
import contextlib
import json
import logging
import queue
import threading
from collections.abc import Callable, Iterator
from typing import Any

from prescreen.core.package_data import package_file
from prescreen.drivers.base import WeightReading
from prescreen.packing.events import StationEvent
from prescreen.risk import strings
from prescreen.web.server import PostRoute, Response, Route, json_response

log = logging.getLogger("prescreen.display")

HISTORY = 20
_MAX_CLIENT_QUEUE = 200  # a client that stops reading loses old updates, never blocks the station
_KEEPALIVE_S = 5.0


def parcel_view(event: StationEvent) -> dict[str, Any]:
    """What the page shows for one committed verdict, with reasons in every language."""
    record = event.record or {}
    screening = record.get("screening", {})
    parcel = record.get("parcel", {})
    return {
        "record_id": record.get("record_id"),
        "kind": event.kind,
        "verdict": screening.get("verdict"),
        "tracking": parcel.get("tracking_number") or parcel.get("barcode", {}).get("raw") or event.scan,
        "weight_kg": parcel.get("measured_weight_kg"),
        "reasons": {lang: strings.reasons(record, lang) for lang in strings.LANGUAGES},
        "latency_ms": None if event.latency_ms is None else round(event.latency_ms, 1),
        "at": record.get("created_at"),
        "confirmed": False,
    }


def customs_view(kind: str, downlink: dict[str, Any]) -> dict[str, Any]:
    """What the page shows for a customs decision on a parcel already scanned: a late hold (fetch
    it back to the shelf) or an outcome for a parcel on the hold shelf (take it off, or keep it)."""
    late = kind == "late_hold"
    released = not late and downlink["customs_outcome"]["outcome"] in ("released", "assessment_complete")
    texts = strings.late_hold(downlink) if late else strings.shelf_outcome(downlink)
    return {
        "record_id": downlink["parcel_state"]["verdict_record_id"],
        "kind": kind,
        "verdict": "CLEAR" if released else "HOLD",
        "tracking": downlink["tracking_number"],
        "weight_kg": None,
        "reasons": {lang: [text] for lang, text in texts.items()},
        "message": {lang: [text] for lang, text in texts.items()},
        "released": released,
        "confirmed": not late,  # on the shelf already; a late hold waits for its shelf scan
    }


class StationDisplay:
    """Keeps the current parcel and the last :data:`HISTORY`, and streams changes to browsers."""

    def __init__(
        self,
        *,
        language: str,
        status: Callable[[], dict[str, Any]],
        weight: Callable[[], WeightReading | None],
        confirm: Callable[[str | None], object],
    ) -> None:
        self.language = language if language in strings.LANGUAGES else "en"
        self._status = status
        self._weight = weight
        self._confirm = confirm
        self._recent: collections.deque[dict[str, Any]] = collections.deque(maxlen=HISTORY)
        self._notice: str | None = None
        self._clients: list[queue.Queue[bytes | None]] = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._publish_devices, name="display", daemon=True)

    # --- the station side --------------------------------------------------------------------

    def on_event(self, event: StationEvent) -> None:
        """Station listener: called on the station thread after the record is committed."""
        if event.kind in ("verdict", "verdict_update", "correction") and event.record is not None:
            view = parcel_view(event)
            with self._lock:
                self._recent.appendleft(view)
                self._notice = None
            self._broadcast("parcel", view)
        elif event.kind == "hold_confirmed" and event.record is not None:
            refers_to = event.record["outcome"]["refers_to"]
            with self._lock:
                for view in self._recent:
                    if view["record_id"] == refers_to:
                        view["confirmed"] = True
            self._broadcast("confirmed", {"record_id": refers_to, "shelf": event.record["outcome"]["shelf"]})
        elif event.kind in ("late_hold", "shelf_outcome") and event.record is not None:
            view = customs_view(event.kind, event.record["downlink"])
            with self._lock:  # the parcel's newest state, also for a page opened after it
                kept = [v for v in self._recent if v["record_id"] != view["record_id"]]
                self._recent = collections.deque([view, *kept], maxlen=HISTORY)
                self._notice = None
            self._broadcast(event.kind, view)
        elif event.kind in ("carton_open", "not_recorded"):
            with self._lock:
                self._notice = "carton" if event.kind == "carton_open" else "not_recorded"
            self._broadcast("notice", {"key": self._notice, "message": event.message})

    def snapshot(self) -> dict[str, Any]:
        """Everything a freshly connected page needs."""
        with self._lock:
            recent = list(self._recent)
            notice = self._notice
        return {
            "recent": recent,
            "notice": notice,
            "weight": self._weight_view(),
            "status": self._status_view(),
        }

    # --- HTTP ---------------------------------------------------------------------------------

    def routes(self) -> dict[str, Route]:
        """GET routes for the agent's :class:`LocalServer`."""
        return {
            "/": self._page,
            "/station": self._page,
            "/station/events": lambda: (200, "text/event-stream", self._stream()),
            "/station/snapshot": lambda: json_response(self.snapshot()),
        }

    def post_routes(self) -> dict[str, PostRoute]:
        """POST routes: the operator's touch confirmation of a HOLD."""
        return {"/station/confirm": self._confirm_post}

    def _page(self) -> Response:
        page = package_file("prescreen.web", "static/station.html").read_text(encoding="utf-8")
        config = {"language": self.language, "strings": strings.UI}
        page = page.replace("/*CONFIG*/{}", json.dumps(config, ensure_ascii=False))
        return 200, "text/html; charset=utf-8", page.encode()

    def _confirm_post(self, data: bytes) -> Response:
        try:
            body = json.loads(data or b"{}")
            record_id = body.get("record_id") if isinstance(body, dict) else None
        except ValueError:
            return json_response({"error": "body must be JSON"}, 400)
        if record_id is not None and not isinstance(record_id, str):
            return json_response({"error": "record_id must be a string"}, 400)
        self._confirm(record_id)
        return json_response({"accepted": True}, 202)

    def _stream(self) -> Iterator[bytes]:
        client: queue.Queue[bytes | None] = queue.Queue(maxsize=_MAX_CLIENT_QUEUE)
        with self._lock:
            self._clients.append(client)
        try:
            yield _sse("snapshot", self.snapshot())
            while not self._stop.is_set():
                try:
                    chunk = client.get(timeout=_KEEPALIVE_S)
                except queue.Empty:
                    chunk = b": keepalive\n\n"  # finds clients that went away
                if chunk is None:
                    return
                yield chunk
        finally:
            with self._lock:
                self._clients.remove(client)

    def _broadcast(self, kind: str, data: dict[str, Any]) -> None:
        chunk = _sse(kind, data)
        with self._lock:
            clients = list(self._clients)
        for client in clients:
            try:
                client.put_nowait(chunk)
            except queue.Full:
                log.warning("display client too slow, update dropped")

    # --- devices and sync -----------------------------------------------------------------------

    def _weight_view(self) -> dict[str, Any]:
        reading = self._weight()
        if reading is None:
            return {"kg": None, "status": None, "stable": False}
        return {
            "kg": None if reading.weight_kg is None else float(reading.weight_kg),
            "status": reading.status,
            "stable": reading.stable,
        }

    def _status_view(self) -> dict[str, Any]:
        status = self._status()
        return {
            "scanner": status["devices"]["scanner"]["up"],
            "scale": status["devices"]["scale"]["up"],
            "broker": status["broker"]["connected"],
            "broker_node": f"{status['broker']['host']}:{status['broker']['port']}",
            "backlog": status["backlog"].get("pending", 0),
            "health": status["health"],
            "problems": status["problems"],
        }

    def _publish_devices(self) -> None:
        last_weight: dict[str, Any] | None = None
        ticks = 0
        while not self._stop.wait(0.25):
            try:
                weight = self._weight_view()
                if weight != last_weight:
                    self._broadcast("weight", weight)
                    last_weight = weight
                ticks += 1
                if ticks % 4 == 0:
                    self._broadcast("status", self._status_view())
            except Exception:  # the display must never take the agent down
                log.exception("display update failed")

    def start(self) -> StationDisplay:
        """Start pushing weight and status."""
        self._thread.start()
        return self

    def stop(self) -> None:
        """End every stream and the publisher thread."""
        self._stop.set()
        with self._lock:
            clients = list(self._clients)
        for client in clients:
            with contextlib.suppress(queue.Full):
                client.put_nowait(None)
        if self._thread.is_alive():
            self._thread.join(timeout=2)


def _sse(kind: str, data: dict[str, Any]) -> bytes:
    return f"event: {kind}\ndata: {json.dumps(data, ensure_ascii=False)}\n\n".encode()
