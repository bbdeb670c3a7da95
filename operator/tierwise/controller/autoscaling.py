"""The autoscaling timer body: collect → decide → apply → status, events and metrics.

Why it exists: the policy (:mod:`tierwise.autoscaler.policy`) is pure and the collector
(:mod:`tierwise.autoscaler.signals`) only reads; something has to run them for every
ModelDeployment on its own ``spec.autoscaling.interval`` and act on the answer. That is
this module, kept thin:

* **Cadence.** kopf timers have one fixed interval per handler, so the timer ticks every
  :attr:`AutoscalerSettings.tick_s` (5 s by default) for every ModelDeployment that
  autoscales (kopf runs none for the others) and :meth:`Autoscaler.tick` skips the object
  until its own interval has passed. The Deployment and the pods are read from the
  operator's in-memory view (:mod:`tierwise.controller.cluster_view`) when it has one. The first
  tick comes one period after the object is seen, so an operator (re)start resumes every
  object before it reads any metrics.
* **Memory.** The policy's :class:`~tierwise.autoscaler.history.History` (stabilisation
  windows, idle clock) is kept in memory per object, like kopf's ``memo``: persisting it
  would cost an API write per decision and an update event per write. A restarted
  operator starts a fresh history, which the policy treats conservatively (no scale-down
  and no scale to zero before one full window has passed).
* **Apply.** ``spec.replicas`` of the Deployment, by server-side apply under the field
  manager ``tierwise-autoscaler`` with only that field (the manager that has owned it since
  the Deployment was created; ``tierwise`` leaves it out of its applies), so nothing
  fights over it. Before a scale-down every remaining pod gets
  ``controller.kubernetes.io/pod-deletion-cost`` so the ReplicaSet removes the cheapest.
* **Modes.** ``tierwise`` applies; ``advisory`` reports the same decision (status,
  metrics, an ``AutoscalerAdvice`` event when the advice changes) and writes nothing else;
  ``external`` never writes replicas and says ``ExternalOwner`` in status;
  ``enabled: false`` is skipped entirely (the reconcile owns replicas then).
* **Status.** ``lastSignals``, ``lastScaleReason`` (reason, limit and message),
  ``desiredReplicas`` (mode ``tierwise`` only) and ``lastScaleTime`` (when replicas
  changed), merge-patched when the decision changes, and at most every
  :attr:`AutoscalerSettings.status_refresh_s` otherwise (signals move every reading;
  writing them each time would be an API write per interval per object).
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import aiohttp

from tierwise.api.common import parse_duration
from tierwise.api.model_deployment import AutoscalingMode, ModelDeployment
from tierwise.autoscaler import coldstart
from tierwise.autoscaler.deletion_cost import deletion_costs
from tierwise.autoscaler.history import History
from tierwise.autoscaler.model import Decision, Direction, Signals
from tierwise.autoscaler.policy import decide
from tierwise.autoscaler.signals import DEFAULT_TIMEOUT_S, SourceConfig, Workload, collect
from tierwise.controller import checks, errors
from tierwise.controller.kube import KubeClient
from tierwise.controller.metrics import OperatorMetrics
from tierwise.controller.plan import AUTOSCALER_FIELD_MANAGER, EventType
from tierwise.controller.pods import (
    ROUTER_SELECTOR,
    PodAddress,
    annotate_deletion_costs,
    engine_targets,
    router_metrics_urls,
)
from tierwise.controller.resources import DEPLOYMENT, MODEL_DEPLOYMENT, POD
from tierwise.controller.status import autoscaling_status
from tierwise.engines import engine_for
from tierwise.manifests.labels import MODEL_DEPLOYMENT_LABEL, label_value

if TYPE_CHECKING:
    from tierwise.controller.cluster_view import ClusterView

log = logging.getLogger(__name__)
KIND = "Autoscaler"
ADVICE_EVENT = "AutoscalerAdvice"


@dataclass(frozen=True)
class AutoscalerSettings:
    """Operator-wide autoscaler settings (``tierwise operator`` options)."""

    tick_s: float = 5.0
    """The kopf timer's period; each object still runs on its own ``interval``."""
    router_metrics_urls: tuple[str, ...] = ()
    """Router ``/metrics`` URLs read for every ModelDeployment (``--router-metrics-url``)."""
    discover_routers: bool = True
    """Also scrape ready pods labelled ``app.kubernetes.io/component=router`` in the
    ModelDeployment's namespace."""
    pod_address: PodAddress = PodAddress.POD_IP
    scrape_timeout_s: float = DEFAULT_TIMEOUT_S
    status_refresh_s: float = 60.0
    dcgm_urls: Mapping[str, str] = field(default_factory=dict)
    """Node name → dcgm-exporter /metrics URL (``--dcgm-url NODE=URL``), read for the pods
    on that node (the GPU signal: status, the opt-in guard, scaleUpOnGPUUtilization)."""
    dcgm_shared_urls: tuple[str, ...] = ()
    """dcgm-exporter /metrics URLs read for every ModelDeployment whatever node its pods
    are on (``--dcgm-url URL``); series are matched to pods by their labels."""


