"""Coalesced, retried refreshes of objects, keyed by (namespace, name).

Why it exists: a child's rollout emits dozens of events, and a ModelDeployment's status
changes wake every policy that names it; each reconcile reads the API several times. A
:class:`Refresher` turns a burst of triggers for one object into one refresh after a short
quiet period, and retries a refresh that failed (no kopf retry exists on this path). Both
reconcilers use it, so the behaviour is the same for ModelDeployments and RoutingPolicies.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

import kopf

log = logging.getLogger(__name__)
Key = tuple[str, str]
RETRY_S = 5.0


class Refresher:
    """``schedule(key)`` runs ``refresh(key)`` once after ``debounce_s`` of quiet."""

    def __init__(
        self,
        refresh: Callable[[Key], Awaitable[None]],
        *,
        debounce_s: float = 0.2,
        retry_s: float = RETRY_S,
        name: str = "refresh",
    ) -> None:
        self._refresh = refresh
        self.debounce_s = debounce_s
        self.retry_s = retry_s
        self._name = name
        self._pending: dict[Key, asyncio.Task[None]] = {}

    def schedule(self, key: Key) -> None:
        if key not in self._pending:
            self._pending[key] = asyncio.create_task(self._run(key), name=f"{self._name}-{key}")

    @property
    def pending(self) -> int:
        return len(self._pending)

    async def close(self) -> None:
        tasks = list(self._pending.values())
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        self._pending.clear()

    async def _run(self, key: Key) -> None:
        try:
            await asyncio.sleep(self.debounce_s)
        finally:
            self._pending.pop(key, None)
        try:
            await self._refresh(key)
        except kopf.PermanentError:  # an invalid spec: its status says so, retrying won't help
            return
        except Exception as exc:
            log.warning("%s of %s/%s failed, retrying: %s", self._name, key[0], key[1], exc)
            await asyncio.sleep(self.retry_s)
            self.schedule(key)
