"""The station page in a real browser (Debian's headless Chromium driven by Playwright).

A parcel scanned on the simulated bench must show up on the page with its verdict, in words and
shape, with the reason in plain words; a HOLD sounds and is confirmed by a touch, which becomes an
outcome record. A screenshot of each verdict state at 800x480 is taken: into a temporary folder,
or into docs/screenshots/ with ``make screenshots`` (PRESCREEN_SCREENSHOTS), so a test run never
changes the tree.
"""

from __future__ import annotations

import atexit
import json
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from prescreen.sim.demo_station import DemoStation
from prescreen.sim.samples import generate
from prescreen.sync.customs import new_message

playwright_api = pytest.importorskip("playwright.sync_api")
CHROMIUM = next(
    (p for p in ("/usr/lib/chromium/chromium", shutil.which("chromium") or "") if p and Path(p).exists()),
    None,
)
pytestmark = [
    pytest.mark.skipif(CHROMIUM is None, reason="Debian chromium is not installed"),
    pytest.mark.slow,
]
if os.environ.get("PRESCREEN_SCREENSHOTS"):  # make screenshots: into docs/screenshots/
    SCREENSHOTS = Path(os.environ["PRESCREEN_SCREENSHOTS"])
else:  # a test run leaves neither the tree nor /tmp changed
    SCREENSHOTS = Path(tempfile.mkdtemp(prefix="prescreen-shots-"))
    atexit.register(shutil.rmtree, SCREENSHOTS, True)


@pytest.fixture(scope="module")
def bench(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[DemoStation, dict[str, Any]]]:
    orders, steps = generate(40, seed=7)
    station = DemoStation(tmp_path_factory.mktemp("station"), orders)
    by_verdict: dict[str, Any] = {}
    try:
        yield station, {"steps": [s for s in steps if s.kind == "parcel"], "seen": by_verdict}
    finally:
        station.close()


@pytest.fixture(scope="module")
def page(bench: tuple[DemoStation, dict[str, Any]]) -> Iterator[Any]:
    station, _ = bench
    with playwright_api.sync_playwright() as p:
        browser = p.chromium.launch(
            executable_path=CHROMIUM, args=["--no-sandbox", "--autoplay-policy=no-user-gesture-required"]
        )
        tab = browser.new_page(viewport={"width": 800, "height": 480})
        tab.goto(station.page_url())
        tab.wait_for_function("document.getElementById('dev-scale').textContent.length > 0")
        yield tab
        browser.close()


def _scan_until(station: DemoStation, steps: list[Any], verdict: str) -> dict[str, Any]:
    """Run parcels from the sample day until one gets ``verdict``; returns its record."""
    while steps:
        event, _ = station.run(steps.pop(0), shelf=None)  # the HOLD is confirmed on the page
        if event.record is not None and event.record["screening"]["verdict"] == verdict:
            return event.record
    raise AssertionError(f"no {verdict} parcel in the sample day")


@pytest.mark.parametrize("verdict", ["CLEAR", "REVIEW", "HOLD"])
def test_scanned_parcel_shows_its_verdict(
    bench: tuple[DemoStation, dict[str, Any]], page: Any, verdict: str
) -> None:
    station, state = bench
    record = _scan_until(station, state["steps"], verdict)
    tracking = record["parcel"]["tracking_number"]
    page.wait_for_function(
        "([v, t]) => document.getElementById('verdict').dataset.verdict === v"
        " && document.getElementById('tracking').textContent.includes(t)",
        arg=[verdict, tracking],
        timeout=5000,
    )
    assert page.inner_text("#word") == verdict
    assert page.locator("#shape polygon, #shape circle").count() == 1  # told by shape too
    reasons = page.locator("#reasons li").all_inner_texts()
    assert reasons, "a verdict always says why (or that all checks passed)"
    instruction = page.inner_text("#instruction")
    assert {"CLEAR": "outbound", "REVIEW": "review tray", "HOLD": "hold shelf"}[verdict] in instruction
    assert page.locator("#recent-list li").first.inner_text().startswith(verdict)
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / f"station-{verdict.lower()}.png"))
    state["seen"][verdict] = record


def test_hold_sounds_and_a_touch_confirms_it_as_a_record(
    bench: tuple[DemoStation, dict[str, Any]], page: Any
) -> None:
    station, state = bench
    held = state["seen"].get("HOLD")
    if held is None:
        pytest.skip("needs the HOLD test first")
    assert page.evaluate("window.holdSounds") >= 1
    page.click("#confirm")
    event = station.events.get(timeout=10)
    assert event.kind == "hold_confirmed"
    assert event.record is not None
    assert event.record["outcome"]["refers_to"] == held["record_id"]
    assert event.record["outcome"]["outcome"] == "held_on_shelf"
    page.wait_for_function("document.getElementById('verdict').dataset.confirmed === 'true'", timeout=5000)
    assert "recorded" in page.inner_text("#instruction")
    page.screenshot(path=str(SCREENSHOTS / "station-hold-confirmed.png"))


