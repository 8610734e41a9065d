"""The agent's small local HTTP server: ``/metrics``, ``/healthz``, ``/status``.

Why the standard library's server: a handful of GET routes on localhost for a Prometheus scraper,
a monitoring probe and ``prescreen status``; a web framework would add more weight than the agent's
whole pipeline. Routes are plain functions returning (status, content type, body).
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

log = logging.getLogger("prescreen.http")
Response = tuple[int, str, bytes]
Route = Callable[[], Response]


def json_response(body: Any, status: int = 200) -> Response:
    """A JSON response."""
    return status, "application/json", json.dumps(body).encode()


class LocalServer:
    """Serves GET routes on ``host:port`` in a daemon thread; ``port=0`` picks a free port."""

    def __init__(self, host: str, port: int, routes: dict[str, Route]) -> None:
        self.routes = routes
        server_routes = routes

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: Any) -> None:
                log.debug("http", extra={"request": format % args})

            def do_GET(self) -> None:
                route = server_routes.get(self.path.split("?", 1)[0])
                if route is None:
                    status, kind, body = 404, "text/plain", b"not found\n"
                else:
                    try:
                        status, kind, body = route()
                    except Exception as exc:  # a broken route must not kill the server thread
                        log.exception("http route failed", extra={"path": self.path})
                        status, kind, body = 500, "text/plain", f"error: {exc}\n".encode()
                self.send_response(status)
                self.send_header("Content-Type", kind)
                self.send_header("Content-Length", str(len(body)))
                self.send_header("Cache-Control", "no-store")
                self.end_headers()
                self.wfile.write(body)

        self._server = ThreadingHTTPServer((host, port), Handler)
        self._server.daemon_threads = True
        self.host: str = host
        self.port: int = self._server.server_address[1]
        self._thread = threading.Thread(
            target=self._server.serve_forever, args=(0.1,), name="http", daemon=True
        )

    @property
    def url(self) -> str:
        """Base URL, e.g. ``http://127.0.0.1:9108``."""
        return f"http://{self.host}:{self.port}"

    def start(self) -> LocalServer:
        """Start serving; returns self."""
        self._thread.start()
        log.info("http listening", extra={"url": self.url})
        return self

    def stop(self) -> None:
        """Stop serving and close the socket."""
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)
