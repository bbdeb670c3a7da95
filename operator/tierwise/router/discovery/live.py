"""A policy document source plus a replica source -> routing tables, as they change.

Why it exists: whichever sources a router runs with, it needs one object that (1) builds the
current table through the one table path
(:func:`~tierwise.router.table.table_from_config`), (2) says cheaply whether anything
changed (``stamp``), (3) wakes the router's table watcher when a watch delivered a change
(``changed``: the watcher then waits a few milliseconds to coalesce a burst of events into
one table, and installs it), and (4) at start-up waits for a first document and a first
list of replicas, so the first table a router serves is not needlessly empty.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator
from typing import Literal

from tierwise.router.discovery.sources import ConfigError, ConfigSource, EndpointSource
from tierwise.router.discovery.stats import DiscoveryStats
from tierwise.router.server import TableSource
from tierwise.router.table import FROM_DOCUMENT, FromDocument, RoutingTable, table_from_config

log = logging.getLogger(__name__)


class LiveTable:
    """Tables from ``config`` and ``endpoints`` (see the module docstring)."""

    def __init__(
        self,
        config: ConfigSource,
        endpoints: EndpointSource,
        *,
        stats: DiscoveryStats,
        secrets_dir: str | Literal[FromDocument.SECRETS_DIR] | None = FROM_DOCUMENT,
    ) -> None:
        self.config = config
        self.endpoints = endpoints
        self.stats = stats
        self.secrets_dir = secrets_dir
        self.changed = asyncio.Event()

    def load(self) -> RoutingTable:
        """The table for the current document and replicas (:class:`ConfigError` if no
        document is usable yet)."""
        config = self.config.current()
        self.stats.config_source = self.config.source
        replicas = self.endpoints.replicas(config.backends)
        return table_from_config(config, replicas, secrets_dir=self.secrets_dir)

    def stamp(self) -> object:
        return (self.config.stamp(), self.endpoints.stamp())

    def table_source(self) -> TableSource:
        """What the router's table watcher polls (and is woken by)."""
        return TableSource(self.load, self.stamp, changed=self.changed, blocking=False)

    @contextlib.asynccontextmanager
    async def running(self) -> AsyncIterator[None]:
        """Run the sources' watches for the duration of the block."""
        async with (
            self.config.running(self.changed.set),
            self.endpoints.running(self.changed.set),
        ):
            yield

    async def first_table(self, *, timeout_s: float, endpoints_wait_s: float) -> RoutingTable:
        """The first table: waits up to ``timeout_s`` for a document (then raises
        :class:`ConfigError`), and up to ``endpoints_wait_s`` more for the first replicas."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout_s
        noted = time.monotonic()
        while True:
            try:
                self.config.current()
                break
            except ConfigError:
                if loop.time() >= deadline:
                    raise
                if time.monotonic() - noted > 5:
                    log.warning("waiting for the policy document")
                    noted = time.monotonic()
            await self._changed_or(min(0.5, max(deadline - loop.time(), 0.0)))
        settle = loop.time() + endpoints_wait_s
        while not self.endpoints.synced and loop.time() < settle:
            await self._changed_or(min(0.5, settle - loop.time()))
        return self.load()

    async def _changed_or(self, seconds: float) -> None:
        self.changed.clear()
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(seconds):
                await self.changed.wait()
