"""``prescreen receiver --workers N``: N receiver processes on one shared subscription, one store.

Why processes: a receiver's per-record work (decoding, schema validation, the checks, SQL) holds
the GIL, so threads would share one core. The broker deals each batch to one member of the share
group (``$share/receivers/...``, MQTT 5 shared subscriptions, which mosquitto also grants to 3.1.1
clients), every worker writes the same store (SQLite serialises commits with a file lock,
PostgreSQL with its own), and each acks a batch only after its own commit, so exactly-once in the
store holds as for separate receivers.

Supervision: a worker that ends while the receiver runs stops the whole receiver, which then
exits non-zero if any worker did; it is not restarted here. Why: a worker dies of what will kill
its replacement too (the store's disk full or database gone, memory, a bug on a batch the broker
deals again), and an in-process restart loop would hide that behind one healthy-looking service.
The unit's ``Restart=always`` restarts the whole receiver, with its delay, start limit and the
failure in ``systemctl status``; nothing is lost meanwhile, because every batch is acked only
after its commit and the stations re-send what is unacked when a receiver announces itself.
"""

from __future__ import annotations

import argparse
import logging
import multiprocessing
import os
import socket
import tempfile
import threading
import time
from multiprocessing.connection import wait
from multiprocessing.process import BaseProcess

from prescreen.core.errors import SyncError

log = logging.getLogger("prescreen.receiver")


def start_workers(args: argparse.Namespace, count: int, ready_s: float = 30) -> list[BaseProcess]:
    """Start ``count`` more receivers with the same options (each one worker), as child processes,
    and return once each is subscribed.

    Each tells the parent READY=1 on a notify socket of the parent's own, not systemd's: READY and
    STATUS are the parent's to say. Waiting matters because a receiver announces itself when it
    connects and stations then re-send what they have in flight: better before they start.

    Raises:
        SyncError: a worker ended, or not every worker said READY within ``ready_s`` (the workers
            started are stopped first), so the parent never says READY for a partial receiver.
    """
    context = multiprocessing.get_context("spawn")  # no forked copy of the parent's threads
    single = argparse.Namespace(**{**vars(args), "workers": 1})
    systemd_socket = os.environ.get("NOTIFY_SOCKET")
    workers: list[BaseProcess] = []
    with (
        tempfile.TemporaryDirectory(prefix="prescreen-workers-") as folder,
        socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as ready,
    ):
        ready.bind(f"{folder}/notify")
        os.environ["NOTIFY_SOCKET"] = f"{folder}/notify"
        try:
            for n in range(1, count + 1):
                worker = context.Process(target=_run_worker, args=(single,), name=f"receiver-worker-{n}")
                worker.start()
                workers.append(worker)
        finally:
            if systemd_socket is None:
                del os.environ["NOTIFY_SOCKET"]
            else:
                os.environ["NOTIFY_SOCKET"] = systemd_socket
        why = _wait_ready(ready, workers, ready_s)
    if why:
        stop_workers(workers)
        raise SyncError(f"receiver workers did not start: {why}")
    return workers


def _wait_ready(ready: socket.socket, workers: list[BaseProcess], ready_s: float) -> str:
    """Why not every worker said READY=1 within ``ready_s`` ("" when all did); a worker that ends
    meanwhile is the answer at once rather than after the whole wait."""
    deadline = time.monotonic() + ready_s
    waiting = len(workers)
    sentinels = {worker.sentinel: worker for worker in workers}
    ready.setblocking(False)
    while waiting and (left := deadline - time.monotonic()) > 0:
        for event in wait([ready, *sentinels], left):
            if event is ready:
                waiting -= b"READY=1" in ready.recv(4096)
            else:
                worker = sentinels[event]  # type: ignore[index]
                worker.join()
                return f"{worker.name} ended with exit code {worker.exitcode} before it was ready"
    return f"{waiting} of {len(workers)} not ready in {ready_s:g} s" if waiting else ""


def _run_worker(args: argparse.Namespace) -> None:
    from prescreen.commands.customs import cmd_receiver

    raise SystemExit(cmd_receiver(args))


def supervise(workers: list[BaseProcess], stop: threading.Event) -> threading.Thread:
    """Watch the workers beside ``stop``: the first that ends while ``stop`` is not set is logged
    in one line and sets ``stop``, so the whole receiver shuts down (see the module docstring)."""

    def watch() -> None:
        if not workers:
            return
        ended = wait([worker.sentinel for worker in workers])
        if stop.is_set():
            return
        worker = next(worker for worker in workers if worker.sentinel in ended)
        worker.join()
        log.error(
            "receiver worker ended; stopping the receiver",
            extra={"worker": worker.name, "pid": worker.pid, "exit": worker.exitcode},
        )
        stop.set()

    watcher = threading.Thread(target=watch, name="receiver-workers-watch", daemon=True)
    watcher.start()
    return watcher


def stop_workers(workers: list[BaseProcess], timeout_s: float = 30) -> bool:
    """SIGTERM each worker (it finishes the batches it holds; all it acked is committed), then wait.

    Returns whether every worker exited 0: the receiver's exit code says a worker failed.
    """
    for worker in workers:
        if worker.is_alive():
            worker.terminate()
    for worker in workers:
        worker.join(timeout_s)
        if worker.is_alive():
            log.error("receiver worker did not stop, killed", extra={"worker": worker.name})
            worker.kill()
            worker.join()
        elif worker.exitcode != 0:
            log.error("receiver worker failed", extra={"worker": worker.name, "exit": worker.exitcode})
    return all(worker.exitcode == 0 for worker in workers)
