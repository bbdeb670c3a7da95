"""The embedded cluster's EndpointSlice controller: keeps slices in step with pods.

Why it exists: routers (and :meth:`EmulatedCluster.service_url`) find a Service's ready
replicas in its EndpointSlices, and on the emulated API nothing else writes them. This
controller reads the emulator's change log (like the Deployment controller in
:mod:`tierwise.local.workloads`), marks the Services whose object, selected pods (before or
after the change) or managed slices changed, and applies
:func:`tierwise.local.endpointslices.plan_slices` to each: it writes only what differs, so a
pass over an unchanged cluster writes nothing. Its own writes are recognised by their
resource versions and do not trigger another pass.

It runs on the emulator's loop and uses the store directly (synchronously), so a pod change
and the slice update it causes never interleave with another request.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Iterable, Mapping
from typing import Any

import kmock

from tierwise.local.emulator import EmulatedApiServer
from tierwise.local.endpointslices import (
    ENDPOINTSLICES,
    MANAGED_BY_LABEL,
    MAX_ENDPOINTS_PER_SLICE,
    SERVICE_NAME_LABEL,
    SERVICES,
    SlicePlan,
    plan_slices,
    selector_of,
    selects,
)
from tierwise.local.watches import Change
from tierwise.local.workloads import PODS

_SERVICES_KEY = ("", "v1", "services")
_PODS_KEY = ("", "v1", "pods")
_SLICES_KEY = ("discovery.k8s.io", "v1", "endpointslices")

ServiceRef = tuple[str, str]  # (namespace, name)


class EndpointSliceController:
    """Maintains the EndpointSlices of every Service with a selector (see module docs)."""

    def __init__(
        self, server: EmulatedApiServer, *, max_endpoints: int = MAX_ENDPOINTS_PER_SLICE
    ) -> None:
        self.server = server
        self.max_endpoints = max_endpoints
        self.writes = 0
        """Slices created, updated or deleted so far (a quiet cluster keeps it constant)."""
        self.passes = 0
        self._position = 0
        self._dirty: set[ServiceRef] = set()
        self._own: set[int] = set()
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        self.reconcile_all()
        self._task = asyncio.create_task(self._run(), name="tierwise-endpointslice-controller")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def _run(self) -> None:
        log = self.server.log
        while not log.closed:
            await log.wait(1.0)
            await asyncio.sleep(0)  # let the writer of a burst finish its step
            self.reconcile_changed()

    # -- passes ------------------------------------------------------------------------------
    def reconcile_all(self) -> int:
        """Reconcile every Service (and clean up slices of Services that are gone)."""
        self._position = self.server.log.resource_version
        self._dirty.clear()
        self._own.clear()
        store = self.server.store
        refs = {
            (str(s["metadata"].get("namespace")), str(s["metadata"]["name"]))
            for _, s in store.iter_objects(SERVICES)
        }
        for _, obj in store.iter_objects(ENDPOINTSLICES):
            labels = obj["metadata"].get("labels") or {}
            if labels.get(MANAGED_BY_LABEL) and labels.get(SERVICE_NAME_LABEL):
                refs.add((str(obj["metadata"].get("namespace")), str(labels[SERVICE_NAME_LABEL])))
        return self._reconcile_each(refs)

    def reconcile_changed(self) -> int:
        """Reconcile the Services the change log touched since the last pass."""
        self._collect(self.server.log.changes_after(self._position))
        dirty, self._dirty = self._dirty, set()
        return self._reconcile_each(dirty)

    def _reconcile_each(self, refs: Iterable[ServiceRef]) -> int:
        before = self.writes
        refs = sorted(refs)
        if refs:
            self.passes += 1
        for namespace, name in refs:
            self._reconcile(namespace, name)
        return self.writes - before

    # -- what changed ------------------------------------------------------------------------
    def _collect(self, changes: Iterable[Change]) -> None:
        pods: dict[str, list[Change]] = {}
        for change in changes:
            self._position = change.version
            if change.version in self._own:
                self._own.discard(change.version)
                continue
            meta = change.object.get("metadata") or {}
            namespace = str(meta.get("namespace"))
            if change.key == _SERVICES_KEY:
                self._dirty.add((namespace, str(meta.get("name"))))
            elif change.key == _PODS_KEY:
                pods.setdefault(namespace, []).append(change)
            elif change.key == _SLICES_KEY:
                labels = meta.get("labels") or {}
                if labels.get(SERVICE_NAME_LABEL):
                    self._dirty.add((namespace, str(labels[SERVICE_NAME_LABEL])))
        for namespace, pod_changes in pods.items():
            self._dirty.update(self._selecting(namespace, pod_changes))

    def _selecting(self, namespace: str, changes: list[Change]) -> set[ServiceRef]:
        """The Services of ``namespace`` that select a changed pod before or after.

        Changes are indexed by label pair, so each Service looks only at the changed pods
        carrying its selector's first pair: O(Services + changes), not their product.
        """
        by_pair: dict[tuple[str, str], list[Mapping[str, Any]]] = {}
        for change in changes:
            for pod in (change.object, change.old):
                for pair in (((pod or {}).get("metadata") or {}).get("labels") or {}).items():
                    by_pair.setdefault(pair, []).append(pod or {})
        out: set[ServiceRef] = set()
        for _, service in self.server.store.iter_objects(SERVICES, namespace):
            selector = selector_of(service)
            if not selector:
                continue
            first = min(selector.items())
            if any(selects(selector, pod) for pod in by_pair.get(first, ())):
                out.add((namespace, str(service["metadata"]["name"])))
        return out

    # -- one Service -------------------------------------------------------------------------
    def _reconcile(self, namespace: str, name: str) -> None:
        store = self.server.store
        try:
            service: Mapping[str, Any] | None = store.get(SERVICES, namespace, name, shared=True)
        except kmock.KubernetesError:
            service = None
        slices = [obj for _, obj in store.iter_objects(ENDPOINTSLICES, namespace)]
        if service is None or service["metadata"].get("deletionTimestamp"):
            self._execute(
                namespace,
                name,
                SlicePlan(
                    delete=[
                        str(s["metadata"]["name"])
                        for s in slices
                        if (s["metadata"].get("labels") or {}).get(SERVICE_NAME_LABEL) == name
                        and (s["metadata"].get("labels") or {}).get(MANAGED_BY_LABEL)
                    ]
                ),
            )
            return
        selector = selector_of(service)
        pods = list(store.iter_labelled(PODS, namespace, min(selector.items()))) if selector else []
        plan = plan_slices(
            service,
            pods,
            slices,
            taken=[str(s["metadata"]["name"]) for s in slices],
            max_endpoints=self.max_endpoints,
        )
        self._execute(namespace, name, plan)

    def _execute(self, namespace: str, service: str, plan: SlicePlan) -> None:
        store = self.server.store
        try:
            for body in plan.create:
                self._own.add(
                    int(
                        store.create(ENDPOINTSLICES, namespace, body)["metadata"]["resourceVersion"]
                    )
                )
                self.writes += 1
            for body in plan.update:
                self._own.add(
                    int(
                        store.write(ENDPOINTSLICES, namespace, body["metadata"]["name"], body)[
                            "metadata"
                        ]["resourceVersion"]
                    )
                )
                self.writes += 1
            for name in plan.delete:
                obj, _ = store.delete(ENDPOINTSLICES, namespace, name)
                self._own.add(int(obj["metadata"]["resourceVersion"]))
                self.writes += 1
        except kmock.KubernetesError:  # changed meanwhile (409), gone or taken: retry soon
            self._dirty.add((namespace, service))