@dataclass
class _Memo:
    history: History = field(default_factory=History)
    due_at: float = 0.0
    """Monotonic time of the next decision."""
    written: tuple[object, ...] | None = None
    """What the last status write said (desired, current, reason, limit, mode)."""
    written_at: float = 0.0
    advised: tuple[int, int] | None = None
    """(current, desired) of the last advisory event."""


class Autoscaler:
    """Runs the policy for each ModelDeployment; one per operator run."""

    def __init__(
        self,
        kube: KubeClient,
        metrics: OperatorMetrics,
        settings: AutoscalerSettings | None = None,
        *,
        clock: Callable[[], float] = time.time,
        monotonic: Callable[[], float] = time.monotonic,
        view: ClusterView | None = None,
    ) -> None:
        self.kube = kube
        self.view = view
        """Where the Deployment and the pods are read; None: from the API server."""
        self.metrics = metrics
        self.settings = settings or AutoscalerSettings()
        self.clock = clock
        self.monotonic = monotonic
        self._memos: dict[tuple[str, str], _Memo] = {}
        self._session: aiohttp.ClientSession | None = None

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    def forget(self, namespace: str, name: str) -> None:
        """The object is gone: drop its history and its metric series."""
        self._memos.pop((namespace, name), None)
        for gauge in (self.metrics.desired_replicas, self.metrics.current_replicas):
            with contextlib.suppress(KeyError):
                gauge.remove(namespace, name)

    async def tick_safely(self, body: Mapping[str, Any]) -> Decision | None:
        """:meth:`tick`, with failures logged and counted: the next tick is the retry."""
        try:
            return await self.tick(body)
        except Exception as exc:
            meta = body.get("metadata") or {}
            where = f"{meta.get('namespace')}/{meta.get('name')}"
            log.warning("autoscaling %s failed: %r", where, exc)
            self.metrics.errors.labels(kind=KIND, error=errors.error_label(exc)).inc()
            return None

    async def tick(self, body: Mapping[str, Any]) -> Decision | None:
        """One decision for ``body`` if its interval has passed; None when skipped."""
        md, _ = checks.parse(body)
        if md is None or not md.spec.autoscaling.enabled:
            return None
        key = _ref(md)
        memo = self._memos.setdefault(key, _Memo())
        now = self.monotonic()
        if now < memo.due_at:
            return None
        if self.view is not None:
            await self.view.synced()
            cached = self.view.get(DEPLOYMENT, *key)
            deployment = dict(cached) if cached is not None else None
        else:
            deployment = await self.kube.get(DEPLOYMENT, *key)
        if deployment is None:
            return None  # the reconcile creates it (with replicas.min); ask again next tick
        interval = parse_duration(md.spec.autoscaling.interval)
        memo.due_at = now + interval - min(self.settings.tick_s, interval) / 2
        current = int((deployment.get("spec") or {}).get("replicas", 1))
        decision, signals = await self._decide(md, memo, current)
        applied_at = await self._apply(md, decision, signals)
        await self._record(md, body, decision, applied_at=applied_at, memo=memo)
        return decision

    # -- collect and decide ------------------------------------------------------------------
    async def _decide(
        self, md: ModelDeployment, memo: _Memo, current: int
    ) -> tuple[Decision, Signals]:
        namespace, name = _ref(md)
        labels = {MODEL_DEPLOYMENT_LABEL: label_value(name)}
        if self.view is not None:
            pods = [dict(p) for p in self.view.pods(namespace, labels)]
        else:
            selector = f"{MODEL_DEPLOYMENT_LABEL}={label_value(name)}"
            pods = await self.kube.list(POD, namespace, label_selector=selector)
        engine = engine_for(md.spec.engine.name)
        address = self.settings.pod_address
        targets = engine_targets(pods, address, metrics_path=engine.metrics_path)
        config = SourceConfig.from_spec(
            md.spec.autoscaling.metrics,
            router_urls=await self._router_urls(namespace),
            dcgm_urls=self.settings.dcgm_urls,
            dcgm_shared_urls=self.settings.dcgm_shared_urls,
            gpu_metric=md.spec.autoscaling.gpu_metric,
            timeout=self.settings.scrape_timeout_s,
        )
        workload = Workload(namespace, name, md.spec.engine.name, targets)
        signals = await collect(self._http(), config, workload, now=self.clock())
        signals = replace(signals, cold_start=coldstart.measured(pods))
        decision = decide(
            md.spec.autoscaling,
            md.spec.replicas,
            current=current,
            signals=signals,
            history=memo.history,
            now=signals.observed_at,
        )
        memo.history = decision.history
        return decision, signals

    async def _router_urls(self, namespace: str) -> list[str]:
        urls = list(self.settings.router_metrics_urls)
        if self.settings.discover_routers and self.view is not None:
            pods = [dict(p) for p in self.view.router_pods(namespace)]
            urls += router_metrics_urls(pods, self.settings.pod_address)
        elif self.settings.discover_routers:
            pods = await self.kube.list(POD, namespace, label_selector=ROUTER_SELECTOR)
            urls += router_metrics_urls(pods, self.settings.pod_address)
        return sorted(set(urls))

    def _http(self) -> aiohttp.ClientSession:
        if self._session is None:
            self._session = aiohttp.ClientSession()
        return self._session

    # -- act and report ------------------------------------------------------------------------
    async def _apply(
        self, md: ModelDeployment, decision: Decision, signals: Signals
    ) -> datetime | None:
        """Scale the Deployment when the decision says so; when it was done, or None."""
        if not decision.apply or not decision.changed:
            return None
        namespace, name = _ref(md)
        if decision.direction is Direction.DOWN and decision.desired > 0 and signals.replicas:
            await annotate_deletion_costs(self.kube, namespace, deletion_costs(signals.replicas))
        scale = {
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": {"name": name, "namespace": namespace},
            "spec": {"replicas": decision.desired},
        }
        await self.kube.apply(scale, manager=AUTOSCALER_FIELD_MANAGER)
        log.info("scaled %s/%s %s", namespace, name, _change(decision))
        return datetime.fromtimestamp(self.clock(), UTC)

    async def _record(
        self,
        md: ModelDeployment,
        body: Mapping[str, Any],
        decision: Decision,
        *,
        applied_at: datetime | None,
        memo: _Memo,
    ) -> None:
        namespace, name = _ref(md)
        mode = md.spec.autoscaling.mode
        self.metrics.scale_decisions.labels(
            direction=decision.direction.value, reason=decision.reason.value, mode=mode.value
        ).inc()
        self.metrics.desired_replicas.labels(namespace, name).set(decision.desired)
        self.metrics.current_replicas.labels(namespace, name).set(decision.current)
        said = (decision.desired, decision.current, decision.reason, decision.limit, mode)
        now = self.monotonic()
        stale = now - memo.written_at >= self.settings.status_refresh_s
        if applied_at is not None or said != memo.written or stale:
            status = autoscaling_status(decision, mode=mode, applied_at=applied_at)
            if not _shown(body, status):
                await self.kube.patch_status(MODEL_DEPLOYMENT, namespace, name, status)
            memo.written, memo.written_at = said, now
        note = self._note(decision, mode, applied=applied_at is not None, memo=memo)
        if note is not None:
            reason, message = note
            involved = {**body, "apiVersion": body.get("apiVersion"), "kind": body.get("kind")}
            await self.kube.post_event(
                involved, type=EventType.NORMAL.value, reason=reason, message=message
            )

    @staticmethod
    def _note(
        decision: Decision, mode: AutoscalingMode, *, applied: bool, memo: _Memo
    ) -> tuple[str, str] | None:
        """The event for this decision (reason, message), if it is news."""
        if applied:
            return _event_reason(decision), f"{_change(decision)}: {decision.message}"
        if mode is not AutoscalingMode.ADVISORY or not decision.changed:
            memo.advised = None
            return None
        advice = (decision.current, decision.desired)
        if advice == memo.advised:
            return None
        memo.advised = advice
        return ADVICE_EVENT, f"would scale {_change(decision)}: {decision.message}"


def _shown(body: Mapping[str, Any], status: Mapping[str, Any]) -> bool:
    """Whether the object's status already says ``status`` (reading times aside), so a
    restarted operator does not rewrite what its predecessor wrote."""
    old = body.get("status") or {}

    def timeless(value: Any) -> Any:
        return {k: v for k, v in (value or {}).items() if k != "observedAt"}

    return all(
        timeless(old.get(k)) == timeless(v) if k == "lastSignals" else old.get(k) == v
        for k, v in status.items()
    )


def _ref(md: ModelDeployment) -> tuple[str, str]:
    """(namespace, name); kopf bodies of a namespaced kind always carry the namespace."""
    return md.metadata.namespace or "default", md.metadata.name


def _change(decision: Decision) -> str:
    return f"{decision.current} -> {decision.desired} ({decision.reason})"


def _event_reason(decision: Decision) -> str:
    if decision.desired == 0:
        return "ScaledToZero"
    if decision.current == 0:
        return "ScaledFromZero"
    return "ScaledUp" if decision.direction is Direction.UP else "ScaledDown"
