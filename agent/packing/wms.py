"""Order data from the site's WMS over HTTP, within a time budget the operator never exceeds.

Why a budget and a background fetch: a WMS that hangs must not freeze the packing line. Each
lookup answers from the local cache when it can; otherwise it starts (or joins) a fetch and waits
at most ``budget_ms``. Past that the parcel is screened without order data (REVIEW,
``ORDER_UNAVAILABLE``) while the fetch goes on with its own timeouts and retries; when the order
does arrive it is cached and handed to the station through :meth:`late_orders`, which re-screens
the parcel and commits a completed record that supersedes the first one.

A prefetch endpoint (``prefetch_url``), when the WMS has one, is polled in the background so the
cache already holds the orders of parcels about to be packed.
"""

from __future__ import annotations

import functools
import json
import logging
import queue
import random
import threading
import time
from concurrent.futures import Future, ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx
import sqlite_utils
from prescreen.core.db import connect_durable
from prescreen.core.errors import ConfigError, OrderError
from prescreen.ops.config import OrdersConfig
from prescreen.packing.orders import (
    ORDER_MALFORMED,
    ORDER_MISMATCH,
    ORDER_NOT_FOUND,
    ORDER_UNAVAILABLE,
    Order,
    order_key,
)

log = logging.getLogger("prescreen.wms")


class OrderCache:
    """Orders fetched from the WMS, kept in SQLite so a restart does not empty them."""

    def __init__(self, path: str | Path, ttl_s: float) -> None:
        # A lost cache costs a refetch, not a record: no fsync per write.
        self.db = sqlite_utils.Database(connect_durable(path, timeout_s=5, synchronous="NORMAL"))
        self.db.table("orders").create(
            {"key": str, "body": str, "fetched_at": float}, pk="key", if_not_exists=True
        )
        self.ttl_s = ttl_s
        self._lock = threading.Lock()

    def get(self, key: str) -> Order | None:
        """The cached order for ``key`` if it is younger than the TTL."""
        with self._lock:
            row = self.db.conn.execute(
                "SELECT body FROM orders WHERE key = ? AND fetched_at > ?", (key, time.time() - self.ttl_s)
            ).fetchone()
        return None if row is None else dict(json.loads(row[0]))

    def put_many(self, orders: dict[str, Order]) -> None:
        """Store (or refresh) orders in one transaction."""
        now = time.time()
        rows = [{"key": k, "body": json.dumps(v), "fetched_at": now} for k, v in orders.items()]
        with self._lock:
            self.db.table("orders").upsert_all(rows, pk="key")

    def prune(self) -> int:
        """Drop orders older than the TTL; returns how many."""
        with self._lock:
            cursor = self.db.conn.execute(
                "DELETE FROM orders WHERE fetched_at <= ?", (time.time() - self.ttl_s,)
            )
        return cursor.rowcount

    def close(self) -> None:
        """Close the cache file."""
        self.db.conn.close()


