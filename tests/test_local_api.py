"""The agent's local HTTP API serves only its own callers: a web page in the station's browser,
another local user and a DNS-rebinding page cannot commit records, and no client can exhaust it.

Each probe from the issue against a running demo station (real server, real sockets) and, for the
cross-origin POSTs, a page of another origin in Debian's Chromium driven by Playwright.
"""

from __future__ import annotations

import functools
import http.server
import socket
import stat
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from prescreen.sim.demo_station import DemoStation
from prescreen.sim.samples import generate
from prescreen.web.server import TOKEN_HEADER, LocalServer, json_response

CHROMIUM = next((p for p in ("/usr/lib/chromium/chromium",) if Path(p).exists()), None)


@pytest.fixture(scope="module")
def station(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DemoStation]:
    orders, steps = generate(12, seed=7)
    bench = DemoStation(tmp_path_factory.mktemp("local-api"), orders)
    try:
        for step in steps[:6]:  # a few committed verdicts to aim at
            bench.run(step)
        yield bench
    finally:
        bench.close()


def _committed(station: DemoStation) -> int:
    assert station.agent is not None
    return sum(station.agent.outbox.counts().values())


def _verdict(station: DemoStation) -> dict[str, Any]:
    assert station.agent is not None
    return next(r for r in station.agent.outbox.records() if r["kind"] == "verdict")


def _raw(port: int, request: bytes, timeout: float = 5) -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
        sock.sendall(request)
        return sock.recv(4096)


def _port(station: DemoStation) -> int:
    assert station.agent is not None
    assert station.agent.http is not None
    return station.agent.http.port


@pytest.mark.slow
def test_the_token_file_is_private_and_a_post_needs_it(station: DemoStation) -> None:
    assert station.agent is not None
    path = station.agent.config.api_token_path()
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    record = _verdict(station)
    body = {"record_id": record["record_id"], "outcome": "destroyed", "reference": "FAKE-1", "by": "customs"}
    url = station.url.replace("/station", "/api/outcome")
    before = _committed(station)
    assert httpx.post(url, json=body, timeout=5).status_code == 401  # another local user: no token
    wrong = {TOKEN_HEADER: "guess" * 10}
    assert httpx.post(url, json=body, headers=wrong, timeout=5).status_code == 401
    plain = {**station.api_headers(), "Content-Type": "text/plain"}
    assert httpx.post(url, json=body, headers=plain, timeout=5).status_code == 415
    assert _committed(station) == before


@pytest.mark.slow
def test_a_rebinding_host_is_refused_even_for_reads(station: DemoStation) -> None:
    port = _port(station)
    for path in ("/status", "/station/snapshot"):
        answer = httpx.get(f"http://127.0.0.1:{port}{path}", headers={"Host": f"attacker.example:{port}"})
        assert answer.status_code == 421
    assert httpx.get(f"http://localhost:{port}/status").status_code == 200  # its own names are fine
    before = _committed(station)
    confirm = {**station.api_headers(), "Host": f"attacker.example:{port}"}
    answer = httpx.post(f"http://127.0.0.1:{port}/station/confirm", json={}, headers=confirm)
    assert answer.status_code == 421
    assert _committed(station) == before


@pytest.mark.slow
@pytest.mark.parametrize(("length", "status"), [("-1", 400), ("300000000", 413), ("x", 400)])
def test_a_bad_content_length_is_refused_without_reading_the_body(
    station: DemoStation, length: str, status: int
) -> None:
    port = _port(station)
    token = station.api_headers()[TOKEN_HEADER]
    request = (
        f"POST /station/confirm HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Type: application/json\r\n"
        f"{TOKEN_HEADER}: {token}\r\nContent-Length: {length}\r\n\r\n{{}}"
    ).encode()
    answer = _raw(port, request)  # no body follows: a server that tried to read would time out
    assert answer.startswith(f"HTTP/1.0 {status}".encode()), answer[:80]
    assert httpx.get(f"http://127.0.0.1:{port}/status").status_code == 200


@pytest.mark.slow
def test_idle_connections_are_capped_and_time_out() -> None:
    server = LocalServer(
        "127.0.0.1",
        0,
        {"/status": lambda: json_response({"ok": True})},
        token="t" * 43,
        timeout_s=1.0,
        max_connections=8,
    ).start()
    idle: list[socket.socket] = []
    try:
        threads = threading.active_count()
        idle = [socket.create_connection(("127.0.0.1", server.port)) for _ in range(100)]
        time.sleep(0.5)
        assert threading.active_count() - threads <= 8  # was one thread per connection: 100
        time.sleep(1.5)  # the idle ones time out and free their slots
        assert httpx.get(f"{server.url}/status", timeout=5).json() == {"ok": True}
    finally:
        for sock in idle:
            sock.close()
        server.stop()


EVIL_PAGE = """<!doctype html><title>cheap flights</title><script>
window.attempts = (async (agent, record) => {
  const outcome = JSON.stringify({record_id: record, outcome: "destroyed", reference: "FAKE", by: "CBP"});
  const tries = [
    fetch(agent + "/api/outcome", {method: "POST", mode: "no-cors", body: outcome,
      headers: {"Content-Type": "text/plain"}}),
    fetch(agent + "/api/correct", {method: "POST", mode: "no-cors",
      body: JSON.stringify({record_id: record, changes: {origin_country: "US"}, by: "CBP officer"})}),
    fetch(agent + "/station/confirm", {method: "POST", mode: "no-cors", body: "{}"}),
    fetch(agent + "/api/outcome", {method: "POST", body: outcome,
      headers: {"Content-Type": "application/json", "X-Prescreen-Token": "guess"}}),
  ];
  return (await Promise.allSettled(tries)).map((r) => r.status);
})(AGENT, RECORD);
</script>"""


@pytest.mark.slow
@pytest.mark.skipif(CHROMIUM is None, reason="Debian chromium is not installed")
def test_a_page_of_another_origin_in_the_stations_browser_commits_nothing(
    station: DemoStation, tmp_path: Path
) -> None:
    playwright_api = pytest.importorskip("playwright.sync_api")
    agent = station.url.rsplit("/station", 1)[0]
    record_id = _verdict(station)["record_id"]
    page_html = EVIL_PAGE.replace("AGENT", repr(agent)).replace("RECORD", repr(record_id))
    (tmp_path / "index.html").write_text(page_html)
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(tmp_path))
    evil = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=evil.serve_forever, daemon=True).start()
    before = _committed(station)
    try:
        with playwright_api.sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
            try:
                tab = browser.new_page()
                tab.goto(f"http://127.0.0.1:{evil.server_address[1]}/index.html")
                statuses = tab.evaluate("window.attempts")
            finally:
                browser.close()
    finally:
        evil.shutdown()
    assert len(statuses) == 4  # every attempt was made (no-cors ones "succeed" opaquely)
    # A genuine request answered by the station thread: anything accepted before it is committed.
    barrier = {"record_id": "no-such-record", "outcome": "abandoned"}
    answer = httpx.post(agent + "/api/outcome", json=barrier, headers=station.api_headers(), timeout=10)
    assert answer.status_code == 404
    assert _committed(station) == before
