"""Shared fixtures: a real mosquitto on a free port per session, started by the suite itself, a
3-node NATS cluster (JetStream + MQTT) for the tests that need one, and PostgreSQL (the machine's,
or one the suite starts) with a fresh database per test."""

from __future__ import annotations

import logging
import shutil
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import postgres
import pytest
from prescreen.sim.fleet import scratch_database
from prescreen.sync.broker import LocalBroker
from prescreen.sync.cluster import NatsCluster

NATS_NODE = Path(__file__).with_name("nats") / "node.conf"


@pytest.fixture(scope="session")
def broker() -> Iterator[LocalBroker]:
    """A real mosquitto broker on 127.0.0.1 (installed by .ci/system-deps.sh)."""
    if not shutil.which("mosquitto"):
        pytest.fail("mosquitto is not installed: run .ci/system-deps.sh")
    started = LocalBroker.start(prefer="mosquitto")
    yield started
    started.stop()


@pytest.fixture(scope="session")
def nats_cluster() -> Iterator[NatsCluster]:
    """One 3-node NATS cluster (tests/nats/node.conf) on free ports for the whole session; each
    test uses its own topic prefix and stream, so they do not see each other's batches."""
    why = NatsCluster.available()
    if why:
        pytest.skip(why)
    cluster = NatsCluster.start(3, template=NATS_NODE.read_text())
    yield cluster
    cluster.stop()


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[postgres.Server]:
    """A PostgreSQL server: the machine's on 127.0.0.1:5432, or one started for this session;
    the tests that need one are skipped, with the reason, when neither is possible."""
    server, why_not = postgres.find_or_start()
    if server is None:
        pytest.skip(f"PostgreSQL tests skipped: {why_not}")
    yield server
    server.stop()


@pytest.fixture
def pg_url(postgres_server: postgres.Server) -> Iterator[str]:
    """A new, empty database on that server (``postgresql://`` URL), dropped afterwards."""
    with scratch_database(postgres_server.admin_url) as url:
        yield url


def _wait_until(predicate: Callable[[], bool], timeout: float = 3.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.01)
    return False


@pytest.fixture
def wait_until() -> Callable[..., bool]:
    """Poll ``predicate`` until true or ``timeout`` seconds; returns whether it became true."""
    return _wait_until


@pytest.fixture(autouse=True)
def _isolated_logging() -> Iterator[None]:
    """CLI commands run in-process configure the ``prescreen`` logger (own handler, no
    propagation); put it back after each test so later tests' ``caplog`` sees their log lines."""
    logger = logging.getLogger("prescreen")
    saved = (logger.handlers[:], logger.level, logger.propagate)
    yield
    logger.handlers[:], logger.level, logger.propagate = saved[0], saved[1], saved[2]
