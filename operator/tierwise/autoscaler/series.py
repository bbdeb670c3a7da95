"""Turn the raw series of one engine pod into a :class:`ReplicaSample` (pure).

Why it exists: the two signal sources (scraping pods, querying Prometheus) fetch the same
metrics in different shapes; both hand their series here, so a pod's reading means the same
whichever source is configured, and stale, NaN or absent values become ``None`` with a
problem line in exactly one place.

Reduction per pod: request counts and counters are summed over the pod's series (vLLM runs
one series per data-parallel engine); fractions are averaged. SGLang exports scheduler
gauges per tensor-parallel rank with the same value, so only ``tp_rank="0"`` is read.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from enum import Enum

from tierwise.api.model_deployment import GPUMetric
from tierwise.autoscaler.exposition import Sample
from tierwise.autoscaler.model import ReplicaSample
from tierwise.engines import EngineMetrics

DCGM_GPU_UTIL = "DCGM_FI_DEV_GPU_UTIL"
"""Percent of time any kernel ran: ~100 with a single request in flight."""
DCGM_SM_ACTIVE = "DCGM_FI_PROF_SM_ACTIVE"
"""Ratio of cycles an SM has a warp assigned (profiling; not in dcgm-exporter's defaults)."""
DCGM_TENSOR_ACTIVE = "DCGM_FI_PROF_PIPE_TENSOR_ACTIVE"
"""Ratio of cycles the tensor pipe is active (profiling; in dcp-metrics-included.csv)."""
_RATIOS = frozenset({DCGM_SM_ACTIVE, DCGM_TENSOR_ACTIVE})


def gpu_metric_names(choice: GPUMetric) -> tuple[str, ...]:
    """The dcgm-exporter series to read for ``choice``, most preferred first."""
    match choice:
        case GPUMetric.SM_ACTIVE:
            return (DCGM_SM_ACTIVE,)
        case GPUMetric.TENSOR_ACTIVE:
            return (DCGM_TENSOR_ACTIVE,)
        case GPUMetric.GPU_UTIL:
            return (DCGM_GPU_UTIL,)
        case _:
            return (DCGM_SM_ACTIVE, DCGM_TENSOR_ACTIVE)


class Reduce(Enum):
    SUM = "sum"
    MEAN = "mean"


def engine_names(metrics: EngineMetrics) -> list[str]:
    """Every metric name a replica sample needs from this engine."""
    names = [
        metrics.waiting_requests,
        metrics.running_requests,
        metrics.kv_cache_usage,
        metrics.prompt_tokens_total,
    ]
    for optional in (
        metrics.prefix_cache_hit_rate,
        metrics.prefix_cache_queries_total,
        metrics.prefix_cache_hits_total,
    ):
        if optional is not None:
            names.append(optional)
    return names


def replica_sample(
    pod: str,
    found: Mapping[str, Sequence[Sample]],
    *,
    metrics: EngineMetrics,
    now: float,
    stale_after: float,
    gpu: tuple[float, str] | None = None,
) -> tuple[ReplicaSample, list[str]]:
    """The pod's sample from its series, and a problem line per value left unknown."""
    problems: list[str] = []

    def read(name: str | None, how: Reduce) -> float | None:
        if name is None:
            return None
        value, problem = reduce_series(found.get(name, ()), how, now=now, stale_after=stale_after)
        if problem:
            problems.append(f"{pod}: {name} {problem}")
        return value

    sample = ReplicaSample(
        pod=pod,
        queue_depth=read(metrics.waiting_requests, Reduce.SUM),
        running_requests=read(metrics.running_requests, Reduce.SUM),
        kv_cache_usage=read(metrics.kv_cache_usage, Reduce.MEAN),
        gpu_utilization=gpu[0] if gpu else None,
        gpu_metric=gpu[1] if gpu else None,
        prompt_tokens_total=read(metrics.prompt_tokens_total, Reduce.SUM),
        prefix_cache_hit_rate=_hit_rate(found, metrics, now=now, stale_after=stale_after),
    )
    return sample, problems


def reduce_series(
    samples: Sequence[Sample], how: Reduce, *, now: float, stale_after: float
) -> tuple[float | None, str | None]:
    """Sum or mean of the fresh, finite values; ``None`` and the reason when there are none."""
    if not samples:
        return None, "absent"
    primary = [s for s in samples if s.labels.get("tp_rank", "0") == "0"] or list(samples)
    fresh = [s for s in primary if s.timestamp is None or now - s.timestamp <= stale_after]
    if not fresh:
        newest = max(s.timestamp or 0.0 for s in primary)
        return None, f"stale ({now - newest:.0f}s old > staleAfter {stale_after:g}s)"
    values = [s.value for s in fresh if math.isfinite(s.value) and s.value >= 0]
    if not values:
        return None, "not a finite non-negative number"
    total = sum(values)
    return (total if how is Reduce.SUM else total / len(values)), None


def _hit_rate(
    found: Mapping[str, Sequence[Sample]], metrics: EngineMetrics, *, now: float, stale_after: float
) -> float | None:
    """Prefix-cache hit rate: vLLM's hit/query token counters, or SGLang's gauge."""

    def value(name: str | None, how: Reduce) -> float | None:
        if name is None:
            return None
        return reduce_series(found.get(name, ()), how, now=now, stale_after=stale_after)[0]

    gauge = value(metrics.prefix_cache_hit_rate, Reduce.MEAN)
    if gauge is not None:
        return min(gauge, 1.0)
    hits = value(metrics.prefix_cache_hits_total, Reduce.SUM)
    queries = value(metrics.prefix_cache_queries_total, Reduce.SUM)
    if hits is None or queries is None:
        return None
    return min(hits / queries, 1.0) if queries > 0 else 0.0


def gpu_by_pod(
    found: Mapping[str, Sequence[Sample]],
    names: Sequence[str],
    *,
    namespace: str,
    now: float,
    stale_after: float,
) -> dict[str, tuple[float, str]]:
    """Per workload pod: the mean over its GPUs of the first of ``names`` (most preferred
    first) with a fresh value, as a percent, and that series' name. Pods are named by
    dcgm-exporter's ``pod``/``namespace`` labels, or ``exported_pod``/``exported_namespace``
    behind a Prometheus relabel."""
    out: dict[str, tuple[float, str]] = {}
    for name in names:
        scale = 100.0 if name in _RATIOS else 1.0
        for pod, value in _mean_by_pod(found.get(name, ()), namespace, now, stale_after).items():
            out.setdefault(pod, (value * scale, name))
    return out


def _mean_by_pod(
    samples: Sequence[Sample], namespace: str, now: float, stale_after: float
) -> dict[str, float]:
    by_pod: dict[str, list[Sample]] = {}
    for s in samples:
        pod = s.labels.get("exported_pod") or s.labels.get("pod")
        ns = s.labels.get("exported_namespace") or s.labels.get("namespace")
        if pod and ns == namespace:
            by_pod.setdefault(pod, []).append(s)
    out: dict[str, float] = {}
    for pod, series in by_pod.items():
        value, _ = reduce_series(series, Reduce.MEAN, now=now, stale_after=stale_after)
        if value is not None:
            out[pod] = value
    return out
