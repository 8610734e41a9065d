"""The agent's small local HTTP server: ``/metrics``, ``/healthz``, ``/status``, the station page.

Why the standard library's server: a handful of routes on localhost for a Prometheus scraper, a
monitoring probe, ``prescreen status`` and one bench screen; a web framework would add more weight
than the agent's whole pipeline. Routes are plain functions returning (status, content type, body);
a body that is an iterator of chunks is streamed (server-sent events), one thread per client.
"""

from __future__ import annotations

import errno
import hmac
import ipaddress
import json
import logging
import os
import secrets
import socket
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from prescreen.core.errors import ConfigError
from prescreen.core.files import tighten

log = logging.getLogger("prescreen.http")
Response = tuple[int, str, bytes]
Route = Callable[[], tuple[int, str, bytes | Iterator[bytes]]]
PostRoute = Callable[[bytes], Response]
MAX_POST_BYTES = 64 * 1024
TOKEN_HEADER = "X-Prescreen-Token"


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


def _loopback(host: str) -> bool:
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return host == "localhost"


def json_response(body: Any, status: int = 200) -> Response:
    """A JSON response."""
    return status, "application/json", json.dumps(body).encode()


def load_or_create_token(path: Path) -> str:
    """The local API's token, kept in ``path`` (mode 0600, created with a fresh random token).

    Whoever can read the file may POST (the CLI run by the station's user or root, the kiosk
    launcher through ``prescreen page-url``); another local user and a web page cannot.
    """
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        tighten(path)
        token = path.read_text(encoding="ascii").strip()
        if len(token) >= 32:
            return token
        fd = os.open(path, os.O_WRONLY | os.O_TRUNC, 0o600)
    token = secrets.token_urlsafe(32)
    with os.fdopen(fd, "w", encoding="ascii") as handle:
        handle.write(token + "\n")
    return token


def api_headers(token_path: Path) -> dict[str, str]:
    """Headers a local client sends with a POST: JSON and the token from the 0600 file.

    Raises:
        ConfigError: the token file cannot be read (not the station's user, or no agent yet).
    """
    try:
        token = token_path.read_text(encoding="ascii").strip()
    except OSError as exc:
        raise ConfigError(f"cannot read the agent's API token {token_path}: {exc.strerror or exc}") from None
    return {TOKEN_HEADER: token, "Content-Type": "application/json"}


class _CappedServer(ThreadingHTTPServer):
    """A threading server that serves at most ``cap`` connections at once and closes the rest
    at once: idle or slow clients cannot hold more threads than the unit allows (TasksMax)."""

    daemon_threads = True

    def __init__(self, address: tuple[str, int], handler: type[BaseHTTPRequestHandler], cap: int) -> None:
        super().__init__(address, handler)
        self._slots = threading.BoundedSemaphore(cap)
        self.refused = 0

    def process_request(self, request: Any, client_address: Any) -> None:
        if not self._slots.acquire(blocking=False):
            self.refused += 1
            if self.refused in (1, 10, 100) or self.refused % 1000 == 0:
                log.warning("http connection refused: at the connection cap", extra={"refused": self.refused})
            self.shutdown_request(request)
            return
        super().process_request(request, client_address)

    def process_request_thread(self, request: Any, client_address: Any) -> None:
        try:
            super().process_request_thread(request, client_address)
        finally:
            self._slots.release()


@dataclass
class _Site:
    """What every request to one server is checked against and answered from."""

    routes: dict[str, Route]
    posts: dict[str, PostRoute]
    token: str
    hosts: set[str] = field(default_factory=set)  # Host headers naming this server, with its port


