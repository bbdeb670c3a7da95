"""One reconcile path for RoutingPolicies: observe → plan → execute, and what triggers it.

Triggers: kopf's create/update/resume of a policy; a ModelDeployment created, deleted or
changed (served name, price, readiness) wakes every policy of its namespace that names it;
a router Deployment or a pod labelled for a policy (its router pods, or application pods
carrying the sidecar) wakes that policy. Triggers are coalesced per policy
(:class:`~tierwise.controller.refresh.Refresher`) and a per-policy lock keeps two from
interleaving.

Observation reads the namespace: the policy's children by label, the ModelDeployments
(their spec gives the document's backend facts, their status the tiers' readiness), the
Secrets the policy references (existence only), and in sidecar mode the labelled pods
(their ServiceAccounts get the router's read-only Role; uninjected ones are reported).
Whether the Prometheus Operator's PodMonitor kind is served is asked once every few
minutes, not per reconcile. With a :class:`~tierwise.controller.cluster_view.ClusterView`
all of this except the tier-quality ConfigMap is read from memory, and Secrets are checked
by metadata only (:mod:`tierwise.controller.references`).
"""

from __future__ import annotations

import asyncio
import base64
import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from pydantic import ValidationError

from tierwise.api.model_deployment import ModelDeployment
from tierwise.api.routing_policy import RouterMode, RoutingPolicy
from tierwise.controller import errors
from tierwise.controller.checks import essence
from tierwise.controller.children import Identity, identity_of
from tierwise.controller.cluster_view import ClusterView
from tierwise.controller.execute import execute
from tierwise.controller.kube import KubeClient
from tierwise.controller.metrics import OperatorMetrics
from tierwise.controller.plan import Outcome, Plan
from tierwise.controller.pods import is_ready
from tierwise.controller.policy_plan import PolicyObserved, RouterRender, parse_policy, plan_policy
from tierwise.controller.policy_status import ArtifactFacts, ModelFacts, PolicyFacts, RouterFacts
from tierwise.controller.reconcile import describe
from tierwise.controller.references import ReferenceChecks
from tierwise.controller.refresh import Refresher
from tierwise.controller.resources import (
    CONFIG_MAP,
    MODEL_DEPLOYMENT,
    POD,
    ROUTER_CHILD_RESOURCES,
    ROUTING_POLICY,
    SECRET,
)
from tierwise.manifests import pod_service_account
from tierwise.manifests.labels import label_value
from tierwise.manifests.router_config import named_model_deployments

log = logging.getLogger(__name__)
KIND = "RoutingPolicy"
POLICY_LABEL = "tierwise.dev/routing-policy"
"""On the policy's router objects and on the application pods that opt into the sidecar."""
INJECTED_ANNOTATION = "tierwise.dev/router-injected"
MANAGED_KEY, MANAGED_VALUE = "app.kubernetes.io/managed-by", "tierwise"
MANAGED = f"{MANAGED_KEY}={MANAGED_VALUE}"
PODMONITOR_DISCOVERY = "/apis/monitoring.coreos.com/v1"
PODMONITOR_RECHECK_S = 300.0
NOT_INJECTED_SHOWN = 5


def _utcnow() -> datetime:
    return datetime.now(UTC)


