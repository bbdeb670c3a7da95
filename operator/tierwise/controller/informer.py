"""An informer: one label-selected LIST, then a WATCH kept open, feeding an in-memory copy.

Why it exists: kopf filters ``labels=`` inside the operator, so its Pod and Deployment
watches streamed every Pod and Deployment of the cluster, and each reconcile then LISTed
its children again. An :class:`Informer` asks the API server to filter
(``labelSelector``), per watched namespace or cluster-wide, and keeps what it saw in
memory, so a reconcile reads its children from here and the API server sees only the
watch. It LISTs once at start (``resourceVersion=0``: the server may answer from its watch
cache) and again only when the watch's position is too old (``410 Gone``); a watch the
server ends is resumed from the last resource version (bookmarks keep it fresh).

A kind that is not served (a CRD not installed, e.g. PodMonitor) is empty, and asked for
again every ``absent_recheck_s``.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from tierwise.controller.kube import ApiError, KubeClient
from tierwise.controller.resources import Resource

log = logging.getLogger(__name__)
Key = tuple[str, str]
OnChange = Callable[[str, Mapping[str, Any]], None]
"""Called with the event type (ADDED, MODIFIED, DELETED) and the object (its last state
for DELETED) for every change after the first sync."""
RETRY_DELAYS_S = (1.0, 2.0, 5.0, 10.0, 30.0)
ABSENT_RECHECK_S = 300.0
WATCH_TIMEOUT_S = 300


def _key(obj: Mapping[str, Any]) -> Key:
    meta = obj.get("metadata") or {}
    return str(meta.get("namespace") or ""), str(meta.get("name") or "")


def _version(obj: Mapping[str, Any]) -> int | None:
    text = str((obj.get("metadata") or {}).get("resourceVersion") or "")
    return int(text) if text.isdigit() else None


def newer_or_same(candidate: Mapping[str, Any], held: Mapping[str, Any] | None) -> bool:
    """Whether ``candidate`` may replace ``held``: resource versions are etcd revisions on
    every API server in use (and here), so a smaller one is an older state; when either is
    not a number, the candidate wins."""
    if held is None:
        return True
    mine, theirs = _version(candidate), _version(held)
    return mine is None or theirs is None or mine >= theirs


class Informer:
    """The objects of one resource matching ``selector``, in ``namespaces`` (empty: all)."""

    def __init__(
        self,
        kube: KubeClient,
        resource: Resource,
        *,
        selector: str,
        namespaces: Iterable[str] = (),
        index: Iterable[str] = (),
        on_change: OnChange | None = None,
        absent_recheck_s: float = ABSENT_RECHECK_S,
        watch_timeout_s: int = WATCH_TIMEOUT_S,
        keep_managed_fields: bool = True,
    ) -> None:
        self.kube = kube
        self.resource = resource
        self.selector = selector
        self.namespaces: tuple[str | None, ...] = tuple(namespaces) or (None,)
        self.index_keys = tuple(index)
        self.on_change = on_change
        self.absent_recheck_s = absent_recheck_s
        self.watch_timeout_s = watch_timeout_s
        self.keep_managed_fields = keep_managed_fields
        """``metadata.managedFields`` is often the larger half of an object; held only
        where a reader needs it (who owns a Deployment's ``spec.replicas``)."""
        self.objects: dict[Key, Mapping[str, Any]] = {}
        self._by_label: dict[tuple[str, str, str], set[str]] = {}
        """(namespace, label key, label value) → names, for each key in ``index``."""
        self._tasks: list[asyncio.Task[None]] = []
        self._synced = {scope: asyncio.Event() for scope in self.namespaces}
        self.lists = 0
        self.watches = 0

    # -- reading ---------------------------------------------------------------------------
    def get(self, namespace: str, name: str) -> Mapping[str, Any] | None:
        return self.objects.get((namespace, name))

    def select(self, namespace: str, labels: Mapping[str, str]) -> list[Mapping[str, Any]]:
        """Objects of ``namespace`` carrying every label of ``labels`` (equality)."""
        names: Iterable[str] | None = None
        for key, value in labels.items():
            if key in self.index_keys:
                names = sorted(self._by_label.get((namespace, key, value), ()))
                break
        if names is None:
            candidates = [o for (ns, _), o in self.objects.items() if ns == namespace]
        else:
            candidates = [self.objects[(namespace, n)] for n in names]
        return [o for o in candidates if _has_labels(o, labels)]

    async def synced(self) -> None:
        """Wait until every namespace's first LIST is in."""
        for event in self._synced.values():
            await event.wait()

    # -- writing (ours, seen before the watch reports them) --------------------------------
    def note(self, obj: Mapping[str, Any]) -> None:
        """Take an object this operator just wrote (the API's answer) if it is newer."""
        if self._in_scope(obj) and newer_or_same(obj, self.objects.get(_key(obj))):
            self._put(obj)

    def note_deleted(self, namespace: str, name: str) -> None:
        self._drop((namespace, name), notify=False)

    # -- running ---------------------------------------------------------------------------
    def start(self) -> None:
        if not self._tasks:
            self._tasks = [
                asyncio.create_task(self._run(scope), name=f"informer-{self.resource.plural}")
                for scope in self.namespaces
            ]

    async def close(self) -> None:
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks = []

    async def _run(self, namespace: str | None) -> None:
        version: str | None = None
        failures = 0
        while True:
            try:
                if version is None:
                    version = await self._list(namespace)
                version = await self._watch(namespace, version)
                failures = 0
            except asyncio.CancelledError:
                raise
            except ApiError as error:
                if error.status in (403, 404):  # not served (no CRD) or not allowed: empty
                    self._replace(namespace, [], initial=not self._synced[namespace].is_set())
                    self._synced[namespace].set()
                    if error.status == 403:
                        log.warning("informer %s: %s", self.resource.plural, error)
                    version = None
                    await asyncio.sleep(self.absent_recheck_s)
                    continue
                failures += 1
                await self._backoff(failures, error)
            except Exception as error:  # connection lost, timeout: resume from ``version``
                failures += 1
                await self._backoff(failures, error)

    async def _backoff(self, failures: int, error: BaseException) -> None:
        delay = RETRY_DELAYS_S[min(failures, len(RETRY_DELAYS_S)) - 1]
        log.warning("informer %s: %r; again in %.0fs", self.resource.plural, error, delay)
        await asyncio.sleep(delay)

    async def _list(self, namespace: str | None) -> str:
        items, version = await self.kube.list_versioned(
            self.resource, namespace, label_selector=self.selector, resource_version="0"
        )
        self.lists += 1
        self._replace(namespace, items, initial=not self._synced[namespace].is_set())
        self._synced[namespace].set()
        return version

    async def _watch(self, namespace: str | None, version: str) -> str | None:
        """Follow the watch from ``version``; the last version seen, or None after 410."""
        self.watches += 1
        async for event in self.kube.watch(
            self.resource,
            namespace,
            label_selector=self.selector,
            resource_version=version,
            timeout_s=self.watch_timeout_s,
        ):
            kind, obj = event.get("type"), event.get("object") or {}
            if kind == "ERROR":
                if obj.get("code") == 410:
                    return None  # too old: LIST again
                raise ApiError(int(obj.get("code") or 500), str(obj.get("reason")), str(obj))
            version = str((obj.get("metadata") or {}).get("resourceVersion") or version)
            if kind == "BOOKMARK":
                continue
            obj = {"apiVersion": self.resource.api_version, "kind": self.resource.kind, **obj}
            if kind == "DELETED":
                self._drop(_key(obj), obj)
            elif newer_or_same(obj, self.objects.get(_key(obj))):
                self._put(obj, str(kind))
        return version

    # -- the copy ---------------------------------------------------------------------------
    def _in_scope(self, obj: Mapping[str, Any]) -> bool:
        namespace = _key(obj)[0]
        return self.namespaces == (None,) or namespace in self.namespaces

    def _replace(
        self, namespace: str | None, items: list[dict[str, Any]], *, initial: bool
    ) -> None:
        fresh = {_key(o): o for o in items}
        stale = [k for k in self.objects if (namespace is None or k[0] == namespace)]
        for key in stale:
            if key not in fresh:
                self._drop(key, notify=not initial)
        for obj in items:
            held = self.objects.get(_key(obj))
            if held is None or held.get("metadata") != self._trim(obj).get("metadata"):
                self._put(obj, "MODIFIED" if held else "ADDED", notify=not initial)

    def _trim(self, obj: Mapping[str, Any]) -> Mapping[str, Any]:
        metadata = obj.get("metadata")
        if self.keep_managed_fields or not metadata or "managedFields" not in metadata:
            return obj
        kept = {k: v for k, v in metadata.items() if k != "managedFields"}
        return {**obj, "metadata": kept}

    def _put(self, obj: Mapping[str, Any], kind: str = "", *, notify: bool = True) -> None:
        obj = self._trim(obj)
        key = _key(obj)
        held = self.objects.get(key)
        if held is not None:
            self._unindex(key, held)
        self.objects[key] = obj
        for label in self.index_keys:
            value = _labels(obj).get(label)
            if value is not None:
                self._by_label.setdefault((key[0], label, value), set()).add(key[1])
        if kind and notify and self.on_change is not None:
            self.on_change(kind, obj)

    def _drop(
        self, key: Key, last: Mapping[str, Any] | None = None, *, notify: bool = True
    ) -> None:
        held = self.objects.pop(key, None)
        if held is not None:
            self._unindex(key, held)
        if notify and self.on_change is not None and (last or held) is not None:
            self.on_change("DELETED", last or held or {})

    def _unindex(self, key: Key, obj: Mapping[str, Any]) -> None:
        for label in self.index_keys:
            value = _labels(obj).get(label)
            names = self._by_label.get((key[0], label, value)) if value is not None else None
            if names is not None:
                names.discard(key[1])
                if not names:
                    del self._by_label[(key[0], label, str(value))]


def _labels(obj: Mapping[str, Any]) -> Mapping[str, str]:
    labels: Mapping[str, str] = (obj.get("metadata") or {}).get("labels") or {}
    return labels


def _has_labels(obj: Mapping[str, Any], labels: Mapping[str, str]) -> bool:
    own = _labels(obj)
    return all(own.get(k) == v for k, v in labels.items())
