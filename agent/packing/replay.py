"""Replay: re-screen many parcels into the outbox, screening across cores with one committing writer.

CPU a parcel on a quiet 2-core machine (Nov 2026, after issue 20): screening ~150 µs, building and
serialising its verdict ~50 µs, signing and committing it ~80 µs (the Ed25519 signature ~35, the
SQLite insert ~20), so one thread replays ~3,500 parcels/s. With ``workers`` > 1, worker processes
screen chunks of parcels and build and serialise each verdict's members (parcel, order, screening),
in order. The parent is the one writer: it adds the envelope (sequence number, record id, time),
signs and commits in the input order with the outbox's own sequence numbers, assigned in the
committing transaction as always. Signing stays in the writer because the signature covers the
sequence number, which only the transaction knows (another writer may commit between two of a
replay's groups).

``workers=1`` is the one-thread path: screen, :func:`verdict_record`, commit, as a station does.
``prescreen screen --workers N`` uses the same pool for its JSON lines (:func:`screen_lines`).
"""

from __future__ import annotations

import gc
import logging
import multiprocessing
import os
import threading
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ProcessPoolExecutor
from functools import partial
from itertools import chain, islice
from typing import Any, TypeVar

from prescreen.core.db import CHECKPOINT_THREAD_PREFIX
from prescreen.core.records import Record, StationIdentity, envelope, member_texts
from prescreen.ops.config import Config
from prescreen.packing.batch import screen_lines as screen_lines_here
from prescreen.packing.outbox import Outbox
from prescreen.packing.verdicts import verdict_members, verdict_record
from prescreen.risk.entry import NO_SETTINGS, EntrySettings
from prescreen.risk.rules import ParcelFacts
from prescreen.risk.screening import Screener

log = logging.getLogger("prescreen.replay")
CHUNK = 200  # parcels a worker screens per task: pickling overhead amortised, memory bounded
T = TypeVar("T")
R = TypeVar("R")

_OWN = ("seq", "record_id", "created_at")  # the envelope's members that differ between records
_worker: dict[str, Screener] = {}  # each worker's own screener, made once by the pool's initializer


def default_workers() -> int:
    """One worker per core this process may run on."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def load_screener(conf: Config) -> Screener:
    """The screener ``prescreen screen`` uses for ``conf`` (picklable with ``functools.partial``)."""
    from prescreen.packing.app import load_model

    return Screener(conf.screening, load_model(conf), entry=EntrySettings.from_config(conf.entry))


def _init(make_screener: Callable[[], Screener]) -> None:
    _worker["screener"] = make_screener()
    # The screener's tables (nomenclature, lexicon: ~37,000 objects) live as long as the worker:
    # out of the collector's sight, its full collections no longer walk them (~4 µs a parcel).
    gc.freeze()


def _worker_screener() -> Screener:
    return _worker["screener"]


def _verdict_texts(chunk: list[ParcelFacts], entry: EntrySettings) -> list[dict[str, str]]:
    """In a worker: screen each parcel and serialise its verdict's members (no seq needed)."""
    screener = _worker_screener()
    return [member_texts(verdict_members(f, screener.screen(f), entry=entry)) for f in chunk]


def _screen_chunk(numbered: list[tuple[int, str]]) -> list[dict[str, Any]]:
    """In a worker: ``prescreen screen``'s results for some numbered lines (blank ones skipped)."""
    results = []
    for number, line in numbered:
        for result in screen_lines_here([line], _worker_screener()):
            result["line"] = number
            results.append(result)
    return results


def _chunks(items: Iterable[T], size: int) -> Iterator[list[T]]:
    iterator = iter(items)
    while chunk := list(islice(iterator, size)):
        yield chunk


def _fork_safe() -> bool:
    """Whether workers may be forked: no thread but this one runs, or only WAL checkpointers
    (:class:`prescreen.core.db.Checkpointer`, one per open outbox: a replay's own outbox has one).
    A checkpointer holds nothing a worker uses (it runs SQLite checkpoints on its own connection,
    and workers never use SQLite), so a copy of it held mid-checkpoint cannot block a worker."""
    others = [t for t in threading.enumerate() if t is not threading.current_thread()]
    return os.name == "posix" and all(t.name.startswith(CHECKPOINT_THREAD_PREFIX) for t in others)