@dataclass
class PolicyReconciler:
    """Everything a policy reconcile needs, built once per operator run."""

    kube: KubeClient
    metrics: OperatorMetrics
    render: RouterRender
    clock: Callable[[], datetime] = _utcnow
    debounce_s: float = 0.2
    view: ClusterView | None = None
    """Where children, pods, ModelDeployments and policies are read; None: the API."""
    references: ReferenceChecks | None = None
    _locks: dict[tuple[str, str], asyncio.Lock] = field(default_factory=dict)
    _written: dict[tuple[str, str], dict[str, Any]] = field(default_factory=dict)
    _names: dict[tuple[str, str], str] = field(default_factory=dict)
    """(namespace, label value) → policy name, for events of labelled objects."""
    _uses: dict[tuple[str, str], frozenset[str]] = field(default_factory=dict)
    """(namespace, policy) → the ModelDeployments it names."""
    _refresher: Refresher | None = None
    _pod_monitor: tuple[float, bool] | None = None

    # -- triggers ----------------------------------------------------------------------------
    async def reconcile(self, body: Mapping[str, Any]) -> Plan:
        """Bring one policy's router, document and status in line; raise kopf errors."""
        meta = body["metadata"]
        key = (meta["namespace"], meta["name"])
        self._names[(key[0], label_value(key[1]))] = key[1]
        if self.view is not None:
            await self.view.synced()
        async with self._lock(key):
            written = self._written.get(key)
            if written is not None:
                body = {**body, "status": {**(body.get("status") or {}), **written}}
            plan = await self._measured(body)
            if plan.status is not None:
                self._written[key] = plan.status
        errors.raise_for_plan(plan)
        return plan

    def model_changed(self, namespace: str, name: str) -> None:
        """A ModelDeployment changed (or appeared, or went): refresh the policies naming it."""
        for (ns, policy), names in list(self._uses.items()):
            if ns == namespace and name in names:
                self._schedule((ns, policy))

    def labelled_changed(self, namespace: str, label: str) -> None:
        """An object labelled for a policy changed (router Deployment, router or app pod)."""
        name = self._names.get((namespace, label))
        if name is not None:
            self._schedule((namespace, name))

    def forget(self, namespace: str, name: str) -> None:
        key = (namespace, name)
        self._locks.pop(key, None)
        self._written.pop(key, None)
        self._uses.pop(key, None)
        self._names = {k: v for k, v in self._names.items() if (k[0], v) != key}
        self.metrics.objects.labels(kind=KIND).set(len(self._locks))

    async def close(self) -> None:
        if self._refresher is not None:
            await self._refresher.close()

    def _schedule(self, key: tuple[str, str]) -> None:
        if self._refresher is None:
            self._refresher = Refresher(self._refresh, debounce_s=self.debounce_s, name="policy")
        self._refresher.schedule(key)

    async def _refresh(self, key: tuple[str, str]) -> None:
        body = self.view.policies.get(key) if self.view is not None else None
        if body is None:
            body = await self.kube.get(ROUTING_POLICY, *key)
        if body is None or body["metadata"].get("deletionTimestamp"):
            return
        await self.reconcile(body)

    # -- the path ----------------------------------------------------------------------------
    async def _measured(self, body: Mapping[str, Any]) -> Plan:
        started = time.perf_counter()
        outcome = Outcome.ERROR.value
        meta = body["metadata"]
        try:
            rp, _ = parse_policy(body)
            if rp is not None:
                self._uses[(meta["namespace"], meta["name"])] = frozenset(
                    named_model_deployments(rp)
                )
            observed = await self.observe(body, rp)
            plan = plan_policy(body, observed, render=self.render, now=self.clock())
            await execute(plan, self.kube, body, kind=ROUTING_POLICY, view=self.view)
            outcome = plan.outcome.value
            if plan.writes:
                log.info(
                    "reconciled %s %s/%s: %s", KIND, meta["namespace"], meta["name"], describe(plan)
                )
        except Exception as exc:
            self.metrics.errors.labels(kind=KIND, error=errors.error_label(exc)).inc()
            raise errors.to_kopf(exc) from exc
        finally:
            self.metrics.duration.labels(kind=KIND).observe(time.perf_counter() - started)
            self.metrics.reconciles.labels(kind=KIND, outcome=outcome).inc()
        return plan

    async def observe(self, body: Mapping[str, Any], rp: RoutingPolicy | None) -> PolicyObserved:
        meta = body["metadata"]
        namespace = meta["namespace"]
        label = label_value(meta["name"])
        children: dict[Identity, Mapping[str, Any]] = {}
        if self.view is not None:
            labels = {POLICY_LABEL: label, MANAGED_KEY: MANAGED_VALUE}
            for obj in self.view.children(ROUTER_CHILD_RESOURCES, namespace, labels):
                children[identity_of(obj)] = obj
        else:
            selector = f"{POLICY_LABEL}={label},{MANAGED}"
            for resource in ROUTER_CHILD_RESOURCES:
                for obj in await self.kube.list(resource, namespace, label_selector=selector):
                    children[identity_of(obj)] = obj
        if rp is None:
            return PolicyObserved(children=children)
        deployments, models = await self._models(namespace, named_model_deployments(rp))
        missing_secrets = await self._missing_secrets(namespace, rp)
        router = _router_facts(children)
        accounts: tuple[str, ...] = ()
        not_injected: tuple[str, ...] = ()
        if rp.spec.router.mode is RouterMode.SIDECAR:
            router, accounts, not_injected = await self._sidecar_pods(namespace, label)
        artifact = await self._artifact(namespace, rp)
        facts = PolicyFacts(models, frozenset(missing_secrets), router, not_injected, artifact)
        return PolicyObserved(
            children=children,
            deployments=deployments,
            facts=facts,
            sidecar_service_accounts=accounts,
            pod_monitor=await self._pod_monitor_served(),
        )

    async def _models(
        self, namespace: str, names: list[str]
    ) -> tuple[dict[str, ModelDeployment], dict[str, ModelFacts]]:
        deployments: dict[str, ModelDeployment] = {}
        models: dict[str, ModelFacts] = {}
        wanted = set(names)
        bodies: list[Mapping[str, Any]]
        if self.view is not None:
            bodies = [b for (ns, _), b in self.view.models.items() if ns == namespace]
        else:
            bodies = list(await self.kube.list(MODEL_DEPLOYMENT, namespace))
        for body in bodies:
            name = str(body["metadata"]["name"])
            if name not in wanted or body["metadata"].get("deletionTimestamp"):
                continue
            status = body.get("status") or {}
            ready = int(status.get("readyReplicas") or 0)
            try:
                deployments[name] = ModelDeployment.model_validate(essence(body))
            except ValidationError:
                models[name] = ModelFacts(status.get("phase"), ready, valid=False)
                continue
            models[name] = ModelFacts(status.get("phase"), ready)
        return deployments, models

    async def _missing_secrets(self, namespace: str, rp: RoutingPolicy) -> set[str]:
        names = {
            b.external.api_key_secret_ref.name
            for t in rp.spec.tiers
            for b in t.backends
            if b.external is not None
        }
        if rp.spec.router.auth is not None:
            names.add(rp.spec.router.auth.api_keys_secret_ref.name)
        missing = set()
        checks = self.references or ReferenceChecks(self.kube, found_ttl_s=0)
        for name in sorted(names):
            if not await checks.exists(SECRET, namespace, name):
                missing.add(name)
        return missing

    async def _artifact(self, namespace: str, rp: RoutingPolicy) -> ArtifactFacts | None:
        classifier = rp.spec.classifier
        quality = classifier.tier_quality if classifier is not None else None
        if quality is None or quality.config_map is None:
            return None
        ref = quality.config_map
        found = await self.kube.get(CONFIG_MAP, namespace, ref.name)
        if found is None:
            return ArtifactFacts(exists=False)
        text = (found.get("data") or {}).get(ref.key)
        if text is not None:
            return ArtifactFacts(exists=True, data=str(text).encode())
        binary = (found.get("binaryData") or {}).get(ref.key)
        return ArtifactFacts(exists=True, data=base64.b64decode(binary) if binary else None)

    async def _sidecar_pods(
        self, namespace: str, label: str
    ) -> tuple[RouterFacts, tuple[str, ...], tuple[str, ...]]:
        if self.view is not None:
            labelled = [
                p
                for p in self.view.pods(namespace, {POLICY_LABEL: label})
                if _labels(p).get("app.kubernetes.io/component") != "router"
            ]
        else:
            selector = f"{POLICY_LABEL}={label},app.kubernetes.io/component!=router"
            labelled = list(await self.kube.list(POD, namespace, label_selector=selector))
        pods = [
            p
            for p in labelled
            if not (p.get("metadata") or {}).get("deletionTimestamp")
            and (p.get("status") or {}).get("phase") not in ("Succeeded", "Failed")
        ]
        accounts = sorted({pod_service_account(p) for p in pods})
        injected = [p for p in pods if INJECTED_ANNOTATION in _annotations(p)]
        missing = sorted(str(p["metadata"]["name"]) for p in pods if p not in injected)
        self.metrics.sidecar_not_injected.labels(namespace=namespace, policy=label).set(
            len(missing)
        )
        ready = sum(1 for p in injected if is_ready(p))
        facts = RouterFacts(wanted=len(pods), ready=ready, exists=True)
        return facts, tuple(accounts), tuple(missing[:NOT_INJECTED_SHOWN])

    async def _pod_monitor_served(self) -> bool:
        now = time.monotonic()
        if self._pod_monitor is not None and now - self._pod_monitor[0] < PODMONITOR_RECHECK_S:
            return self._pod_monitor[1]
        served = await self.kube.resource_served(PODMONITOR_DISCOVERY, "podmonitors")
        self._pod_monitor = (now, served)
        return served

    def _lock(self, key: tuple[str, str]) -> asyncio.Lock:
        lock = self._locks.get(key)
        if lock is None:
            lock = self._locks[key] = asyncio.Lock()
            self.metrics.objects.labels(kind=KIND).set(len(self._locks))
        return lock


def _router_facts(children: Mapping[Identity, Mapping[str, Any]]) -> RouterFacts:
    found = [o for i, o in children.items() if i.kind == "Deployment"]
    if not found:
        return RouterFacts()
    deployment = found[0]
    spec, st = deployment.get("spec") or {}, deployment.get("status") or {}
    replicas = spec.get("replicas")
    wanted = int(replicas) if replicas is not None else 1
    generation = (deployment.get("metadata") or {}).get("generation")
    updated = int(st.get("updatedReplicas") or 0)
    rolling = (generation is not None and st.get("observedGeneration") != generation) or (
        updated < wanted
    )
    return RouterFacts(
        wanted=wanted, ready=int(st.get("readyReplicas") or 0), rolling=rolling, exists=True
    )


def _annotations(obj: Mapping[str, Any]) -> Mapping[str, str]:
    annotations: Mapping[str, str] = (obj.get("metadata") or {}).get("annotations") or {}
    return annotations


def _labels(obj: Mapping[str, Any]) -> Mapping[str, str]:
    labels: Mapping[str, str] = (obj.get("metadata") or {}).get("labels") or {}
    return labels
