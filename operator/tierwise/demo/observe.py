"""What the demo watches while its traffic runs: replicas, queues, scale events, cost.

Why it exists: the point of the demo is to see the control loop move, so twice a second it
reads, through public interfaces only, what a person would look at with ``kubectl`` and a
dashboard:

* the Kubernetes API: each ModelDeployment's Deployment (``spec.replicas``, the count the
  autoscaler set, and ``status.readyReplicas``), its status phase, the operator's scale
  Events (``ScaledUp``/``ScaledDown``/``ScaledToZero``/``ScaledFromZero``, message
  ``1 -> 3 (QueueDepth): ...``), and the RoutingPolicy's status;
* every router pod's ``/metrics`` (:mod:`tierwise.demo.metrics`), added up as the
  operator adds them: cost by tier and the all-frontier baseline, requests held for a
  tier at zero, the replicas in its table (a Service would reach one pod per request);
* each ready engine pod's ``/metrics`` (the local port the embedded cluster annotates):
  the waiting queue under the engine's real metric name.

It keeps the history the summary and the report need: per ModelDeployment a timeline of
``(seconds, desired, ready)`` points (one per change), the scale events with the time they
were seen, the cost over time and the most requests seen held per ModelDeployment. Times
are on the demo's clock (seconds since the traffic began); an event is timed when it is
first seen, within one poll.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import aiohttp

from tierwise.demo.metrics import RouterMetrics, merge, parse_router_metrics, waiting_requests
from tierwise.manifests.labels import MODEL_DEPLOYMENT_LABEL, label_value
from tierwise.manifests.router_names import ROUTING_POLICY_LABEL

PORT_ANNOTATION = "local.tierwise.dev/port"
"""Where the embedded cluster publishes a pod's local port (its pods share 127.0.0.1)."""
SCALE_REASONS = ("ScaledUp", "ScaledDown", "ScaledToZero", "ScaledFromZero")
_CHANGE = re.compile(r"^\s*(\d+)\s*->\s*(\d+)\s*\(([^)]*)\):?\s*(.*)$", re.DOTALL)


@dataclass(frozen=True, slots=True)
class ScaleEvent:
    """One replica change the operator announced (an Event on the ModelDeployment)."""

    time_s: float
    model_deployment: str
    from_replicas: int
    to_replicas: int
    reason: str
    """The autoscaler's reason (``QueueDepth``, ``Idle``, ``Activation``, ...)."""
    event: str
    """The Event's reason (``ScaledUp``, ...)."""
    message: str

    def to_json(self) -> dict[str, Any]:
        return {
            "time": round(self.time_s, 2),
            "from": self.from_replicas,
            "to": self.to_replicas,
            "reason": self.reason,
            "event": self.event,
            "message": self.message,
        }


def scale_event(body: Mapping[str, Any], time_s: float) -> ScaleEvent | None:
    """The ScaleEvent an Event object records, or None for any other event."""
    involved = body.get("involvedObject") or {}
    if involved.get("kind") != "ModelDeployment" or body.get("reason") not in SCALE_REASONS:
        return None
    match = _CHANGE.match(str(body.get("message") or ""))
    if match is None:
        return None
    before, after, reason, text = match.groups()
    return ScaleEvent(
        time_s, str(involved.get("name")), int(before), int(after), reason, body["reason"], text
    )


@dataclass(frozen=True, slots=True)
class DeploymentState:
    desired: int = 0
    ready: int = 0
    queue: float | None = None
    """Waiting requests summed over ready replicas (None when none could be read)."""
    phase: str = "-"


@dataclass(frozen=True, slots=True)
class Snapshot:
    """One reading of everything, at ``time_s``."""

    time_s: float
    deployments: dict[str, DeploymentState]
    router: RouterMetrics
    policy: dict[str, Any]
    """The RoutingPolicy's status as the operator wrote it."""


