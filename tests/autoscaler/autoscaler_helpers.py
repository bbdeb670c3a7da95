"""Builders shared by the autoscaler tests: specs, uniform signal readings, a decision loop."""

from __future__ import annotations

from typing import Any

from tierwise.api.model_deployment import AutoscalingSpec, ReplicasSpec
from tierwise.autoscaler.history import History
from tierwise.autoscaler.model import Decision, ReplicaSample, Signals
from tierwise.autoscaler.policy import decide


def spec(**fields: Any) -> AutoscalingSpec:
    return AutoscalingSpec.model_validate(fields)


def bounds(lo: int = 1, hi: int = 10, target: int | None = None) -> ReplicasSpec:
    return ReplicasSpec(min=lo, max=hi, target=target)


def reading(
    replicas: int,
    *,
    at: float = 0.0,
    queue: float | None = 0.0,
    kv: float | None = 0.0,
    running: float | None = 0.0,
    gpu: float | None = None,
    demand: float | None = 0.0,
    tokens: float | None = None,
    gpu_metric: str | None = None,
    cold_start: float | None = None,
) -> Signals:
    """``replicas`` pods each reporting the same per-replica values."""
    samples = tuple(
        ReplicaSample(
            pod=f"pod-{i}",
            queue_depth=queue,
            running_requests=running,
            kv_cache_usage=kv,
            gpu_utilization=gpu,
            gpu_metric=gpu_metric,
            prompt_tokens_total=tokens,
        )
        for i in range(replicas)
    )
    return Signals(observed_at=at, replicas=samples, demand=demand, cold_start=cold_start)


def spread(
    replicas: int, *, at: float, waiting: float, kv_load: float, demand: float = 0.0
) -> Signals:
    """A fixed total load shared by ``replicas`` pods (constant load, whatever the count)."""
    if replicas == 0:
        return Signals(observed_at=at, demand=demand)
    busy = waiting > 0 or kv_load > 0
    return reading(
        replicas,
        at=at,
        queue=waiting / replicas,
        kv=kv_load / replicas,
        running=1.0 if busy else 0.0,
        demand=demand,
    )


def run(
    autoscaling: AutoscalingSpec,
    replicas: ReplicasSpec,
    *,
    start: int,
    load: Any,
    seconds: float,
    step: float = 15.0,
) -> list[Decision]:
    """Decide every ``step`` seconds with ``load(t, current) -> Signals``, applying each."""
    history = History()
    current = start
    out: list[Decision] = []
    t = 0.0
    while t <= seconds:
        decision = decide(
            autoscaling, replicas, current=current, signals=load(t, current), history=history, now=t
        )
        out.append(decision)
        history = decision.history
        if decision.apply:
            current = decision.desired
        t += step
    return out
