"""``prescreen receiver --workers N``: N receiver processes on one shared subscription, one store.

Why processes: a receiver's per-record work (decoding, schema validation, the checks, SQL) holds
the GIL, so threads would share one core. The broker deals each batch to one member of the share
group (``$share/receivers/...``, MQTT 5 shared subscriptions, which mosquitto also grants to 3.1.1
clients), every worker writes the same store (SQLite serialises commits with a file lock,
PostgreSQL with its own), and each acks a batch only after its own commit, so exactly-once in the
store holds as for separate receivers.
"""

from __future__ import annotations

import argparse
import logging
import multiprocessing
import os
import socket
import tempfile
import time
from multiprocessing.process import BaseProcess

log = logging.getLogger("prescreen.receiver")


def start_workers(args: argparse.Namespace, count: int, ready_s: float = 30) -> list[BaseProcess]:
    """Start ``count`` more receivers with the same options (each one worker), as child processes,
    and return once each is subscribed (or ``ready_s`` passed).

    Each tells the parent READY=1 on a notify socket of the parent's own, not systemd's: READY and
    STATUS are the parent's to say. Waiting matters because a receiver announces itself when it
    connects and stations then re-send what they have in flight: better before they start.
    """
    context = multiprocessing.get_context("spawn")  # no forked copy of the parent's threads
    single = argparse.Namespace(**{**vars(args), "workers": 1})
    systemd_socket = os.environ.get("NOTIFY_SOCKET")
    with (
        tempfile.TemporaryDirectory(prefix="prescreen-workers-") as folder,
        socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as ready,
    ):
        ready.bind(f"{folder}/notify")
        os.environ["NOTIFY_SOCKET"] = f"{folder}/notify"
        try:
            workers: list[BaseProcess] = [
                context.Process(target=_run_worker, args=(single,), name=f"receiver-worker-{n}")
                for n in range(1, count + 1)
            ]
            for worker in workers:
                worker.start()
        finally:
            if systemd_socket is None:
                del os.environ["NOTIFY_SOCKET"]
            else:
                os.environ["NOTIFY_SOCKET"] = systemd_socket
        _wait_ready(ready, count, ready_s)
    return workers


def _wait_ready(ready: socket.socket, count: int, ready_s: float) -> None:
    deadline = time.monotonic() + ready_s
    waiting = count
    while waiting and (left := deadline - time.monotonic()) > 0:
        ready.settimeout(left)
        try:
            waiting -= b"READY=1" in ready.recv(4096)
        except TimeoutError:
            break
    if waiting:
        log.warning("receiver workers not ready in time", extra={"waiting": waiting, "seconds": ready_s})


def _run_worker(args: argparse.Namespace) -> None:
    from prescreen.commands.customs import cmd_receiver

    raise SystemExit(cmd_receiver(args))


def stop_workers(workers: list[BaseProcess], timeout_s: float = 30) -> None:
    """SIGTERM each worker (it finishes the batches it holds; all it acked is committed), then wait."""
    for worker in workers:
        if worker.is_alive():
            worker.terminate()
    for worker in workers:
        worker.join(timeout_s)
        if worker.is_alive():
            log.error("receiver worker did not stop, killed", extra={"worker": worker.name})
            worker.kill()
            worker.join()
        elif worker.exitcode not in (0, None):
            log.warning("receiver worker ended", extra={"worker": worker.name, "exit": worker.exitcode})
