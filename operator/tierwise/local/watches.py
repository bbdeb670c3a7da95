"""The change log behind watches: monotonic resource versions, replay, bookmarks.

kmock re-sends every object as ADDED on each watch, ignores ``resourceVersion``
and can lose events that land between its listing and its subscription. Here,
every change gets the next cluster-wide resource version and goes into one
bounded, ordered log. A watch takes its snapshot and its position in the log in
one synchronous step (no ``await`` in between), then replays the log from that
position, so nothing is lost or duplicated; a resume from a version older than
the retained log gets ``410 Gone``, exactly what clients expect from etcd
compaction. Selectors are applied per event, and an object that stops (starts)
matching a selector is reported as DELETED (ADDED), as the API server does.

Cost: the log keeps the store's own (never mutated) object dicts, and each event is
encoded to JSON once and the bytes shared by every watcher that receives it; a watcher
skips changes of other resources by comparing plain tuples.
"""

from __future__ import annotations

import asyncio
import bisect
import json
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import kmock

Predicate = Callable[[Mapping[str, Any]], bool]
INITIAL_EVENTS_END = "k8s.io/initial-events-end"


@dataclass(frozen=True)
class Change:
    """One recorded change: the object after it and (for MODIFIED) before it."""

    version: int
    resource: kmock.resource
    type: str
    object: Mapping[str, Any]
    old: Mapping[str, Any] | None
    key: tuple[str, str, str] = ("", "", "")
    _encoded: dict[str, bytes] = field(default_factory=dict, compare=False, repr=False)

    def encoded(self, type_: str) -> bytes:
        """The watch event line for this change as ``type_`` (encoded once, then shared)."""
        line = self._encoded.get(type_)
        if line is None:
            line = self._encoded[type_] = _encode({"type": type_, "object": self.object})
        return line


def _encode(event: Mapping[str, Any]) -> bytes:
    return json.dumps(event).encode() + b"\n"


def _key(resource: kmock.resource) -> tuple[str, str, str]:
    return (resource.group or "", resource.version or "", resource.plural or "")


@dataclass(frozen=True)
class WatchRequest:
    """What one watch asks for (already parsed from the query string)."""

    resource: kmock.resource
    namespace: str | None
    predicate: Predicate
    since: int | None  # None: start with ADDED events for the current state
    send_initial_bookmark: bool = False
    bookmarks: bool = False
    timeout: float | None = None
    api_version: str = "v1"
    kind: str = ""


class EventLog:
    """A bounded, ordered log of changes with async waiting for new ones."""

    def __init__(self, *, limit: int = 20_000, bookmark_interval: float = 1.0) -> None:
        self.limit = limit
        self.bookmark_interval = bookmark_interval
        self._version = 0
        self._floor = 0  # resuming from a version below this is impossible (410 Gone)
        self._changes: list[Change] = []
        self._versions: list[int] = []
        self._wakeup: asyncio.Event | None = None
        self._closed = False

    @property
    def resource_version(self) -> int:
        return self._version

    def next_version(self) -> int:
        self._version += 1
        return self._version

    def append(
        self,
        resource: kmock.resource,
        type_: str,
        obj: Mapping[str, Any],
        old: Mapping[str, Any] | None,
    ) -> None:
        """Record a change; ``obj`` and ``old`` must never be mutated afterwards."""
        version = int(obj["metadata"]["resourceVersion"])
        self._changes.append(Change(version, resource, type_, obj, old, _key(resource)))
        self._versions.append(version)
        if len(self._changes) > self.limit:
            cut = len(self._changes) // 2
            self._floor = self._versions[cut - 1]
            del self._changes[:cut], self._versions[:cut]
        self._notify()

    def _notify(self) -> None:
        if self._wakeup is not None:
            self._wakeup.set()
            self._wakeup = None

    def close(self) -> None:
        """End all watches (used at shutdown so that HTTP streams finish cleanly)."""
        self._closed = True
        self._notify()

    def changes_after(self, version: int) -> list[Change]:
        return self._changes[bisect.bisect_right(self._versions, version) :]

    def is_too_old(self, version: int) -> bool:
        return version < self._floor

    async def wait(self, seconds: float | None) -> bool:
        """Wait for the next change; False when ``seconds`` pass without one."""
        if self._closed:
            return False
        if self._wakeup is None:
            self._wakeup = asyncio.Event()
        try:
            await asyncio.wait_for(self._wakeup.wait(), seconds)
        except TimeoutError:
            return False
        return True

    @property
    def closed(self) -> bool:
        return self._closed


def translate(
    change: Change, request: WatchRequest, key: tuple[str, str, str] | None = None
) -> bytes | None:
    """The event line one watcher sees for a change, or None if it is not for this watcher."""
    if change.key != (key or _key(request.resource)):
        return None
    namespace = change.object.get("metadata", {}).get("namespace")
    if request.namespace is not None and namespace != request.namespace:
        return None
    now = request.predicate(change.object)
    before = change.old is not None and request.predicate(change.old)
    if change.type == "MODIFIED" and not (now and before):
        kind = "ADDED" if now else "DELETED" if before else None
    else:
        kind = change.type if now else None
    return None if kind is None else change.encoded(kind)


def _bookmark(request: WatchRequest, version: int, *, initial_end: bool) -> bytes:
    metadata: dict[str, Any] = {"resourceVersion": str(version)}
    if initial_end:
        metadata["annotations"] = {INITIAL_EVENTS_END: "true"}
    return _encode(
        {
            "type": "BOOKMARK",
            "object": {
                "apiVersion": request.api_version,
                "kind": request.kind,
                "metadata": metadata,
            },
        }
    )


def _expired(version: int) -> bytes:
    return _encode(
        {
            "type": "ERROR",
            "object": {
                "apiVersion": "v1",
                "kind": "Status",
                "metadata": {},
                "status": "Failure",
                "code": 410,
                "reason": "Expired",
                "message": f"too old resource version: {version}",
            },
        }
    )


def open_watch(
    log: EventLog, request: WatchRequest, current: Sequence[Mapping[str, Any]]
) -> AsyncIterator[bytes]:
    """Capture the position (and, for a fresh watch, the current state) right now.

    Must be called synchronously with the listing of ``current`` objects (no
    ``await`` in between), so that no change can fall between the two.
    """
    if request.since is None:
        return _stream(log, request, log.resource_version, list(current))
    return _stream(log, request, request.since, [])


async def _stream(
    log: EventLog, request: WatchRequest, position: int, initial: list[Mapping[str, Any]]
) -> AsyncIterator[bytes]:
    if request.since is not None and log.is_too_old(request.since):
        yield _expired(request.since)
        return
    for obj in initial:
        yield _encode({"type": "ADDED", "object": obj})
    if request.send_initial_bookmark:
        yield _bookmark(request, position, initial_end=True)
    loop = asyncio.get_running_loop()
    deadline = None if request.timeout is None else loop.time() + request.timeout
    key = _key(request.resource)
    while not log.closed:
        changes = log.changes_after(position)
        for change in changes:
            position = change.version
            event = translate(change, request, key)
            if event is not None:
                yield event
        if changes:
            continue
        remaining = None if deadline is None else deadline - loop.time()
        if remaining is not None and remaining <= 0:
            return
        wait = log.bookmark_interval if request.bookmarks else remaining
        if remaining is not None and wait is not None:
            wait = min(wait, remaining)
        if not await log.wait(wait) and request.bookmarks and not log.changes_after(position):
            position = max(position, log.resource_version)
            yield _bookmark(request, position, initial_end=False)
