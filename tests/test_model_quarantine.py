"""The live guardrail: a model that raises far more parcels than its card says is quarantined.

A whole simulated station (pty devices, SQLite outbox, broker, receiver): the page's health,
``/healthz`` and every later record say rules-only, and a restart keeps the quarantine.
"""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest
from prescreen.drivers.barcodes import decode
from prescreen.models.signals import ParcelSignals
from prescreen.risk import model_monitor
from prescreen.risk.screening import Screener
from prescreen.sim.demo_station import DemoStation
from prescreen.sim.samples import Step, generate


class _AlarmistModel:
    """A model that learned the wrong thing: everything looks risky to it."""

    version = "alarmist-1"

    def score_signals(self, signals: ParcelSignals) -> float:
        return 0.99

    def threshold_for(self, budget: float) -> float:
        return 0.5

    def expected_raise_rate(self, threshold: float) -> float:
        return 0.02  # its card says 2 %


@pytest.fixture
def station(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[DemoStation, list[Step]]]:
    orders, steps = generate(60, seed=5)
    demo = DemoStation(tmp_path_factory.mktemp("quarantine"), orders)
    try:
        yield demo, [s for s in steps if s.label == "clean" and decode(s.payload).tracking_number]
    finally:
        demo.close()


@pytest.mark.slow
def test_a_model_that_raises_too_often_is_quarantined_and_says_so(
    station: tuple[DemoStation, list[Step]],
) -> None:
    demo, clean = station
    agent = demo.agent
    assert agent is not None
    agent.station.screener = Screener(agent.config.screening, _AlarmistModel())
    agent.station.guard.monitor = model_monitor.ModelMonitor("alarmist-1", 20, 0.02)  # a short window
    verdicts = [demo.run(step)[0].record for step in clean[:10]]
    assert all(r is not None for r in verdicts)
    raised = [r for r in verdicts if r and r["screening"]["mode"] == "rules+model"]
    assert raised
    assert agent.station.screener.quarantined
    assert agent.station.guard.quarantine is not None
    assert agent.station.guard.quarantine.version == "alarmist-1"
    # later parcels are screened rules-only and the record names the quarantined model
    after = demo.run(clean[10])[0].record
    assert after is not None
    assert after["screening"]["mode"] == "rules-only"
    assert after["screening"]["quarantined_model"] == "alarmist-1"
    assert after["screening"]["verdict"] == "CLEAR"
    # health says it, in the one place every surface reads
    assert agent.http is not None
    body = httpx.get(agent.http.url + "/healthz", timeout=5).json()
    model = next(c for c in body["conditions"] if c["name"] == "model")
    assert model["level"] == "degraded"
    assert "quarantined" in model["detail"]
    status = httpx.get(agent.http.url + "/status", timeout=5).json()
    assert status["model"]["mode"] == "rules-only"
    assert "quarantined" in status["model"]["quarantined"]
    # and it is kept for the next start
    stored = agent.outbox.setting(model_monitor.SETTING)
    assert stored is not None
    assert '"alarmist-1"' in stored
    # an operator lifts it (prescreen model reinstate); a second time there is nothing to lift
    reinstate = agent.http.url + "/api/model/reinstate"
    lifted = httpx.post(reinstate, json={}, headers=demo.api_headers(), timeout=10)
    assert lifted.status_code == 200, lifted.text
    assert not agent.station.screener.quarantined
    assert agent.outbox.setting(model_monitor.SETTING) is None
    assert demo.events.get(timeout=5).kind == "model_reinstated"  # told to the station's listeners
    again = demo.run(clean[11])[0].record
    assert again is not None
    assert again["screening"]["mode"] == "rules+model"
    again_lifted = httpx.post(reinstate, json={}, headers=demo.api_headers(), timeout=10)
    assert again_lifted.status_code == 409


def test_the_monitor_needs_more_than_its_card_rate_to_trip() -> None:
    from prescreen.risk.screening import Screening

    monitor = model_monitor.ModelMonitor("m", 100, 0.05)
    calm = Screening("CLEAR", 0.1, "m", (), model_raised=False)
    raised = Screening("REVIEW", 0.9, "m", (), model_raised=True)
    # 8 raises in 100 parcels is under twice 5 %: no quarantine
    results = [monitor.observe(raised if i % 12 == 0 else calm) for i in range(100)]
    assert not any(results)
    # 15 raises in the last 100 trip it
    tripped = [monitor.observe(raised if i % 6 == 0 else calm) for i in range(100)]
    assert any(tripped)