def test_weight_and_devices_are_live(bench: tuple[DemoStation, dict[str, Any]], page: Any) -> None:
    station, _ = bench
    station.scale.place("1.234", motion=3)
    page.wait_for_function("document.getElementById('weight').textContent === '1.234 kg'", timeout=5000)
    page.wait_for_function("document.getElementById('weight-cue').dataset.stable === 'true'", timeout=5000)
    station.scale.place("0", motion=1)
    for device in ("scanner", "scale", "broker"):
        assert page.inner_text(f"#dev-{device}") == "OK"
    # Which broker node the station is on (one of [sync] hosts on a cluster).
    assert page.inner_text("#dev-broker-node") == f"{station.broker.host}:{station.broker.port}"


def test_spanish_page_and_reconnect(bench: tuple[DemoStation, dict[str, Any]], page: Any) -> None:
    station, _ = bench
    page.goto(station.page_url("?lang=es"))
    page.wait_for_function("document.getElementById('dev-scale').textContent === 'OK'", timeout=5000)
    assert page.inner_text("#word") in {"LIBRE", "REVISAR", "RETENER"}  # the snapshot, in Spanish
    assert page.inner_text("[data-s=recent]") == "Últimos paquetes"
    page.screenshot(path=str(SCREENSHOTS / "station-es.png"))
    snapshot = json.loads(page.evaluate("fetch('/station/snapshot').then(r => r.text())"))
    assert len(snapshot["recent"]) <= 20
    assert all(set(p["reasons"]) == {"en", "es"} for p in snapshot["recent"])


def test_page_uses_no_network_beyond_the_station(
    bench: tuple[DemoStation, dict[str, Any]], page: Any
) -> None:
    station, _ = bench
    requested: list[str] = []
    page.on("request", lambda request: requested.append(request.url))
    page.goto(station.page_url())
    page.wait_for_function("document.getElementById('dev-scale').textContent === 'OK'", timeout=5000)
    origin = station.url.rsplit("/station", 1)[0]
    assert requested
    assert all(url.startswith(origin) for url in requested)


def test_bad_confirmations_get_a_clear_answer_and_record_nothing(
    bench: tuple[DemoStation, dict[str, Any]],
) -> None:
    station, _ = bench
    assert station.agent is not None
    committed = sum(station.agent.outbox.counts().values())
    confirm = station.url + "/confirm"
    headers = station.api_headers()
    assert httpx.post(confirm, content=b"not json", headers=headers).status_code == 400
    assert httpx.post(confirm, json={"record_id": 7}, headers=headers).status_code == 400
    assert httpx.post(confirm, json={"record_id": "no-such-record"}, headers=headers).status_code == 202
    event = station.events.get(timeout=10)
    assert (event.kind, event.message) == ("ignored", "No HOLD is waiting for the shelf.")
    station.scanner.scan("SHELF-B2")  # a shelf label with no HOLD waiting
    assert station.events.get(timeout=10).kind == "ignored"
    assert sum(station.agent.outbox.counts().values()) == committed


def test_a_late_customs_hold_calls_the_operator_back(
    bench: tuple[DemoStation, dict[str, Any]], page: Any
) -> None:
    """A request for screening on a parcel that already left the bench: the page turns to HOLD,
    sounds, says which parcel to fetch back, and takes the shelf confirmation like any HOLD."""
    station, state = bench
    page.goto(station.page_url())  # English
    page.wait_for_function("document.getElementById('dev-scale').textContent.length > 0")
    record = _scan_until(station, state["steps"], "CLEAR")
    tracking = record["parcel"]["tracking_number"]
    sounds = page.evaluate("window.holdSounds")
    ack = station.send(new_message("rfs", tracking_number=tracking))
    assert ack is not None
    assert ack["parcel_state"]["verdict"] == "CLEAR"
    page.wait_for_function(
        "(t) => document.getElementById('verdict').dataset.verdict === 'HOLD'"
        " && document.getElementById('tracking').textContent.includes(t)",
        arg=tracking,
        timeout=5000,
    )
    assert page.evaluate("window.holdSounds") == sounds + 1
    assert "Customs request for screening after the scan: the parcel was CLEAR" in page.inner_text("#reasons")
    assert "take it off the outgoing cart" in page.inner_text("#instruction")
    page.screenshot(path=str(SCREENSHOTS / "station-late-hold.png"))
    assert_in_reach(page, "#confirm")  # at 800x480 it was once pushed under the history list
    page.click("#confirm")  # fetched back and put on the hold shelf
    while (event := station.events.get(timeout=10)).kind != "hold_confirmed":
        pass
    assert event.record is not None
    assert event.record["outcome"]["refers_to"] == record["record_id"]
    page.wait_for_function("document.getElementById('verdict').dataset.confirmed === 'true'", timeout=5000)


