"""The Deployment controller of the embedded cluster, with pluggable pod backends.

The emulated API server stores Deployments but nothing acts on them, so the
operator's status could never reach ``Ready`` (or ``Degraded``). The
:class:`DeploymentController` plays the ReplicaSet/kubelet part: it watches the
emulator's change log, creates and deletes Pods owned by each Deployment (labels
with ``pod-template-hash``, owner references, pod IPs and ports), replaces pods
whose template changed (all at once, like ``Recreate``), and writes Pod and
Deployment status (replicas, ready/available/updated replicas,
``observedGeneration``, ``Available`` and ``Progressing`` conditions).

What a pod *is* comes from a :class:`WorkloadBackend`:

* :class:`FakeBackend` — instant: pods are Ready unless a test marks their
  Deployment ``Failing`` (CrashLoopBackOff) or ``Starting``;
* :class:`~tierwise.local.processes.ProcessBackend` — one local process per pod,
  Ready when its health endpoint answers.

Any Deployment can also be forced from any client with the annotation
``local.tierwise.dev/health: Ready|Starting|Failing``.
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import hashlib
import json
import pathlib
import secrets
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, Protocol, runtime_checkable

import kmock

from tierwise.local.emulator import EmulatedApiServer
from tierwise.local.store import ObjectStore, now_rfc3339
from tierwise.local.termination import PODS as PODS  # re-exported: callers use it from here
from tierwise.local.termination import PodTerminator, deletion_grace

DEPLOYMENTS = kmock.resource("apps", "v1", "deployments")
_DEPLOYMENTS_KEY = ("apps", "v1", "deployments")
_PODS_KEY = ("", "v1", "pods")
HEALTH_ANNOTATION = "local.tierwise.dev/health"
PORT_ANNOTATION = "local.tierwise.dev/port"


class PodHealth(StrEnum):
    STARTING = "Starting"
    READY = "Ready"
    FAILING = "Failing"


@dataclass(frozen=True)
class PodInfo:
    """What a backend needs to run one pod of a Deployment."""

    namespace: str
    name: str
    deployment: str
    template: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class PodEndpoint:
    ip: str
    port: int | None = None


@dataclass(frozen=True)
class PodState:
    health: PodHealth
    reason: str | None = None
    message: str | None = None
    restarts: int = 0


class WorkloadBackend(Protocol):
    """Turns pods into something that runs (or pretends to)."""

    async def start(self, pod: PodInfo) -> PodEndpoint: ...

    async def state(self, pod: PodInfo) -> PodState: ...

    async def stop(self, pod: PodInfo, grace: float | None = None) -> None:
        """Stop the pod: SIGTERM, SIGKILL after ``grace`` s (None: the backend's default)."""

    async def aclose(self) -> None: ...


@dataclass(frozen=True)
class ClusterHandle:
    """What a backend that reads the cluster gets (a kubelet reads ConfigMaps, Secrets, pods).

    Its methods run on the cluster's loop, where reading ``store`` directly is safe.
    """

    store: ObjectStore
    kubeconfig_path: pathlib.Path
    url: str


@runtime_checkable
class ClusterAware(Protocol):
    """A backend that needs the cluster: :class:`EmulatedCluster` binds it when it starts."""

    def bind(self, cluster: ClusterHandle) -> None: ...


class FakeBackend:
    """Pods that are Ready at once, unless a test marks their Deployment otherwise."""

    def __init__(self) -> None:
        self._health: dict[tuple[str, str], PodHealth] = {}
        self._next_ip = 1

    def mark(self, namespace: str, deployment: str, health: PodHealth | str) -> None:
        """Make all pods of a Deployment Ready, Starting or Failing (any thread)."""
        self._health[(namespace, deployment)] = PodHealth(health)

    async def start(self, pod: PodInfo) -> PodEndpoint:
        self._next_ip += 1
        return PodEndpoint(ip=f"10.244.{self._next_ip // 250}.{self._next_ip % 250 + 1}")

    async def state(self, pod: PodInfo) -> PodState:
        health = self._health.get((pod.namespace, pod.deployment), PodHealth.READY)
        if health == PodHealth.FAILING:
            return PodState(health, "CrashLoopBackOff", "back-off restarting failed container")
        return PodState(health)

    async def stop(self, pod: PodInfo, grace: float | None = None) -> None:
        return None

    async def aclose(self) -> None:
        return None


def template_hash(template: Mapping[str, Any]) -> str:
    return hashlib.sha256(json.dumps(template, sort_keys=True).encode()).hexdigest()[:10]


def _condition(
    kind: str, ok: bool, reason: str, message: str, previous: Mapping[str, Any] | None
) -> dict[str, Any]:
    status = "True" if ok else "False"
    same = (
        previous is not None
        and previous.get("status") == status
        and previous.get("reason") == reason
    )
    stamp = previous.get("lastTransitionTime") if same and previous else now_rfc3339()
    return {
        "type": kind,
        "status": status,
        "reason": reason,
        "message": message,
        "lastTransitionTime": stamp,
        "lastUpdateTime": stamp,
    }


def _conditions(
    wanted: Mapping[str, bool], previous: list[Mapping[str, Any]]
) -> list[dict[str, Any]]:
    """Pod conditions with ``lastTransitionTime`` kept until the status flips (the
    autoscaler measures a replica's cold start from creation to its Ready transition)."""
    before = {c.get("type"): c for c in previous}
    out = []
    for kind, value in wanted.items():
        status = str(value)
        old = before.get(kind) or {}
        since = old.get("lastTransitionTime") if old.get("status") == status else None
        out.append({"type": kind, "status": status, "lastTransitionTime": since or now_rfc3339()})
    return out


def pod_status(
    state: PodState, endpoint: PodEndpoint, template: Mapping[str, Any], previous: Mapping[str, Any]
) -> dict[str, Any]:
    ready = state.health == PodHealth.READY
    started = previous.get("startTime") or now_rfc3339()
    containers = (template.get("spec") or {}).get("containers") or [{"name": "main"}]
    waiting = {
        "waiting": {"reason": state.reason or "ContainerCreating", "message": state.message or ""}
    }
    running = {"running": {"startedAt": started}}
    return {
        "phase": "Pending" if state.health == PodHealth.STARTING else "Running",
        "podIP": endpoint.ip,
        "podIPs": [{"ip": endpoint.ip}],
        "hostIP": "127.0.0.1",
        "startTime": started,
        "conditions": _conditions(
            {"PodScheduled": True, "Ready": ready, "ContainersReady": ready},
            previous.get("conditions") or [],
        ),
        "containerStatuses": [
            {
                "name": c.get("name", "main"),
                "image": c.get("image", ""),
                "ready": ready,
                "imageID": f"local://{c.get('image', '')}",
                "started": state.health != PodHealth.FAILING,
                "restartCount": state.restarts,
                "state": waiting if state.health == PodHealth.FAILING or state.reason else running,
            }
            for c in containers
        ],
    }


def deployment_status(
    deployment: Mapping[str, Any], pods: list[tuple[bool, PodState]], desired: int
) -> dict[str, Any]:
    """Deployment status from its pods: (is the pod from the current template, its state)."""
    previous = {c["type"]: c for c in (deployment.get("status") or {}).get("conditions") or []}
    updated = sum(1 for current, _ in pods if current)
    available = sum(1 for _, s in pods if s.health == PodHealth.READY)
    failing = any(s.health == PodHealth.FAILING for _, s in pods)
    minimum = desired - desired // 4  # the default maxUnavailable of 25%, rounded down
    complete = updated == desired == len(pods) and available == desired
    progressing = (
        _condition(
            "Progressing",
            False,
            "ProgressDeadlineExceeded",
            "pods are failing (CrashLoopBackOff)",
            previous.get("Progressing"),
        )
        if failing
        else _condition(
            "Progressing",
            True,
            "NewReplicaSetAvailable" if complete else "ReplicaSetUpdated",
            "rollout progressing",
            previous.get("Progressing"),
        )
    )
    status: dict[str, Any] = {
        "observedGeneration": deployment["metadata"].get("generation", 1),
        "replicas": len(pods),
        "updatedReplicas": updated,
        "readyReplicas": available,
        "availableReplicas": available,
        "conditions": [
            _condition(
                "Available",
                available >= minimum,
                "MinimumReplicasAvailable"
                if available >= minimum
                else "MinimumReplicasUnavailable",
                "Deployment has minimum availability."
                if available >= minimum
                else "Deployment does not have minimum availability.",
                previous.get("Available"),
            ),
            progressing,
        ],
    }
    if len(pods) > available:
        status["unavailableReplicas"] = len(pods) - available
    return {k: v for k, v in status.items() if v != 0 or k == "observedGeneration"}


class DeploymentController:
    """Reconciles every Deployment of the emulator into Pods via a backend.

    Each pass handles the Deployments that the change log says changed (their own
    object or one of their pods) since the last pass; a full pass over all of them
    catches what the log cannot show (a backend's pods becoming ready, a test marking
    a Deployment). Full passes run every ``resync`` seconds, but never more often than
    ten times their own duration, so that 500 Deployments cost at most ~10% of a core.

    It also plays kubelet's part in pod deletion (:mod:`tierwise.local.termination`): with
    ``max_termination_grace`` > 0 a deleted pod stays terminating while its process runs
    out its preStop hook and grace (capped), then goes; with 0 it goes at once.
    """

    def __init__(
        self,
        server: EmulatedApiServer,
        backend: WorkloadBackend,
        *,
        resync: float = 0.1,
        max_termination_grace: float = 5.0,
    ) -> None:
        self.server = server
        self.backend = backend
        self.resync = resync
        self.max_termination_grace = max_termination_grace
        self.terminator = PodTerminator(
            server.store, self._stop_pod, max_grace=max_termination_grace
        )
        self._pods: dict[str, tuple[PodInfo, PodEndpoint]] = {}  # by pod uid
        self._task: asyncio.Task[None] | None = None
        self._position = 0  # the last change of the log this controller has seen
        self._dirty: set[tuple[str, str]] = set()  # (namespace, name) of Deployments
        self._next_full = 0.0
        self._stopping = False
        self.passes = 0
        self.full_passes = 0

    async def start(self) -> None:
        if self.max_termination_grace > 0:
            self.server.store.pod_grace = deletion_grace
        self._task = asyncio.create_task(self._run(), name="tierwise-deployment-controller")

    async def stop(self) -> None:
        if self._task is not None:
            # Let the current pass finish: cancelled inside a backend's start(), a process
            # could be spawned and never recorded, so never stopped.
            self._stopping = True
            try:
                await asyncio.wait_for(asyncio.shield(self._task), 10)
            except TimeoutError:
                self._task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await self._task
            self._task = None
        self.server.store.pod_grace = None
        await self.terminator.aclose()
        for info, _ in list(self._pods.values()):
            await self.backend.stop(info)
        self._pods.clear()
        await self.backend.aclose()

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        while not self._stopping:
            if loop.time() >= self._next_full:
                started = loop.time()
                await self.reconcile_all()
                self._next_full = loop.time() + max(self.resync, 10 * (loop.time() - started))
            else:
                await self.reconcile_changed()
            await self.server.log.wait(self.resync)
            await asyncio.sleep(0.01)  # let bursts of changes settle

    async def reconcile_all(self) -> None:
        """Reconcile every Deployment and stop the pods that are gone."""
        self._collect_changes()
        self._dirty.clear()
        self.full_passes += 1
        store = self.server.store
        await self._reconcile_each([d for _, d in store.iter_objects(DEPLOYMENTS)])
        pods = [obj for _, obj in store.iter_objects(PODS)]
        self.terminator.sweep(p for p in pods if p["metadata"].get("deletionTimestamp"))
        alive = {obj["metadata"]["uid"] for obj in pods}
        for uid in [uid for uid in self._pods if uid not in alive]:
            info, _ = self._pods.pop(uid)
            await self.backend.stop(info)

    async def reconcile_changed(self) -> None:
        """Reconcile the Deployments whose object or pods changed since the last pass."""
        self._collect_changes()
        dirty, self._dirty = self._dirty, set()
        deployments: list[Mapping[str, Any]] = []
        for namespace, name in sorted(dirty):
            with contextlib.suppress(kmock.KubernetesError):
                deployments.append(self.server.store.get(DEPLOYMENTS, namespace, name, shared=True))
        await self._reconcile_each(deployments)

    def _collect_changes(self) -> None:
        log = self.server.log
        for change in log.changes_after(self._position):
            self._position = change.version
            meta = change.object.get("metadata") or {}
            namespace = str(meta.get("namespace"))
            if change.key == _DEPLOYMENTS_KEY:
                self._dirty.add((namespace, str(meta.get("name"))))
            elif change.key == _PODS_KEY:
                if change.type != "DELETED" and meta.get("deletionTimestamp"):
                    self.terminator.begin(change.object)
                for ref in meta.get("ownerReferences") or []:
                    if ref.get("kind") == "Deployment":
                        self._dirty.add((namespace, str(ref.get("name"))))
        self._position = max(self._position, log.resource_version)

    async def _reconcile_each(self, deployments: Sequence[Mapping[str, Any]]) -> None:
        if not deployments:
            return
        self.passes += 1
        pods: dict[str, list[Mapping[str, Any]]] = {}
        for _, pod in self.server.store.iter_objects(PODS):
            for ref in pod["metadata"].get("ownerReferences") or []:
                pods.setdefault(ref.get("uid", ""), []).append(pod)
        for deployment in deployments:
            await self._reconcile(deployment, pods.get(deployment["metadata"]["uid"], []))

    async def _reconcile(
        self, deployment: Mapping[str, Any], pods: list[Mapping[str, Any]]
    ) -> None:
        """One Deployment (the stored dict, never mutated) with the pods it owns."""
        meta, spec = deployment["metadata"], deployment.get("spec") or {}
        if meta.get("deletionTimestamp"):
            return
        desired = int(spec.get("replicas", 1))
        current_hash = template_hash(spec.get("template") or {})
        keep = [
            p
            for p in pods
            if p["metadata"].get("labels", {}).get("pod-template-hash") == current_hash
            and not p["metadata"].get("deletionTimestamp")
        ]
        keep.sort(key=lambda p: int(p["metadata"]["resourceVersion"]))
        kept = {id(p) for p in keep[:desired]}
        for pod in [
            p for p in pods if id(p) not in kept and not p["metadata"].get("deletionTimestamp")
        ]:
            await self._delete_pod(pod)
        keep = keep[:desired]
        for _ in range(desired - len(keep)):
            keep.append(await self._create_pod(deployment, current_hash))
        override = (meta.get("annotations") or {}).get(HEALTH_ANNOTATION)
        states = [(True, await self._update_pod(pod, override)) for pod in keep]
        status = deployment_status(deployment, states, desired)
        if status == deployment.get("status"):
            return
        try:
            self.server.store.write(
                DEPLOYMENTS,
                meta["namespace"],
                meta["name"],
                dict(deployment, status=status),
                subresource="status",
            )
        except kmock.KubernetesError:  # changed meanwhile (409) or gone: the log says which
            self._dirty.add((meta["namespace"], meta["name"]))

    async def _create_pod(self, deployment: Mapping[str, Any], hash_: str) -> dict[str, Any]:
        meta = deployment["metadata"]
        template = copy.deepcopy((deployment.get("spec") or {}).get("template") or {})
        suffix = "".join(secrets.choice("bcdfghjklmnpqrstvwxz2456789") for _ in range(5))
        name = f"{meta['name']}-{hash_}-{suffix}"
        info = PodInfo(
            namespace=meta["namespace"], name=name, deployment=meta["name"], template=template
        )
        endpoint = await self.backend.start(info)
        tmeta = template.get("metadata") or {}
        annotations = dict(tmeta.get("annotations") or {})
        if endpoint.port is not None:
            annotations[PORT_ANNOTATION] = str(endpoint.port)
        body = {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {
                "name": name,
                "labels": {**(tmeta.get("labels") or {}), "pod-template-hash": hash_},
                "annotations": annotations,
                "ownerReferences": [
                    {
                        "apiVersion": "apps/v1",
                        "kind": "Deployment",
                        "name": meta["name"],
                        "uid": meta["uid"],
                        "controller": True,
                        "blockOwnerDeletion": True,
                    }
                ],
            },
            "spec": dict(template.get("spec") or {}, nodeName="tierwise-local"),
        }
        pod = self.server.store.create(PODS, meta["namespace"], body)
        self._pods[pod["metadata"]["uid"]] = (info, endpoint)
        return pod

    async def _delete_pod(self, pod: Mapping[str, Any]) -> None:
        """Delete like a ReplicaSet does: the API makes it terminating, or removes it."""
        meta = pod["metadata"]
        obj: Mapping[str, Any] = pod
        gone = True
        with contextlib.suppress(kmock.KubernetesError):  # already gone
            obj, gone = self.server.store.delete(PODS, meta["namespace"], meta["name"])
        if gone:
            await self._stop_pod(obj, None)
        else:
            self.terminator.begin(obj)

    async def _stop_pod(self, pod: Mapping[str, Any], grace: float | None) -> None:
        entry = self._pods.pop(pod["metadata"]["uid"], None)
        if entry is not None:
            await self.backend.stop(entry[0], grace if self.max_termination_grace > 0 else None)

    async def _update_pod(self, pod: Mapping[str, Any], override: str | None) -> PodState:
        entry = self._pods.get(pod["metadata"]["uid"])
        if entry is None:  # a pod this controller did not start (e.g. created by a test)
            return PodState(PodHealth.STARTING, "Unknown", "not started by the local runner")
        info, endpoint = entry
        state = await self.backend.state(info)
        if override:
            health = PodHealth(override)
            reason = "CrashLoopBackOff" if health == PodHealth.FAILING else None
            state = PodState(health, reason, state.message if reason else None, state.restarts)
        status = pod_status(state, endpoint, info.template, pod.get("status") or {})
        if status != pod.get("status"):
            with contextlib.suppress(kmock.KubernetesError):
                self.server.store.write(
                    PODS,
                    pod["metadata"]["namespace"],
                    pod["metadata"]["name"],
                    dict(pod, status=status),
                    subresource="status",
                    manager="kubelet",
                )
        return state
