"""The figures the demo reads from the router's and the engines' Prometheus ``/metrics``.

Why it exists: the demo shows the numbers a dashboard would, so it reads them where a
dashboard would. From the router (prefix ``tierwise_router_``): cost by tier and the
all-frontier baseline (``cost_dollars_total``, ``baseline_cost_dollars_total``), prefix
affinity and fallbacks, the requests it holds for a ModelDeployment at zero
(``pending_requests``, the operator's wake-up signal) and the ready replicas of its table
(``endpoints``). From each engine pod: its waiting queue under the engine's real metric
name (``vllm:num_requests_waiting``, ``sglang:num_queue_reqs``; from
:mod:`tierwise.engines`), the signal the autoscaler scales on. Pure: text in, numbers out.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass, field

from tierwise.autoscaler import demand
from tierwise.autoscaler.exposition import ExpositionError, parse
from tierwise.engines import engine_for

PREFIX = "tierwise_router_"


@dataclass(frozen=True, slots=True)
class RouterMetrics:
    """The router counters and gauges the demo reports (dollars, counts)."""

    cost_by_tier: dict[str, float] = field(default_factory=dict)
    baseline: float = 0.0
    affinity: dict[str, float] = field(default_factory=dict)
    fallbacks: dict[str, float] = field(default_factory=dict)
    requests: float = 0.0
    pending: dict[str, float] = field(default_factory=dict)
    """Requests held per ModelDeployment (the scale-from-zero demand)."""
    endpoints: dict[str, float] = field(default_factory=dict)
    """Ready replicas per backend in the router's table in use."""
    held_total: dict[str, float] = field(default_factory=dict)
    """Requests ever held per ModelDeployment (a counter: no hold is missed between polls)."""

    @property
    def cost(self) -> float:
        return sum(self.cost_by_tier.values())


def _add(into: dict[str, float], key: str, value: float) -> None:
    into[key] = into.get(key, 0.0) + value


_COST = PREFIX + "cost_dollars_total"
_BASELINE = PREFIX + "baseline_cost_dollars_total"
_AFFINITY = PREFIX + "prefix_affinity_total"
_FALLBACKS = PREFIX + "fallbacks_total"
_REQUESTS = PREFIX + "requests_total"
_ENDPOINTS = PREFIX + "endpoints"
_HELD_TOTAL = PREFIX + "held_requests_total"
_ROUTER_NAMES = (
    _COST,
    _BASELINE,
    _AFFINITY,
    _FALLBACKS,
    _REQUESTS,
    demand.PENDING_REQUESTS,
    _ENDPOINTS,
    _HELD_TOTAL,
)


def parse_router_metrics(text: str) -> RouterMetrics:
    """Read the router's Prometheus text exposition (raises :class:`ExpositionError` on
    a malformed line of a metric it reads)."""
    found = parse(text, _ROUTER_NAMES)

    def by(name: str, label: str) -> dict[str, float]:
        out: dict[str, float] = {}
        for sample in found.get(name, ()):
            _add(out, sample.labels.get(label, ""), sample.value)
        return out

    def total(name: str) -> float:
        return sum(sample.value for sample in found.get(name, ()))

    return RouterMetrics(
        by(_COST, "tier"),
        total(_BASELINE),
        by(_AFFINITY, "result"),
        by(_FALLBACKS, "reason"),
        total(_REQUESTS),
        by(demand.PENDING_REQUESTS, demand.MODEL_DEPLOYMENT_LABEL),
        by(_ENDPOINTS, "backend"),
        by(_HELD_TOTAL, demand.MODEL_DEPLOYMENT_LABEL),
    )


def merge(readings: Sequence[RouterMetrics]) -> RouterMetrics:
    """Several router replicas' metrics as one: counters and held requests add up (the
    operator sums the demand the same way); table endpoints are the most any replica has."""
    out = RouterMetrics()
    total = baseline = 0.0
    for reading in readings:
        for into, add in (
            (out.cost_by_tier, reading.cost_by_tier),
            (out.affinity, reading.affinity),
            (out.fallbacks, reading.fallbacks),
            (out.pending, reading.pending),
            (out.held_total, reading.held_total),
        ):
            for key, value in add.items():
                _add(into, key, value)
        for key, value in reading.endpoints.items():
            out.endpoints[key] = max(out.endpoints.get(key, 0.0), value)
        total += reading.requests
        baseline += reading.baseline
    return dataclasses.replace(out, requests=total, baseline=baseline)


def waiting_requests(engine: str, text: str) -> float | None:
    """The engine's waiting queue from its ``/metrics`` (None when absent or malformed)."""
    name = engine_for(engine).metrics.waiting_requests
    try:
        samples = parse(text, [name]).get(name, [])
    except ExpositionError:
        return None
    return sum(s.value for s in samples) if samples else None