class _Handler(BaseHTTPRequestHandler):
    """One request: checks Host (and, for a POST, type, token and length), then calls the route.

    A subclass per server (:func:`_handler_for`) carries that server's :class:`_Site` and socket
    timeout, since the standard library makes one handler object per request from a class.
    """

    site: _Site

    def log_message(self, format: str, *args: Any) -> None:
        log.debug("http", extra={"request": format % args})

    def do_GET(self) -> None:
        if self._refused_host():
            return
        route = self.site.routes.get(self.path.split("?", 1)[0])
        self._answer(lambda: route() if route is not None else (404, "text/plain", b"not found\n"))

    def do_POST(self) -> None:
        if self._refused_host():
            return
        route = self.site.posts.get(self.path.split("?", 1)[0])
        problem = self._post_problem(route is not None)
        if problem is not None:
            status, why = problem
            where = {"path": self.path[:200], "status": status, "why": why}
            log.warning("http post refused", extra=where)
            self.close_connection = True  # the body, if any, is not read
            self._answer(lambda: (status, "text/plain", f"refused: {why}\n".encode()))
            return
        assert route is not None
        data = self.rfile.read(int(self.headers["Content-Length"]))
        self._answer(lambda: route(data))

    def _refused_host(self) -> bool:
        if self.headers.get("Host", "").lower() in self.site.hosts:
            return False
        named = str(self.headers.get("Host"))[:100]
        log.warning("http request refused: unknown Host", extra={"host": named})
        self.close_connection = True
        self._answer(lambda: (421, "text/plain", b"refused: Host is not this agent\n"))
        return True

    def _post_problem(self, known: bool) -> tuple[int, str] | None:
        if not known:
            return 404, "no such endpoint"
        kind = self.headers.get("Content-Type", "").split(";", 1)[0].strip().lower()
        if kind != "application/json":
            return 415, "Content-Type must be application/json"
        if not hmac.compare_digest(self.headers.get(TOKEN_HEADER, "").encode(), self.site.token.encode()):
            return 401, f"{TOKEN_HEADER} missing or wrong"
        length = self.headers.get("Content-Length")
        if length is None:
            return 411, "Content-Length required"
        if not length.isdigit():
            return 400, "Content-Length must be a non-negative integer"
        if int(length) > MAX_POST_BYTES:
            return 413, f"body over {MAX_POST_BYTES} bytes"
        return None

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


def _handler_for(site: _Site, timeout_s: float) -> type[_Handler]:
    """A handler class for one server: its site, and a timeout on every read and write."""
    return type("Handler", (_Handler,), {"site": site, "timeout": timeout_s})


class LocalServer:
    """Serves GET (and POST) routes on ``host:port`` in daemon threads; ``port=0`` picks a free port.

    Every request must name this server in its Host header (a page on another name cannot reach it
    through DNS rebinding); a POST needs ``Content-Type: application/json``, a Content-Length of at
    most :data:`MAX_POST_BYTES`, and the ``token`` in :data:`TOKEN_HEADER` (a cross-origin page
    cannot send that header without a preflight this server never grants). Sockets time out after
    ``timeout_s`` and at most ``max_connections`` are served at once.
    """

    def __init__(
        self,
        host: str,
        port: int,
        routes: dict[str, Route],
        post_routes: dict[str, PostRoute] | None = None,
        *,
        token: str,
        timeout_s: float = 10.0,
        max_connections: int = 32,
    ) -> None:
        self.routes = routes
        self.token = token
        site = _Site(routes, post_routes or {}, token)
        try:
            self._server = _CappedServer((host, port), _handler_for(site, timeout_s), max_connections)
        except OSError as exc:
            raise ConfigError(listen_problem(host, port, exc)) from None
        self.host: str = host
        self.port: int = self._server.server_address[1]
        names = {host, "localhost", "127.0.0.1", "[::1]"} if _loopback(host) else {host}
        site.hosts.update(f"{name}:{self.port}".lower() for name in names)
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
        """Stop serving (if it was started) and close the socket."""
        if self._thread.is_alive():  # shutdown() waits for a serve loop: never one if not started
            self._server.shutdown()
        self._server.server_close()
        if self._thread.is_alive():
            self._thread.join(timeout=5)