@dataclass
class Observer:
    """Polls the cluster, the router and the engines; keeps the history (module docs)."""

    api_url: str
    namespace: str
    deployments: Mapping[str, str]
    """ModelDeployment name -> engine (``vllm``, ``sglang``)."""
    policy: str
    clock: Callable[[], float]
    timelines: dict[str, list[tuple[float, int, int]]] = field(default_factory=dict)
    events: list[ScaleEvent] = field(default_factory=list)
    costs: list[tuple[float, dict[str, float], float]] = field(default_factory=list)
    held: dict[str, float] = field(default_factory=dict)
    """The most requests seen held by the router per ModelDeployment."""
    holds: list[tuple[float, str, float]] = field(default_factory=list)
    """``(seconds, ModelDeployment, requests)`` whenever the router held requests."""
    peaks: dict[str, float] = field(default_factory=dict)
    """The longest waiting queue seen per ModelDeployment."""
    latest: Snapshot | None = None
    _seen_events: set[str] = field(default_factory=set)
    _primed: bool = False
    _http: aiohttp.ClientSession | None = None

    async def __aenter__(self) -> Observer:
        self._http = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=2))
        return self

    async def __aexit__(self, *_: object) -> None:
        if self._http is not None:
            await self._http.close()
            self._http = None

    async def poll(self) -> Snapshot:
        """One reading; also appends to the history. New events are returned by
        :meth:`new_events` (call it after each poll)."""
        now = self.clock()
        apps, mds, pods, policy = await asyncio.gather(
            self._get(f"/apis/apps/v1/namespaces/{self.namespace}/deployments"),
            self._get(f"/apis/tierwise.dev/v1alpha1/namespaces/{self.namespace}/modeldeployments"),
            self._get(f"/api/v1/namespaces/{self.namespace}/pods"),
            self._get(
                f"/apis/tierwise.dev/v1alpha1/namespaces/{self.namespace}/routingpolicies/"
                + self.policy
            ),
        )
        items = (pods or {}).get("items") or []
        queues, router = await asyncio.gather(self._queues(items), self._routers(items))
        states = self._states(apps, mds, queues)
        snapshot = Snapshot(now, states, router, dict((policy or {}).get("status") or {}))
        self._record(snapshot)
        return snapshot

    async def new_events(self) -> list[ScaleEvent]:
        """Scale events not seen before (the first call only primes: those are history)."""
        body = await self._get(f"/api/v1/namespaces/{self.namespace}/events")
        fresh: list[ScaleEvent] = []
        for item in sorted(
            (body or {}).get("items") or [],
            key=lambda e: int((e.get("metadata") or {}).get("resourceVersion") or 0),
        ):
            uid = str((item.get("metadata") or {}).get("uid") or item["metadata"].get("name"))
            if uid in self._seen_events:
                continue
            self._seen_events.add(uid)
            event = scale_event(item, self.clock())
            if event is not None and self._primed and event.model_deployment in self.deployments:
                fresh.append(event)
        self._primed = True
        self.events += fresh
        return fresh

    # -- reading -------------------------------------------------------------------------
    async def _get(self, path: str) -> dict[str, Any] | None:
        assert self._http is not None
        try:
            async with self._http.get(self.api_url + path) as response:
                if response.status != 200:
                    return None
                body: dict[str, Any] = await response.json()
                return body
        except (aiohttp.ClientError, TimeoutError, ValueError):
            return None

    async def _text(self, url: str) -> str | None:
        assert self._http is not None
        try:
            async with self._http.get(url) as response:
                return await response.text() if response.status == 200 else None
        except (aiohttp.ClientError, TimeoutError):
            return None

    async def _routers(self, pods: Sequence[Mapping[str, Any]]) -> RouterMetrics:
        """The policy's router pods' metrics, added up."""
        wanted = label_value(self.policy)
        urls = [
            url
            for pod in pods
            if (
                _labels(pod).get(ROUTING_POLICY_LABEL) == wanted
                and _labels(pod).get("app.kubernetes.io/component") == "router"
            )
            and (url := _local_url(pod)) is not None
        ]
        texts = await asyncio.gather(*(self._text(url + "/metrics") for url in urls))
        return merge([parse_router_metrics(t) for t in texts if t is not None])

    async def _queues(self, pods: Sequence[Mapping[str, Any]]) -> dict[str, float | None]:
        """Waiting requests per ModelDeployment, summed over its ready engine pods."""
        labels = {label_value(name): name for name in self.deployments}
        targets: list[tuple[str, str]] = []
        for pod in pods:
            owner = labels.get(_labels(pod).get(MODEL_DEPLOYMENT_LABEL, ""))
            url = _local_url(pod)
            if owner and url:
                targets.append((owner, url + "/metrics"))
        texts = await asyncio.gather(*(self._text(url) for _, url in targets))
        out: dict[str, float | None] = {}
        for (owner, _), text in zip(targets, texts, strict=True):
            value = waiting_requests(self.deployments[owner], text) if text else None
            if value is not None:
                out[owner] = (out.get(owner) or 0.0) + value
        return out

    def _states(
        self,
        apps: Mapping[str, Any] | None,
        mds: Mapping[str, Any] | None,
        queues: Mapping[str, float | None],
    ) -> dict[str, DeploymentState]:
        labels = {label_value(name): name for name in self.deployments}
        found: dict[str, tuple[int, int]] = {}
        for item in (apps or {}).get("items") or []:
            label = ((item.get("metadata") or {}).get("labels") or {}).get(MODEL_DEPLOYMENT_LABEL)
            if label in labels:
                spec, status = item.get("spec") or {}, item.get("status") or {}
                found[labels[label]] = (
                    int(spec.get("replicas", 1)),
                    int(status.get("readyReplicas") or 0),
                )
        phases = {
            (m.get("metadata") or {}).get("name"): (m.get("status") or {}).get("phase") or "-"
            for m in (mds or {}).get("items") or []
        }
        return {
            name: DeploymentState(*found.get(name, (0, 0)), queues.get(name), phases.get(name, "-"))
            for name in self.deployments
        }

    def _record(self, snapshot: Snapshot) -> None:
        self.latest = snapshot
        for name, state in snapshot.deployments.items():
            line = self.timelines.setdefault(name, [])
            point = (round(snapshot.time_s, 2), state.desired, state.ready)
            if not line or line[-1][1:] != point[1:]:
                line.append(point)
            if state.queue is not None and state.queue > self.peaks.get(name, 0.0):
                self.peaks[name] = state.queue
        for name, value in snapshot.router.pending.items():
            if value > 0:
                self.holds.append((round(snapshot.time_s, 2), name, value))
            if value > self.held.get(name, 0.0):
                self.held[name] = value
        self.costs.append(
            (
                round(snapshot.time_s, 2),
                dict(snapshot.router.cost_by_tier),
                snapshot.router.baseline,
            )
        )

    def close_timelines(self, time_s: float) -> None:
        """End every timeline with a point at ``time_s`` (the charts draw to the end)."""
        for line in self.timelines.values():
            if line and line[-1][0] < time_s:
                line.append((round(time_s, 2), line[-1][1], line[-1][2]))

    async def run(
        self,
        stop: asyncio.Event,
        on_snapshot: Callable[[Snapshot, list[ScaleEvent]], None],
        interval_s: float = 0.5,
    ) -> None:
        """Poll every ``interval_s`` until ``stop`` is set, handing each reading on."""
        while not stop.is_set():
            snapshot = await self.poll()
            on_snapshot(snapshot, await self.new_events())
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), interval_s)


def _labels(pod: Mapping[str, Any]) -> Mapping[str, str]:
    return (pod.get("metadata") or {}).get("labels") or {}


def _local_url(pod: Mapping[str, Any]) -> str | None:
    """``http://IP:PORT`` of a ready pod that is not being deleted, else None."""
    meta, status = pod.get("metadata") or {}, pod.get("status") or {}
    port = (meta.get("annotations") or {}).get(PORT_ANNOTATION)
    conditions = status.get("conditions") or []
    ready = any(c.get("type") == "Ready" and c.get("status") == "True" for c in conditions)
    if not ready or not port or not status.get("podIP") or meta.get("deletionTimestamp"):
        return None
    return f"http://{status['podIP']}:{port}"
