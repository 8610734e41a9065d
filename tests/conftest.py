"""Shared fixtures: a real mosquitto on a free port per session, started by the suite itself."""

from __future__ import annotations

import shutil
from collections.abc import Iterator

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
