"""Live load of every replica: in-flight counts, and engine queue depth / KV usage scraped
from each self-hosted endpoint's ``/metrics``.

Why it exists: balancing and overload handling need to know how busy each engine is, and
only the engine knows its queue. :class:`LoadBook` owns one
:class:`~tierwise.router.balance.ReplicaLoad` per endpoint URL and keeps it across table
swaps (so in-flight counts and health survive a reload). :class:`Scraper` — a background
task owned by the app's lifespan — reads ``/metrics`` of each self-hosted endpoint every
``interval_s`` with a short timeout, using the real metric names:

* queue depth: each engine profile's ``waiting_requests`` (vLLM
  ``vllm:num_requests_waiting``, SGLang ``sglang:num_queue_reqs``), summed over label
  sets (e.g. data-parallel ranks);
* KV-cache usage (0-1): each profile's ``kv_cache_usage`` and its former names (vLLM
  ``vllm:kv_cache_usage_perc``, ``vllm:gpu_cache_usage_perc`` before v0.10; SGLang
  ``sglang:token_usage``), the largest over label sets.

The names come from :mod:`tierwise.engines` (no copies here).

An endpoint is marked unhealthy after ``failures_to_down`` consecutive failed scrapes
(connection errors, timeouts, 5xx) or at once when a request cannot connect to it, and
healthy again on the next successful scrape. External APIs are not scraped and never
marked down by the scraper.

The text is read with the autoscaler's reader (:mod:`tierwise.autoscaler.exposition`),
which skips every line not asked for with one prefix test (prometheus_client's parser
costs milliseconds for a full engine exposition; this one about 90 µs for 480 lines).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Iterable
from dataclasses import dataclass

from tierwise.autoscaler import exposition
from tierwise.engines import all_engines
from tierwise.router.balance import ReplicaLoad
from tierwise.router.http.client import UpstreamError, UpstreamPool
from tierwise.router.table import Endpoint, RoutingTable
from tierwise.router.tasks import background
from tierwise.router.upstream import make_origin

log = logging.getLogger(__name__)

QUEUE_METRICS = frozenset(p.metrics.waiting_requests for p in all_engines())
KV_METRICS = frozenset(
    name
    for p in all_engines()
    for name in (p.metrics.kv_cache_usage, *p.metrics.kv_cache_usage_former)
)
_WANTED = (*QUEUE_METRICS, *KV_METRICS)


@dataclass(frozen=True, slots=True)
class EngineLoad:
    queue_depth: float | None
    kv_cache_usage: float | None


def parse_engine_load(text: str) -> EngineLoad:
    """Queue depth (sum) and KV-cache usage (max) from a Prometheus text exposition.

    NaN samples mean "no data" and are skipped; a malformed line of a wanted metric makes
    the whole load unknown (never zero)."""
    try:
        found = exposition.parse(text, _WANTED)
    except exposition.ExpositionError:
        return EngineLoad(None, None)
    queue: float | None = None
    kv: float | None = None
    for name, samples in found.items():
        values = [s.value for s in samples if s.value == s.value]
        if not values:
            continue
        if name in QUEUE_METRICS:
            queue = sum(values) if queue is None else queue + sum(values)
        else:
            kv = max(values) if kv is None else max(kv, *values)
    return EngineLoad(queue, kv)


class LoadBook:
    """One :class:`ReplicaLoad` per endpoint URL, kept across table swaps."""

    def __init__(self, *, failures_to_down: int = 3) -> None:
        self._loads: dict[str, ReplicaLoad] = {}
        self._failures: dict[str, int] = {}
        self._external: set[str] = set()
        self.failures_to_down = failures_to_down

    def sync(self, table: RoutingTable) -> dict[str, tuple[ReplicaLoad, ...]]:
        """Loads per tier for ``table``; URLs no longer in it are forgotten."""
        loads: dict[str, ReplicaLoad] = {}
        by_tier: dict[str, tuple[ReplicaLoad, ...]] = {}
        for tier in table.tiers:
            by_tier[tier.name] = tuple(self._load(ep, loads) for ep in tier.endpoints)
        self._loads = loads
        self._external = {url for url, load in loads.items() if load.endpoint.external}
        self._failures = {u: n for u, n in self._failures.items() if u in loads}
        return by_tier

    def _load(self, endpoint: Endpoint, seen: dict[str, ReplicaLoad]) -> ReplicaLoad:
        url = endpoint.url
        if url in seen:
            return seen[url]
        load = self._loads.get(url)
        if load is None:
            load = ReplicaLoad(endpoint)
        else:
            load.endpoint = endpoint
        seen[url] = load
        return load

    def get(self, url: str) -> ReplicaLoad | None:
        return self._loads.get(url)

    def scrape_targets(self) -> list[ReplicaLoad]:
        return [load for url, load in self._loads.items() if url not in self._external]

    def report_connect_failure(self, url: str) -> None:
        """A request could not connect: take the replica out until a scrape succeeds."""
        load = self._loads.get(url)
        if load is not None and url not in self._external:
            load.healthy = False
            self._failures[url] = max(self._failures.get(url, 0), self.failures_to_down)

    def apply(self, url: str, result: EngineLoad | None) -> None:
        """Record a scrape: ``None`` is a failure."""
        load = self._loads.get(url)
        if load is None:
            return
        if result is None:
            failures = self._failures.get(url, 0) + 1
            self._failures[url] = failures
            if failures >= self.failures_to_down and load.healthy:
                log.warning("replica %s marked unhealthy after %d failed scrapes", url, failures)
                load.healthy = False
            return
        if not load.healthy:
            log.info("replica %s healthy again", url)
        self._failures[url] = 0
        load.healthy = True
        load.queue_depth = result.queue_depth
        load.kv_cache_usage = result.kv_cache_usage


class Scraper:
    """Background task: scrape every self-hosted endpoint's ``/metrics`` periodically."""

    def __init__(
        self,
        book: LoadBook,
        pool: UpstreamPool,
        *,
        interval_s: float = 1.0,
        timeout_s: float = 0.5,
    ) -> None:
        self._book = book
        self._pool = pool
        self.interval_s = interval_s
        self.timeout_s = timeout_s

    async def run(self) -> None:
        while True:
            await self.scrape_once(self._book.scrape_targets())
            await asyncio.sleep(self.interval_s)

    async def scrape_once(self, loads: Iterable[ReplicaLoad]) -> None:
        loads = list(loads)
        results = await asyncio.gather(*(self._scrape(load.endpoint) for load in loads))
        for load, result in zip(loads, results, strict=True):
            self._book.apply(load.endpoint.url, result)

    async def _scrape(self, endpoint: Endpoint) -> EngineLoad | None:
        origin = make_origin(endpoint.url)
        request = f"GET /metrics HTTP/1.1\r\nhost: {origin.host_header}\r\n\r\n".encode()
        conn = None
        try:
            async with asyncio.timeout(self.timeout_s):
                conn = await self._pool.acquire(origin)
                conn.send(request)
                status = await conn.read_head()
                body = await conn.read_body()
        except (UpstreamError, TimeoutError) as exc:
            if conn is not None:
                conn.close()
            log.debug("scrape of %s failed: %s", endpoint.url, exc)
            return None
        except BaseException:
            if conn is not None:
                conn.close()
            raise
        self._pool.release(conn)
        if status >= 500:
            return None
        if status != 200:
            return EngineLoad(None, None)  # reachable but no metrics: healthy, load unknown
        return parse_engine_load(body.decode("utf-8", "replace"))


def scraping(scraper: Scraper) -> contextlib.AbstractAsyncContextManager[None]:
    """Run ``scraper`` for the duration of the block."""
    return background(scraper.run())
