"""The policies ``bench/autoscale.py`` compares, each a function of what a decision sees.

Why it exists: Tierwise's policy is judged against what a cluster would otherwise run, in
the same simulated fleet (``autoscale_sim``):

* ``tierwise_policy``: :func:`tierwise.autoscaler.policy.decide` with ``spec.autoscaling``
  fields (the CRD defaults unless given), fed what the operator's collector would hand it:
  the GPU signal a dcgm-exporter of the given kind would yield for the spec's ``gpuMetric``,
  and the fleet's cold start as the operator measures it on the pods;
* ``hpa_policy``: the Kubernetes HPA's algorithm and default behaviour on one metric;
* ``keda_policy``: KEDA's Prometheus scaler on the router's pending requests (an external
  metric with an average-value target: the HPA it creates asks ``ceil(total / target)``);
* ``static_policy``: a fixed count.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Callable
from enum import StrEnum

from autoscale_sim import Fleet, Policy, View

from tierwise.api.model_deployment import AutoscalingSpec, GPUMetric, ReplicasSpec
from tierwise.autoscaler.history import History
from tierwise.autoscaler.model import ReplicaSample, Signals
from tierwise.autoscaler.policy import decide
from tierwise.autoscaler.series import DCGM_GPU_UTIL, DCGM_SM_ACTIVE, DCGM_TENSOR_ACTIVE


class Exporter(StrEnum):
    """Which dcgm-exporter the simulated cluster runs, if any."""

    NONE = "none"
    PROFILING = "profiling"
    """dcp-metrics-included.csv plus SM activity: profiling ratios and GPU_UTIL."""
    UTIL_ONLY = "util-only"
    """default-counters.csv: DCGM_FI_DEV_GPU_UTIL, no profiling ratios."""


def gpu_reading(metric: GPUMetric, exporter: Exporter, view: View) -> tuple[float, str] | None:
    """What the collector hands the policy for ``metric`` from ``exporter`` (None: no data)."""
    if exporter is Exporter.NONE:
        return None
    if metric is GPUMetric.GPU_UTIL:
        return view.gpu_util, DCGM_GPU_UTIL
    if exporter is Exporter.UTIL_ONLY:
        return None
    name = DCGM_TENSOR_ACTIVE if metric is GPUMetric.TENSOR_ACTIVE else DCGM_SM_ACTIVE
    return view.gpu_activity, name


def tierwise_policy(
    fleet: Fleet, *, exporter: Exporter = Exporter.NONE, **fields: object
) -> Policy:
    """:func:`decide` with ``spec.autoscaling`` ``fields`` (CRD defaults otherwise)."""
    spec = AutoscalingSpec.model_validate(fields)
    bounds = ReplicasSpec(min=1, max=fleet.max_replicas)
    state = {"history": History()}

    def policy(view: View) -> int:
        if view.ready:
            gpu = gpu_reading(spec.gpu_metric, exporter, view)
            sample = ReplicaSample(
                "r",
                queue_depth=view.waiting / view.ready,
                running_requests=view.running / view.ready,
                kv_cache_usage=view.kv_cache_usage,
                gpu_utilization=gpu[0] if gpu else None,
                gpu_metric=gpu[1] if gpu else None,
                prompt_tokens_total=view.admitted / view.ready,
            )
            replicas = tuple(
                ReplicaSample(
                    f"r{i}",
                    sample.queue_depth,
                    sample.running_requests,
                    sample.kv_cache_usage,
                    sample.gpu_utilization,
                    sample.gpu_metric,
                    sample.prompt_tokens_total,
                )
                for i in range(view.ready)
            )
            demand = 0.0
        else:
            replicas, demand = (), float(view.waiting)
        signals = Signals(
            observed_at=view.now, replicas=replicas, demand=demand, cold_start=fleet.cold_start_s
        )
        decision = decide(
            spec,
            bounds,
            current=view.current,
            signals=signals,
            history=state["history"],
            now=view.now,
        )
        state["history"] = decision.history
        return decision.desired

    return policy


def hpa_policy(fleet: Fleet, metric: Callable[[View], float], target: float) -> Policy:
    """Kubernetes HPA defaults: tolerance 0.1, scale-up by max(4 pods, 100%) per 15 s with
    no window, scale-down to the highest recommendation of the last 300 s. ``metric`` is
    the per-replica value the HPA averages."""
    recent: deque[tuple[float, int]] = deque()

    def policy(view: View) -> int:
        if not view.ready:
            return view.current
        ratio = metric(view) / target
        wanted = view.current if abs(ratio - 1) <= 0.1 else math.ceil(view.current * ratio - 1e-9)
        wanted = min(max(wanted, 1), fleet.max_replicas)
        recent.append((view.now, wanted))
        while recent[0][0] < view.now - 300:
            recent.popleft()
        if wanted < view.current:
            wanted = min(view.current, max(n for _, n in recent))
        return min(wanted, view.current + max(4, view.current))

    return policy


def keda_policy(fleet: Fleet, threshold: float) -> Policy:
    """KEDA's Prometheus scaler on ``tierwise_router_pending_requests`` (requests the router
    holds, here the fleet's queue) with ``threshold`` per replica: the HPA it creates, on an
    external metric with an average-value target, wants ``ceil(pending / threshold)``.
    Metrics are read fresh at each decision (no KEDA polling or Prometheus scrape lag)."""
    return hpa_policy(fleet, lambda v: v.waiting / max(v.current, 1), threshold)


def static_policy() -> Policy:
    return lambda view: view.current
