"""Shared fixtures: a real mosquitto on a free port per session, started by the suite itself."""

from __future__ import annotations

import logging
import shutil
import time
from collections.abc import Callable, Iterator

import pytest
from prescreen.sync.broker import LocalBroker


@pytest.fixture(scope="session")
def broker() -> Iterator[LocalBroker]:
    """A real mosquitto broker on 127.0.0.1 (installed by .ci/system-deps.sh)."""
    if not shutil.which("mosquitto"):
        pytest.fail("mosquitto is not installed: run .ci/system-deps.sh")
    started = LocalBroker.start(prefer="mosquitto")
    yield started
    started.stop()


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
