"""The agent's small local HTTP server: ``/metrics``, ``/healthz``, ``/status``, the station page.

Why the standard library's server: a handful of routes on localhost for a Prometheus scraper, a
monitoring probe, ``prescreen status`` and one bench screen; a web framework would add more weight
than the agent's whole pipeline. Routes are plain functions returning (status, content type, body);
a body that is an iterator of chunks is streamed (server-sent events), one thread per client.
"""

from __future__ import annotations

import errno
import json
import logging
import socket
import threading
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from prescreen.errors import ConfigError

log = logging.getLogger("prescreen.http")
Response = tuple[int, str, bytes]
Route = Callable[[], tuple[int, str, bytes | Iterator[bytes]]]
PostRoute = Callable[[bytes], Response]
MAX_POST_BYTES = 64 * 1024


def listen_problem(host: str, port: int, exc: OSError) -> str:
    """One line for a server that cannot listen on ``host:port``, with what to do."""
    fix = (
        "another agent or program listens there: give each station on a host its own [http] port"
        if exc.errno == errno.EADDRINUSE
        else "check [http] host and port"
    )
    return f"[http] cannot listen on {host}:{port}: {exc.strerror or exc} ({fix})"


def check_listen(host: str, port: int) -> str | None:
    """Whether a server could listen on ``host:port`` now (None) or why not; binds and releases
    the port the way :class:`LocalServer` would (``SO_REUSEADDR``)."""
    try:
        with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM) as sock:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind((host, port))
    except OSError as exc:
        return listen_problem(host, port, exc)
    return None


def json_response(body: Any, status: int = 200) -> Response:
    """A JSON response."""
    return status, "application/json", json.dumps(body).encode()


class LocalServer:
    """Serves GET (and POST) routes on ``host:port`` in daemon threads; ``port=0`` picks a free port."""

    def __init__(
        self, host: str, port: int, routes: dict[str, Route], post_routes: dict[str, PostRoute] | None = None
    ) -> None:
        self.routes = routes
        server_routes = routes
        server_posts = post_routes or {}

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: Any) -> None:
                log.debug("http", extra={"request": format % args})

            def do_GET(self) -> None:
                route = server_routes.get(self.path.split("?", 1)[0])
                self._answer(lambda: route() if route is not None else (404, "text/plain", b"not found\n"))

            def do_POST(self) -> None:
                route = server_posts.get(self.path.split("?", 1)[0])
                length = int(self.headers.get("Content-Length") or 0)
                if route is None or length > MAX_POST_BYTES:
                    self._answer(lambda: (404 if route is None else 413, "text/plain", b"refused\n"))
                    return
                data = self.rfile.read(length)
                self._answer(lambda: route(data))

            def _answer(self, call: Callable[[], tuple[int, str, bytes | Iterator[bytes]]]) -> None:
                try:
                    status, kind, body = call()
                except Exception as exc:  # a broken route must not kill the server thread
                    log.exception("http route failed", extra={"path": self.path})
                    status, kind, body = 500, "text/plain", f"error: {exc}\n".encode()
                self.send_response(status)
                self.send_header("Content-Type", kind)
                self.send_header("Cache-Control", "no-store")
                if isinstance(body, bytes):
                    self.send_header("Content-Length", str(len(body)))
                    self.end_headers()
                    self.wfile.write(body)
                    return
                self.end_headers()
                try:
                    for chunk in body:
                        self.wfile.write(chunk)
                        self.wfile.flush()
                except OSError:
                    pass  # the client went away; its stream ends here
                finally:
                    close = getattr(body, "close", None)
                    if close is not None:
                        close()  # runs the stream's cleanup (unsubscribe) now, not at GC

        try:
            self._server = ThreadingHTTPServer((host, port), Handler)
        except OSError as exc:
            raise ConfigError(listen_problem(host, port, exc)) from None
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
