"""A broker on this machine for the demo and the tests: mosquitto if installed, else amqtt.

The demo must run with no set-up, so it brings its own broker on a free loopback port. The
``mosquitto`` binary is preferred (it is what sites run); the pure-Python ``amqtt`` broker (the
``broker`` extra) is the fallback where mosquitto cannot be installed.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import shutil
import socket
import subprocess
import tempfile
import threading
import time
from pathlib import Path

from prescreen.core.errors import BrokerUnavailable

log = logging.getLogger("prescreen.sync")


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def wait_listening(host: str, port: int, timeout: float) -> bool:
    """True once something accepts TCP connections on host:port."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with contextlib.suppress(OSError), socket.create_connection((host, port), timeout=0.2):
            return True
        time.sleep(0.02)
    return False


def end_process(process: subprocess.Popen[bytes], timeout: float) -> None:
    """SIGTERM, wait up to ``timeout`` seconds, then SIGKILL: a broker node that will not stop."""
    process.terminate()
    with contextlib.suppress(subprocess.TimeoutExpired):
        process.wait(timeout=timeout)
    if process.poll() is None:
        process.kill()
        process.wait()


class LocalBroker:
    """A broker process or thread on 127.0.0.1; :meth:`stop` ends it."""

    host = "127.0.0.1"

    def __init__(self, port: int, kind: str, config: str = "") -> None:
        self.port = port
        self.kind = kind
        self.config = config
        self._process: subprocess.Popen[bytes] | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._dir: tempfile.TemporaryDirectory[str] | None = None

    @classmethod
    def start(cls, *, port: int | None = None, prefer: str = "mosquitto", config: str = "") -> LocalBroker:
        """Start a broker; raises :class:`BrokerUnavailable` when neither kind can run.

        ``config`` (mosquitto only) replaces the open loopback listener: the tests use it for TLS,
        client certificates, passwords and ACLs; ``{port}`` in it is the broker's port.
        """
        port = port or free_port()
        if config or (prefer == "mosquitto" and shutil.which("mosquitto")):
            return cls(port, "mosquitto", config)._start_mosquitto()
        return cls(port, "amqtt")._start_amqtt()

    def restart(self) -> LocalBroker:
        """Stop and start again on the same port with the same settings (a broker restart)."""
        self.stop()
        return self._start_mosquitto() if self.kind == "mosquitto" else self._start_amqtt()

    def _start_mosquitto(self) -> LocalBroker:
        self._dir = tempfile.TemporaryDirectory(prefix="prescreen-broker-")
        conf = Path(self._dir.name) / "mosquitto.conf"
        listener = (
            self.config.replace("{port}", str(self.port))
            if self.config
            else f"listener {self.port} 127.0.0.1\nallow_anonymous true\n"
        )
        # "user root": when the tests run as root, mosquitto keeps the rights to read their keys.
        conf.write_text(listener + "\nuser root\npersistence false\nmax_queued_messages 100000\n")
        mosquitto = shutil.which("mosquitto") or "mosquitto"
        self._process = subprocess.Popen(
            [mosquitto, "-c", str(conf)], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
        )
        if not wait_listening(self.host, self.port, 5):
            self.stop()
            raise BrokerUnavailable(f"mosquitto did not start on port {self.port}")
        log.info("broker started", extra={"kind": "mosquitto", "port": self.port})
        return self

    def _start_amqtt(self) -> LocalBroker:
        try:
            from amqtt.broker import Broker
        except ImportError:
            raise BrokerUnavailable(
                "no MQTT broker: install mosquitto (apt-get install mosquitto) "
                "or the embedded one (pip install 'prescreen-agent[broker]')"
            ) from None
        config = {
            "listeners": {"default": {"type": "tcp", "bind": f"{self.host}:{self.port}"}},
            "sys_interval": 0,
            "auth": {"allow-anonymous": True, "plugins": ["auth_anonymous"]},
            "topic-check": {"enabled": False},
        }
        ready = threading.Event()
        loop = asyncio.new_event_loop()

        def serve() -> None:
            asyncio.set_event_loop(loop)
            broker = Broker(config, loop=loop)
            loop.run_until_complete(broker.start())
            ready.set()
            loop.run_forever()
            loop.run_until_complete(broker.shutdown())

        self._loop = loop
        self._thread = threading.Thread(target=serve, name="amqtt-broker", daemon=True)
        self._thread.start()
        if not ready.wait(10) or not wait_listening(self.host, self.port, 5):
            raise BrokerUnavailable(f"embedded amqtt broker did not start on port {self.port}")
        log.info("broker started", extra={"kind": "amqtt", "port": self.port})
        return self

    def stop(self) -> None:
        """Stop the broker (idempotent)."""
        if self._process is not None:
            end_process(self._process, 5)
            self._process = None
        if self._loop is not None and self._thread is not None:
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(timeout=5)
            self._loop = None
        if self._dir is not None:
            self._dir.cleanup()
            self._dir = None
