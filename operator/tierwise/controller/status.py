"""Phase and conditions of a ModelDeployment, derived from what its children report.

Pure: observed Deployment and pods in, a status dict out. The phase is a summary for
people (``kubectl get md``); the conditions are the contract for machines, with reasons
from :class:`Reason`. ``lastTransitionTime`` moves only when a condition's status flips,
so writing the same status twice changes nothing.

Phase rules (first match wins): a spec problem with nothing running → Failed; no
Deployment → Pending; desired 0 → ScaledToZero; failing pods or a failed rollout with
nothing ready → Failed, with some ready → Degraded; all desired ready → Ready; else
Loading.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any, Protocol

from tierwise.api.common import ConditionStatus, ConditionType
from tierwise.api.model_deployment import AutoscalingMode, Phase
from tierwise.autoscaler.model import Decision, Limit

# Container waiting reasons that mean "this pod will not become ready by waiting".
FAILING_WAIT_REASONS = frozenset(
    {
        "CrashLoopBackOff",
        "ImagePullBackOff",
        "ErrImagePull",
        "InvalidImageName",
        "CreateContainerConfigError",
        "CreateContainerError",
        "RunContainerError",
    }
)


class Reason(StrEnum):
    """Why a condition has its status; machines match on these."""

    ALL_REPLICAS_READY = "AllReplicasReady"
    REPLICAS_NOT_READY = "ReplicasNotReady"
    SCALED_TO_ZERO = "ScaledToZero"
    CREATING = "Creating"
    LOADING = "Loading"
    ROLLING_OUT = "RollingOut"
    COMPLETE = "Complete"
    AS_EXPECTED = "AsExpected"
    PODS_FAILING = "PodsFailing"
    ROLLOUT_FAILED = "RolloutFailed"
    INVALID_SPEC = "InvalidSpec"
    MISSING_REFERENCE = "MissingReference"


@dataclass(frozen=True)
class Problem:
    """A spec error the schema could not catch, naming the field to change."""

    field: str
    message: str
    reason: Reason = Reason.INVALID_SPEC

    def __str__(self) -> str:
        return f"{self.field}: {self.message}"


@dataclass(frozen=True)
class Health:
    """What the children say: counts and the first failure found, if any."""

    exists: bool
    desired: int | None
    replicas: int = 0
    ready: int = 0
    updated: int = 0
    failure: str | None = None
    rolling: bool = False


def deployment_health(
    deployment: Mapping[str, Any] | None, pods: Sequence[Mapping[str, Any]]
) -> Health:
    """Read counts and failures from a Deployment and its pods (any may be missing)."""
    if deployment is None:
        return Health(exists=False, desired=None)
    spec, st = deployment.get("spec") or {}, deployment.get("status") or {}
    desired = spec.get("replicas")
    desired = int(desired) if desired is not None else 1
    failure = _pod_failure(pods) or _deployment_failure(st)
    generation = (deployment.get("metadata") or {}).get("generation")
    observed_gen = st.get("observedGeneration")
    updated = int(st.get("updatedReplicas") or 0)
    rolling = (generation is not None and observed_gen != generation) or updated < desired
    return Health(
        exists=True,
        desired=desired,
        replicas=int(st.get("replicas") or 0),
        ready=int(st.get("readyReplicas") or 0),
        updated=updated,
        failure=failure,
        rolling=rolling,
    )


def _deployment_failure(st: Mapping[str, Any]) -> str | None:
    for cond in st.get("conditions") or []:
        kind, status = cond.get("type"), cond.get("status")
        if kind == "ReplicaFailure" and status == "True":
            return f"ReplicaFailure: {cond.get('message') or cond.get('reason') or ''}".strip()
        if kind == "Progressing" and status == "False":
            return f"rollout stalled: {cond.get('reason') or ''} {cond.get('message') or ''}"
    return None


def _pod_failure(pods: Sequence[Mapping[str, Any]]) -> str | None:
    for pod in pods:
        statuses = (pod.get("status") or {}).get("containerStatuses") or []
        for container in statuses:
            waiting = (container.get("state") or {}).get("waiting") or {}
            if waiting.get("reason") in FAILING_WAIT_REASONS:
                name = (pod.get("metadata") or {}).get("name", "?")
                return f"pod {name}: {waiting['reason']} {waiting.get('message') or ''}".strip()
    return None


def phase_of(health: Health, problems: Sequence[Problem]) -> Phase:
    if problems and health.ready == 0:
        return Phase.FAILED
    if not health.exists:
        return Phase.PENDING
    if health.desired == 0:
        return Phase.SCALED_TO_ZERO
    if health.failure is not None:
        return Phase.DEGRADED if health.ready > 0 else Phase.FAILED
    if problems:
        return Phase.DEGRADED
    if health.desired is not None and health.ready >= health.desired:
        return Phase.READY
    return Phase.LOADING


@dataclass(frozen=True)
class ConditionValue:
    type: ConditionType
    status: ConditionStatus
    reason: Reason
    message: str


def conditions_of(
    health: Health, phase: Phase, problems: Sequence[Problem]
) -> list[ConditionValue]:
    """Ready, Progressing and Degraded, always all three, in that order."""
    t, f = ConditionStatus.TRUE, ConditionStatus.FALSE
    counts = f"{health.ready}/{health.desired if health.desired is not None else '?'} ready"
    if phase is Phase.READY:
        ready = ConditionValue(ConditionType.READY, t, Reason.ALL_REPLICAS_READY, counts)
    elif phase is Phase.SCALED_TO_ZERO:
        ready = ConditionValue(ConditionType.READY, f, Reason.SCALED_TO_ZERO, "desired is 0")
    else:
        ready = ConditionValue(ConditionType.READY, f, Reason.REPLICAS_NOT_READY, counts)
    if not health.exists and not problems:
        progressing = ConditionValue(ConditionType.PROGRESSING, t, Reason.CREATING, "")
    elif phase is Phase.LOADING:
        progressing = ConditionValue(ConditionType.PROGRESSING, t, Reason.LOADING, counts)
    elif health.rolling and health.failure is None and not problems:
        progressing = ConditionValue(ConditionType.PROGRESSING, t, Reason.ROLLING_OUT, counts)
    else:
        progressing = ConditionValue(ConditionType.PROGRESSING, f, Reason.COMPLETE, "")
    return [ready, progressing, _degraded(health, problems)]


def _degraded(health: Health, problems: Sequence[Problem]) -> ConditionValue:
    kind = ConditionType.DEGRADED
    if problems:
        message = "; ".join(str(p) for p in problems)
        return ConditionValue(kind, ConditionStatus.TRUE, problems[0].reason, message)
    if health.failure is not None:
        reason = Reason.PODS_FAILING if health.failure.startswith("pod ") else Reason.ROLLOUT_FAILED
        return ConditionValue(kind, ConditionStatus.TRUE, reason, health.failure)
    return ConditionValue(kind, ConditionStatus.FALSE, Reason.AS_EXPECTED, "")


class ConditionLike(Protocol):
    """A computed condition of either kind (ModelDeployment or RoutingPolicy)."""

    @property
    def type(self) -> ConditionType: ...
    @property
    def status(self) -> ConditionStatus: ...
    @property
    def reason(self) -> StrEnum: ...
    @property
    def message(self) -> str: ...


def render_conditions(
    values: Sequence[ConditionLike],
    previous: Sequence[Mapping[str, Any]],
    *,
    generation: int | None,
    now: datetime,
) -> list[dict[str, Any]]:
    """Conditions as written to status; a transition time survives while status holds."""
    before = {c.get("type"): c for c in previous}
    stamp = now.strftime("%Y-%m-%dT%H:%M:%SZ")
    rendered: list[dict[str, Any]] = []
    for value in values:
        old = before.get(value.type.value) or {}
        same = old.get("status") == value.status.value and old.get("lastTransitionTime")
        cond: dict[str, Any] = {
            "type": value.type.value,
            "status": value.status.value,
            "reason": value.reason.value,
            "message": value.message,
            "lastTransitionTime": old["lastTransitionTime"] if same else stamp,
        }
        if generation is not None:
            cond["observedGeneration"] = generation
        rendered.append(cond)
    return rendered


def autoscaling_status(
    decision: Decision, *, mode: AutoscalingMode, applied_at: datetime | None
) -> dict[str, Any]:
    """The status fields the autoscaler writes (pure; the reconcile writes the rest).

    ``desiredReplicas`` only when Tierwise owns replicas (mode ``tierwise``): in advisory
    and external modes the reconcile reports the Deployment's own count there; advisory
    mode's advice goes to ``advisedReplicas`` and ``lastScaleReason``. ``lastScaleTime``
    only when replicas were changed.
    """
    s = decision.signals
    observed = datetime.fromtimestamp(s.observed_at, UTC) if s.observed_at is not None else None
    signals = {
        "queueDepth": _rounded(s.queue_depth),
        "runningRequests": _rounded(s.running_requests),
        "kvCacheUsage": _rounded(s.kv_cache_usage),
        "gpuUtilization": _rounded(s.gpu_utilization),
        "routerDemand": _rounded(s.demand),
        "missing": [m.value for m in s.missing],
        "observedAt": _stamp(observed) if observed is not None else None,
    }
    limit = "" if decision.limit is Limit.NONE else f", limit {decision.limit}"
    out: dict[str, Any] = {
        "lastSignals": signals,
        "lastScaleReason": f"{decision.reason}{limit}: {decision.message}",
    }
    if mode is AutoscalingMode.TIERWISE:
        out["desiredReplicas"] = decision.desired
    elif mode is AutoscalingMode.ADVISORY:
        out["advisedReplicas"] = decision.desired
    if applied_at is not None:
        out["lastScaleTime"] = _stamp(applied_at)
    return out


def _rounded(value: float | None) -> float | None:
    return None if value is None else round(value, 4)


def _stamp(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
