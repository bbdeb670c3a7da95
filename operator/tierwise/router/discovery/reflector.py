"""List then watch one collection of a namespace and keep its objects: a small reflector.

Why it exists: the router's view of EndpointSlices and of its ConfigMap must follow the API
within milliseconds and survive everything a long-lived watch meets: the server ending the
stream (``timeoutSeconds``), a resource version that is too old (``410 Gone``, as an HTTP
status or as an ``ERROR`` event: relist at once), dropped connections, an API server that
is down, a token that expired (401, retried after the token file changed), RBAC that does
not allow it (403). The loop, the way client-go's reflector does it:

1. LIST the collection (selectors applied), replace the whole state, remember the list's
   ``resourceVersion``; the state counts as synced from then on.
2. WATCH from that version with ``allowWatchBookmarks`` (bookmarks advance the version
   without changes) and a server-side ``timeoutSeconds`` [``watch_timeout_s`` 240-300 s,
   jittered so that router replicas do not reconnect in step]; apply each event.
3. A stream that ends normally is re-watched from the last version, without a list.
4. An error backs off [``Backoff``: 0.25 s doubling to 30 s, full jitter; reset once a
   watch delivers] and then re-watches from the last version, or lists again when there is
   none or the server said 410.

Every change of state (and of health) calls ``on_change``: its owner coalesces and
rebuilds. Nothing here parses the objects beyond their name and resource version.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

import aiohttp

from tierwise.router.discovery.stats import WatchStats
from tierwise.router.kubeapi import ApiError, KubeApi

log = logging.getLogger(__name__)

_REASONS = {401: "unauthorized", 403: "forbidden", 404: "not_found", 410: "expired"}


class ExpiredError(Exception):
    """The watch's resource version is gone from the server's history: relist."""


@dataclass(frozen=True, slots=True)
class Backoff:
    """Exponential backoff with full jitter (see the module docstring)."""

    initial_s: float = 0.25
    max_s: float = 30.0
    factor: float = 2.0

    def delays(self) -> Iterator[float]:
        ceiling = self.initial_s
        while True:
            yield random.uniform(ceiling / 2, ceiling)
            ceiling = min(ceiling * self.factor, self.max_s)


@dataclass(frozen=True, slots=True)
class WatchTiming:
    backoff: Backoff = field(default_factory=Backoff)
    watch_timeout_s: float = 300.0
    """``timeoutSeconds`` asked of the server (jittered down by up to 20 %)."""
    read_silence_s: float = 330.0
    """Silence after which a watch connection counts as dead."""


class Reflector:
    """One list-watch loop; ``objects`` maps name to the object's latest version."""

    def __init__(
        self,
        api: KubeApi,
        path: str,
        *,
        params: Mapping[str, str],
        stats: WatchStats,
        on_change: Callable[[], None],
        timing: WatchTiming | None = None,
    ) -> None:
        self.api = api
        self.path = path
        self.params = dict(params)
        self.stats = stats
        self.on_change = on_change
        self.timing = timing or WatchTiming()
        self.objects: dict[str, dict[str, Any]] = {}
        self.synced = False
        """True once a list succeeded (the state reflects the API at some point)."""
        self.resource_version = ""
        self._failing = False

    @property
    def up(self) -> bool:
        return self.stats.up

    async def run(self) -> None:
        """List and watch until cancelled."""
        delays = self.timing.backoff.delays()
        while True:
            started = time.monotonic()
            delivered = False
            try:
                if not self.resource_version:
                    await self._list()
                delivered = await self._watch()
                if delivered or time.monotonic() - started >= 1.0:
                    delays = self.timing.backoff.delays()
                    continue  # a normal end of the stream: watch again from where it was
            except ExpiredError:
                self._expired()
                continue
            except ApiError as exc:
                if exc.status == 410:
                    self._expired()
                    continue
                self._failed(_REASONS.get(exc.status, "http_error"), exc)
            except (aiohttp.ClientError, OSError, TimeoutError) as exc:
                self._failed("connection", exc)
            except ValueError as exc:  # a body that is not what the API sends
                self._failed("bad_response", exc)
            except Exception as exc:  # a bug must not end discovery silently: log, retry
                log.exception("watch of %s broke", self.path)
                self._failed("internal", exc)
            await asyncio.sleep(next(delays))

    def _expired(self) -> None:
        """410 Gone: the server no longer has our version; list again at once."""
        self.stats.errors["expired"] = self.stats.errors.get("expired", 0) + 1
        self.resource_version = ""
        log.info("watch of %s expired (410 Gone): listing again", self.path)

    def _failed(self, reason: str, exc: BaseException) -> None:
        was_up = self.stats.up
        self.stats.count_error(reason)
        level = logging.DEBUG if self._failing else logging.WARNING
        log.log(level, "watch of %s failed (%s): %s", self.path, reason, exc or type(exc).__name__)
        self._failing = True
        if was_up:
            self.on_change()

    def _healthy(self) -> None:
        if self._failing:
            log.info("watch of %s is back", self.path)
            self._failing = False
        if not self.stats.up:
            self.stats.up = True
            self.on_change()

    async def _list(self) -> None:
        doc = await self.api.get(self.path, self.params)
        items = doc.get("items") or []
        objects: dict[str, dict[str, Any]] = {}
        for item in items:
            name = _name(item)
            if name:
                objects[name] = item
        self.objects = objects
        self.resource_version = str((doc.get("metadata") or {}).get("resourceVersion") or "")
        self.synced = True
        self.stats.lists += 1
        self.stats.last_sync = time.time()
        self._healthy()
        self.on_change()

    async def _watch(self) -> bool:
        """One watch stream; True when it delivered at least one event."""
        timeout = int(self.timing.watch_timeout_s * random.uniform(0.8, 1.0)) or 1
        params = {
            **self.params,
            "resourceVersion": self.resource_version,
            "allowWatchBookmarks": "true",
            "timeoutSeconds": str(timeout),
        }
        delivered = False
        async with self.api.watch(
            self.path, params, read_timeout_s=self.timing.read_silence_s
        ) as events:
            self._healthy()
            async for event in events:
                delivered = True
                self._apply(event)
        return delivered

    def _apply(self, event: Mapping[str, Any]) -> None:
        kind = str(event.get("type"))
        obj = event["object"]
        if kind == "ERROR":
            code = obj.get("code")
            if code == 410:
                raise ExpiredError(obj.get("message"))
            raise ApiError(int(code or 500), str(obj.get("reason") or ""), str(obj.get("message")))
        self.stats.count_event(kind, time.time())
        version = (obj.get("metadata") or {}).get("resourceVersion")
        if version:
            self.resource_version = str(version)
        if kind == "BOOKMARK":
            return
        name = _name(obj)
        if not name:
            return
        if kind == "DELETED":
            self.objects.pop(name, None)
        else:
            self.objects[name] = obj
        self.on_change()


def _name(obj: Mapping[str, Any]) -> str:
    name = (obj.get("metadata") or {}).get("name")
    return name if isinstance(name, str) else ""