def _pool(workers: int, make_screener: Callable[[], Screener]) -> ProcessPoolExecutor:
    """Forked workers when :func:`_fork_safe` (no interpreter start, modules and the screening
    tables already loaded); spawned ones otherwise (forking a threaded process can copy a held
    lock): each then starts an interpreter and loads the tables, ~0.6 s of CPU before a parcel."""
    method = "fork" if _fork_safe() else "spawn"
    context = multiprocessing.get_context(method)
    return ProcessPoolExecutor(workers, mp_context=context, initializer=_init, initargs=(make_screener,))


def _in_order(
    pool: ProcessPoolExecutor, task: Callable[[T], R], chunks: Iterable[T], window: int
) -> Iterator[R]:
    """Each chunk's result in input order, with at most ``window`` chunks submitted ahead."""
    pending: deque[Future[R]] = deque()
    for chunk in chunks:
        pending.append(pool.submit(task, chunk))
        if len(pending) >= window:
            yield pending.popleft().result()
    while pending:
        yield pending.popleft().result()


def replay(
    outbox: Outbox,
    station: StationIdentity,
    parcels: Iterable[ParcelFacts],
    make_screener: Callable[[], Screener],
    *,
    workers: int = 1,
    group: int = 100,
    entry: EntrySettings = NO_SETTINGS,
) -> int:
    """Screen ``parcels`` and commit one verdict each, in order, in group commits of ``group``.

    ``make_screener`` must pickle (a module-level function or a ``functools.partial`` of one) when
    ``workers`` > 1: each worker calls it once. Returns the number of verdicts committed.
    Raises what screening or the outbox raised; the groups before it stay committed.
    """
    if workers <= 1:
        screener = make_screener()
        committed = 0
        for chunk in _chunks(parcels, group):
            builds: list[Callable[[int], Record]] = []
            for each in chunk:
                screening = screener.screen(each)
                builds.append(
                    partial(verdict_record, station=station, facts=each, screening=screening, entry=entry)
                )
            committed += len(outbox.append_many(builds))
        return committed
    with _pool(workers, make_screener) as pool:
        texts = _in_order(pool, _VerdictTask(entry), _chunks(parcels, CHUNK), 2 * workers)
        return _commit_in_order(outbox, station, texts, group)


def _commit_in_order(
    outbox: Outbox, station: StationIdentity, results: Iterable[list[dict[str, str]]], group: int
) -> int:
    """The one writer: each verdict's envelope with the outbox's next seq, signed, committed in order."""

    def build(seq: int) -> Record:
        return envelope("verdict", seq, station)

    # The envelope's members but the seq, the record id and the time are the same in every record.
    same = {k: v for k, v in envelope("verdict", 0, station).items() if k not in _OWN}
    same_texts = member_texts(same)
    committed = 0
    for texts in results:
        for start in range(0, len(texts), group):
            part = [{**same_texts, **each} for each in texts[start : start + group]]
            committed += len(outbox.append_many([build] * len(part), texts=part))
    return committed


class _VerdictTask:
    """A picklable task: :func:`_verdict_texts` with the replay's entry settings."""

    def __init__(self, entry: EntrySettings) -> None:
        self.entry = entry

    def __call__(self, chunk: list[ParcelFacts]) -> list[dict[str, str]]:
        return _verdict_texts(chunk, self.entry)


def screen_lines(
    lines: Iterable[str], make_screener: Callable[[], Screener], *, workers: int = 1
) -> Iterator[dict[str, Any]]:
    """:func:`prescreen.packing.batch.screen_lines` across ``workers`` processes, results in input order."""
    iterator = iter(lines)
    head = list(islice(iterator, CHUNK))
    if workers <= 1 or len(head) < CHUNK:  # one chunk or less: not worth starting a pool
        yield from screen_lines_here(chain(head, iterator), make_screener())
        return
    numbered = enumerate(chain(head, iterator), start=1)
    with _pool(workers, make_screener) as pool:
        for results in _in_order(pool, _screen_chunk, _chunks(numbered, CHUNK), 2 * workers):
            yield from results