class WmsOrderSource:
    """Looks orders up in the WMS by tracking number, with cache, prefetch, retries and a budget."""

    def __init__(
        self,
        config: OrdersConfig,
        cache_path: str | Path,
        *,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        if "{tracking}" not in config.url:
            raise ConfigError(f"orders.url must contain '{{tracking}}', got {config.url!r}")
        self.config = config
        self.cache = OrderCache(cache_path, config.cache_ttl_s)
        headers = {config.auth_header: config.auth_token} if config.auth_token else {}
        self._client = httpx.Client(
            headers={"Accept": "application/json", **headers},
            timeout=httpx.Timeout(config.read_timeout_ms / 1000, connect=config.connect_timeout_ms / 1000),
            transport=transport,
        )
        self._pool = ThreadPoolExecutor(max_workers=4, thread_name_prefix="wms")
        self._lock = threading.Lock()
        self._inflight: dict[str, Future[Order]] = {}
        self._waiting: set[str] = set()
        self._late: queue.SimpleQueue[tuple[str, Order]] = queue.SimpleQueue()
        self._stop = threading.Event()
        self._prefetcher: threading.Thread | None = None
        if config.prefetch_url:
            self._prefetcher = threading.Thread(target=self._prefetch_loop, name="wms-prefetch", daemon=True)
            self._prefetcher.start()

    # --- the station's side ------------------------------------------------------------------

    def lookup(self, key: str) -> Order:
        """The order for ``key`` from the cache, or from the WMS within the budget."""
        cached = self.cache.get(key)
        if cached is not None:
            return cached
        future = self._fetch_async(key)
        try:
            return future.result(timeout=self.config.budget_ms / 1000)
        except FutureTimeout:
            with self._lock:
                self._waiting.add(key)
            if future.done():  # finished between the timeout and the line above
                with self._lock:
                    self._waiting.discard(key)
                return future.result()
            raise OrderError(
                f"WMS gave no order for {key} within {self.config.budget_ms} ms; "
                "the record will be completed when it arrives",
                reason=ORDER_UNAVAILABLE,
            ) from None

    def late_orders(self) -> list[tuple[str, Order]]:
        """Orders that arrived after their lookup's budget ran out, each returned once."""
        arrived: list[tuple[str, Order]] = []
        while True:
            try:
                arrived.append(self._late.get_nowait())
            except queue.Empty:
                return arrived

    def close(self) -> None:
        """Stop prefetching, abandon running fetches and close the HTTP client and cache."""
        self._stop.set()
        if self._prefetcher is not None:
            self._prefetcher.join(timeout=5)
        self._pool.shutdown(wait=False, cancel_futures=True)
        self._client.close()
        self.cache.close()

    # --- fetching -----------------------------------------------------------------------------

    def _fetch_async(self, key: str) -> Future[Order]:
        with self._lock:
            future = self._inflight.get(key)
            started = future is None
            if future is None:
                future = self._pool.submit(self._fetch, key)
                self._inflight[key] = future
        # Outside the lock: a fetch that is already done (a refused connection fails at once) runs
        # its callback right here, and the callback takes the lock.
        if started:
            future.add_done_callback(functools.partial(self._fetched, key))
        return future

    def _fetched(self, key: str, future: Future[Order]) -> None:
        with self._lock:
            self._inflight.pop(key, None)
            waiting = key in self._waiting
            self._waiting.discard(key)
        if future.cancelled():
            return
        error = future.exception()
        if error is not None:
            log.warning("order fetch failed", extra={"tracking": key, "reason": str(error)})
            return
        if waiting:
            log.info("late order arrived", extra={"tracking": key})
            self._late.put((key, future.result()))

    def _fetch(self, key: str) -> Order:
        """GET one order, retrying timeouts, connection errors and 5xx with jittered backoff."""
        url = self.config.url.format(tracking=quote(key, safe=""))
        attempts = self.config.retries + 1
        problem = ""
        for attempt in range(attempts):
            if attempt:
                delay = self.config.backoff_ms / 1000 * 2 ** (attempt - 1)
                if self._stop.wait(delay * random.uniform(0.5, 1.0)):
                    break
            try:
                response = self._client.get(url)
            except httpx.TimeoutException:
                problem = f"WMS timed out (read timeout {self.config.read_timeout_ms} ms)"
                continue
            except httpx.TransportError as exc:
                problem = f"WMS unreachable: {exc}"
                continue
            if response.status_code >= 500 or response.status_code == 429:
                problem = f"WMS returned HTTP {response.status_code}"
                continue
            return self._parse(key, response)
        raise OrderError(f"{problem} for {key} after {attempts} attempt(s)", reason=ORDER_UNAVAILABLE)

    def _parse(self, key: str, response: httpx.Response) -> Order:
        if response.status_code == 404:
            raise OrderError(f"WMS has no order for {key} (HTTP 404)", reason=ORDER_NOT_FOUND)
        if response.status_code in (401, 403):
            raise OrderError(
                f"WMS refused the request (HTTP {response.status_code}): check orders.auth_token",
                reason=ORDER_UNAVAILABLE,
            )
        if response.status_code != 200:
            raise OrderError(f"WMS returned HTTP {response.status_code} for {key}", reason=ORDER_UNAVAILABLE)
        try:
            order: Any = response.json()
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise OrderError(f"WMS sent malformed JSON for {key}: {exc}", reason=ORDER_MALFORMED) from None
        if not isinstance(order, dict):
            raise OrderError(
                f"WMS sent a JSON {type(order).__name__} for {key}, expected an object",
                reason=ORDER_MALFORMED,
            )
        found = order_key(order)
        if found != key:
            raise OrderError(f"WMS answered {key} with the order for {found}", reason=ORDER_MISMATCH)
        self.cache.put_many({key: order})
        return order

    # --- prefetch -----------------------------------------------------------------------------

    def _prefetch_loop(self) -> None:
        while not self._stop.is_set():
            try:
                self.prefetch()
            except OrderError as exc:
                log.warning("order prefetch failed", extra={"reason": str(exc)})
            self._stop.wait(self.config.prefetch_every_s)

    def prefetch(self) -> int:
        """Fetch the WMS's list of upcoming orders into the cache; returns how many were stored.

        The endpoint returns a JSON array of orders, or an object with an ``orders`` array.
        """
        try:
            response = self._client.get(self.config.prefetch_url)
            response.raise_for_status()
            body: Any = response.json()
        except (httpx.HTTPError, json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise OrderError(f"WMS prefetch failed: {exc}", reason=ORDER_UNAVAILABLE) from None
        listed = body.get("orders") if isinstance(body, dict) else body
        if not isinstance(listed, list):
            raise OrderError("WMS prefetch sent no list of orders", reason=ORDER_MALFORMED)
        orders = {k: o for o in listed if isinstance(o, dict) and (k := order_key(o))}
        self.cache.put_many(orders)
        pruned = self.cache.prune()
        log.info("orders prefetched", extra={"orders": len(orders), "pruned": pruned})
        return len(orders)
