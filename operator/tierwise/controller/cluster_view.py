"""The operator's in-memory view of what Tierwise owns: children, pods, its own objects.

Why it exists: with it, a reconcile reads from memory and the API server sees only the
writes and a handful of label-selected watches (see :mod:`tierwise.controller.informer`):

* every kind a ModelDeployment or a RoutingPolicy owns, selected by
  ``app.kubernetes.io/managed-by=tierwise`` (on every object Tierwise renders);
* pods with ``tierwise.dev/model-deployment`` (engine pods) and pods with
  ``tierwise.dev/routing-policy`` (router pods, application pods with the sidecar);
* every ModelDeployment and RoutingPolicy (kopf watches them too, but gives no sign that
  its first listing is complete, and a policy reconciled before it would miss the models
  it names).

Unrelated Pods and Deployments of a busy cluster never reach the operator.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import Any

from tierwise.controller.informer import Informer, Key, OnChange
from tierwise.controller.kube import KubeClient
from tierwise.controller.resources import (
    CHILD_RESOURCES,
    DEPLOYMENT,
    MODEL_DEPLOYMENT,
    POD,
    ROUTER_CHILD_RESOURCES,
    ROUTING_POLICY,
    Resource,
)
from tierwise.manifests.labels import MODEL_DEPLOYMENT_LABEL
from tierwise.manifests.router_names import ROUTING_POLICY_LABEL

MANAGED_SELECTOR = "app.kubernetes.io/managed-by=tierwise"
COMPONENT = "app.kubernetes.io/component"
OWNED: tuple[Resource, ...] = tuple(dict.fromkeys((*CHILD_RESOURCES, *ROUTER_CHILD_RESOURCES)))
"""Each kind once: what ModelDeployments and RoutingPolicies own."""


class ClusterView:
    """Informers for what Tierwise owns, in ``namespaces`` (empty: the whole cluster)."""

    def __init__(
        self,
        kube: KubeClient,
        *,
        namespaces: Iterable[str] = (),
        informer: Callable[..., Informer] = Informer,
    ) -> None:
        scope = watch_scope(namespaces)
        self.on_change: OnChange | None = None
        index = (MODEL_DEPLOYMENT_LABEL, ROUTING_POLICY_LABEL)
        self.owned: dict[str, Informer] = {
            r.kind: informer(
                kube,
                r,
                selector=MANAGED_SELECTOR,
                namespaces=scope,
                index=index,
                on_change=self._changed,
                keep_managed_fields=r.kind == DEPLOYMENT.kind,
            )
            for r in OWNED
        }

        def pods(label: str) -> Informer:
            return informer(
                kube,
                POD,
                selector=label,
                namespaces=scope,
                index=(label,),
                on_change=self._changed,
                keep_managed_fields=False,
            )

        self.engine_pods = pods(MODEL_DEPLOYMENT_LABEL)
        self.policy_pods = pods(ROUTING_POLICY_LABEL)
        self.model_informer = informer(
            kube, MODEL_DEPLOYMENT, selector="", namespaces=scope, keep_managed_fields=False
        )
        self.policy_informer = informer(
            kube, ROUTING_POLICY, selector="", namespaces=scope, keep_managed_fields=False
        )

    @property
    def models(self) -> Mapping[Key, Mapping[str, Any]]:
        return self.model_informer.objects

    @property
    def policies(self) -> Mapping[Key, Mapping[str, Any]]:
        return self.policy_informer.objects

    @property
    def informers(self) -> list[Informer]:
        return [
            *self.owned.values(),
            self.engine_pods,
            self.policy_pods,
            self.model_informer,
            self.policy_informer,
        ]

    def start(self) -> None:
        for informer in self.informers:
            informer.start()

    async def synced(self) -> None:
        for informer in self.informers:
            await informer.synced()

    async def close(self) -> None:
        for informer in self.informers:
            await informer.close()

    # -- reads -----------------------------------------------------------------------------
    def children(
        self, kinds: Iterable[Resource], namespace: str, labels: Mapping[str, str]
    ) -> list[Mapping[str, Any]]:
        """Owned objects of ``kinds`` in ``namespace`` with all of ``labels``."""
        return [o for r in kinds for o in self.owned[r.kind].select(namespace, labels)]

    def get(self, resource: Resource, namespace: str, name: str) -> Mapping[str, Any] | None:
        informer = self.owned.get(resource.kind)
        return informer.get(namespace, name) if informer is not None else None

    def pods(self, namespace: str, labels: Mapping[str, str]) -> list[Mapping[str, Any]]:
        """Pods with ``labels``, which must name a ModelDeployment or a RoutingPolicy."""
        if MODEL_DEPLOYMENT_LABEL in labels:
            return self.engine_pods.select(namespace, labels)
        if ROUTING_POLICY_LABEL in labels:
            return self.policy_pods.select(namespace, labels)
        raise ValueError(f"pods are watched only by Tierwise's labels, not {dict(labels)}")

    def router_pods(self, namespace: str) -> list[Mapping[str, Any]]:
        """Every router's pods in ``namespace`` (they carry the policy's label)."""
        return self.policy_pods.select(namespace, {COMPONENT: "router"})

    # -- what this operator wrote (seen before its watch event) ------------------------------
    def note(self, obj: Mapping[str, Any]) -> None:
        informer = self.owned.get(str(obj.get("kind")))
        if informer is not None and obj.get("metadata"):
            informer.note(obj)

    def note_deleted(self, kind: str, namespace: str, name: str) -> None:
        informer = self.owned.get(kind)
        if informer is not None:
            informer.note_deleted(namespace, name)

    def _changed(self, event: str, obj: Mapping[str, Any]) -> None:
        if self.on_change is not None:
            self.on_change(event, obj)


def watch_scope(namespaces: Iterable[str]) -> tuple[str, ...]:
    """The namespaces to watch one by one; empty (the whole cluster) when any is a pattern
    (``team-*``, ``!kube-system``: kopf's syntax), which no API path can name. Reconciles
    then read only their own namespace from the cluster-wide copy."""
    names = tuple(namespaces)
    if any(c in name for name in names for c in "*?[!"):
        return ()
    return names