def test_a_customs_release_of_a_shelved_parcel_is_shown_also_after_a_reload(
    bench: tuple[DemoStation, dict[str, Any]], page: Any
) -> None:
    """A release of a parcel on the hold shelf tells the operator to take it off, live and on a
    page opened afterwards (the snapshot carries it)."""
    station, state = bench
    page.goto(station.page_url())
    page.wait_for_function("document.getElementById('dev-scale').textContent.length > 0")
    record = _scan_until(station, state["steps"], "HOLD")
    assert station.shelve().kind == "hold_confirmed"  # the operator scans the shelf label
    tracking = record["parcel"]["tracking_number"]
    message = new_message(
        "outcome", tracking_number=tracking, outcome="released", reason_code="R-1", customs_reference="CBP-9"
    )
    assert (station.send(message) or {}).get("status") == "applied"
    shown = "(t) => document.getElementById('tracking').textContent.includes(t)"
    for _ in ("live", "reloaded"):
        page.wait_for_function(shown, arg=tracking, timeout=5000)
        assert page.evaluate("document.getElementById('verdict').dataset.verdict") == "CLEAR"
        assert "take it off the hold shelf" in page.inner_text("#instruction")
        assert "CBP-9" in page.inner_text("#reasons")
        page.reload()
        page.wait_for_function("document.getElementById('dev-scale').textContent.length > 0")


def assert_in_reach(page: Any, selector: str) -> None:
    """The whole element is inside the viewport and nothing covers any part of it (a touch
    anywhere on it hits it)."""
    box = page.locator(selector).bounding_box()
    assert box is not None
    viewport = page.viewport_size
    assert box["y"] >= 0
    assert box["y"] + box["height"] <= viewport["height"]
    inset = 12  # clear of rounded corners
    points = [
        (x, y)
        for x in (box["x"] + inset, box["x"] + box["width"] / 2, box["x"] + box["width"] - inset)
        for y in (box["y"] + inset, box["y"] + box["height"] / 2, box["y"] + box["height"] - inset)
    ]
    covered = page.evaluate(
        "([s, points]) => points.filter(([x, y]) => {"
        " const hit = document.elementFromPoint(x, y); const el = document.querySelector(s);"
        " return !(hit === el || el.contains(hit)); })",
        [selector, points],
    )
    assert not covered, f"{selector} is covered at {covered}"


def test_a_station_run_on_sim_devices_is_driven_from_the_page(tmp_path: Path, page: Any) -> None:
    """``prescreen run`` on sim:// devices: the page offers the simulated operator; a weight and a
    scan typed there become a verdict on the page and a record at the receiver."""
    from prescreen.sync.broker import LocalBroker
    from test_sim_station import TRACKING, RunningStation

    broker = LocalBroker.start()
    station = RunningStation(tmp_path, broker)
    try:
        tab = page.context.browser.new_page(viewport={"width": 800, "height": 480})
        try:
            tab.goto(station.page_url())
            tab.wait_for_selector("#sim", state="visible", timeout=5000)
            tab.wait_for_function(
                "document.getElementById('health-level').textContent === 'OK'", timeout=5000
            )
            tab.fill("#sim-code", TRACKING)
            tab.fill("#sim-weight", "1,9")  # a decimal comma, as typed on a Spanish keyboard
            assert_in_reach(tab, "#sim-scan")
            tab.click("#sim-scan")
            tab.wait_for_function(
                "(t) => document.getElementById('tracking').textContent.includes(t)",
                arg=TRACKING,
                timeout=15000,
            )
            shown = tab.inner_text("#word")
        finally:
            tab.close()
        (record,) = station.stored()
    finally:
        station.close()
        broker.stop()
    assert record["parcel"]["tracking_number"] == TRACKING
    assert record["parcel"]["measured_weight_kg"] == 1.9
    assert shown == record["screening"]["verdict"]


def test_a_real_station_page_offers_no_sim_controls(
    bench: tuple[DemoStation, dict[str, Any]], page: Any
) -> None:
    """The demo's devices are simulators the agent did not open as sim://: no controls."""
    station, _ = bench
    page.goto(station.page_url())
    page.wait_for_function("document.getElementById('dev-scale').textContent === 'OK'", timeout=5000)
    page.wait_for_timeout(300)  # the /sim probe has answered 404 by now
    assert page.locator("#sim").is_hidden()
