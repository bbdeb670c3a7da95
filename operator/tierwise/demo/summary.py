"""What ``tierwise demo`` reports, as data: the summary behind the text, ``--json`` and
``--report``.

Why it exists: the demo's point is a readable answer to "what did the system do and what
did it save?". Routing decisions per kind and latency per tier come from what the client
saw (the ``x-tierwise-*`` headers); cost by tier, the all-frontier baseline and prefix
affinity from the router's own ``/metrics``; replicas, scale events and the policy's state
from the Kubernetes API, as the operator wrote them (:mod:`tierwise.demo.observe`). Every
figure is built here once (:class:`DemoSummary`), then printed (:mod:`tierwise.demo.text`),
dumped (:meth:`DemoSummary.to_json`) or drawn (:mod:`tierwise.demo.report`). Pure.
"""

from __future__ import annotations

import dataclasses
import itertools
from collections import Counter, defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from tierwise.demo.metrics import RouterMetrics
from tierwise.demo.observe import ScaleEvent
from tierwise.demo.player import PhaseRun
from tierwise.demo.traffic import Outcome
from tierwise.sim.driver import percentile

Point = tuple[float, int, int]
CostPoint = tuple[float, dict[str, float], float]


@dataclass(frozen=True, slots=True)
class DeploymentRow:
    """One ModelDeployment: its status at the end, and how its replicas moved."""

    name: str
    engine: str
    served_name: str
    ready: int
    desired: int
    phase: str
    tier: str = ""
    endpoints: tuple[str, ...] = ()
    """Ready replicas at the end, as its EndpointSlices list them (local URLs)."""
    min_replicas: int = 0
    max_replicas: int = 0
    timeline: tuple[Point, ...] = ()
    """``(seconds, desired, ready)`` at each change."""
    scale_events: tuple[ScaleEvent, ...] = ()
    peak_queue: float = 0.0
    """The most requests seen waiting on its engines at once."""

    @property
    def replica_seconds(self) -> float:
        """Ready replicas integrated over the timeline (what GPU time was held)."""
        return sum(a[2] * (b[0] - a[0]) for a, b in itertools.pairwise(self.timeline))

    def to_json(self) -> dict[str, Any]:
        out = {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}
        out["endpoints"] = list(self.endpoints)
        out["timeline"] = [list(p) for p in self.timeline]
        out["scale_events"] = [e.to_json() for e in self.scale_events]
        out["replica_seconds"] = round(self.replica_seconds, 2)
        return out


@dataclass(frozen=True, slots=True)
class TierRow:
    tier: str
    requests: int
    failed: int
    latency_p50_s: float
    latency_p95_s: float
    latency_p99_s: float
    prompt_tokens: int
    completion_tokens: int
    cached_tokens: int
    cost_dollars: float

    @property
    def cache_hit_rate(self) -> float | None:
        return self.cached_tokens / self.prompt_tokens if self.prompt_tokens else None


@dataclass(frozen=True, slots=True)
class BackendView:
    name: str
    ready: bool
    endpoints: int


@dataclass(frozen=True, slots=True)
class TierView:
    name: str
    ready: bool
    backends: tuple[BackendView, ...]


@dataclass(frozen=True, slots=True)
class PolicyView:
    """The RoutingPolicy as its status says (``kubectl get rp`` and a little more)."""

    name: str
    ready: str
    """The Ready condition's status: True, False or Unknown."""
    reason: str
    message: str
    table_version: str
    ready_tiers: str
    ready_routers: str
    tiers: tuple[TierView, ...]

    @classmethod
    def from_status(cls, name: str, status: Mapping[str, Any]) -> PolicyView:
        conditions = status.get("conditions") or []
        ready: Mapping[str, Any] = next((c for c in conditions if c.get("type") == "Ready"), {})
        tiers = tuple(
            TierView(
                str(t.get("name")),
                bool(t.get("ready")),
                tuple(_backend(b) for b in t.get("backends") or []),
            )
            for t in status.get("tiers") or []
        )
        return cls(
            name=name,
            ready=str(ready.get("status") or "Unknown"),
            reason=str(ready.get("reason") or ""),
            message=str(ready.get("message") or ""),
            table_version=str(status.get("tableVersion") or ""),
            ready_tiers=str(status.get("readyTiers") or ""),
            ready_routers=str(status.get("readyRouters") or ""),
            tiers=tiers,
        )


def _backend(body: Mapping[str, Any]) -> BackendView:
    return BackendView(
        str(body.get("name")), bool(body.get("ready")), int(body.get("endpoints") or 0)
    )


@dataclass(frozen=True, slots=True)
class WakeView:
    """The request sent to the tier at zero, and what happened to it."""

    model_deployment: str
    request_id: str
    kind: str
    tier: str
    status: int
    sent_s: float
    latency_s: float
    held: bool
    """The router reported requests held for the ModelDeployment while it was out."""
    from_zero: bool
    """The ModelDeployment had no replica wanted when it was sent."""

    @property
    def answered(self) -> bool:
        return 200 <= self.status < 300


@dataclass(frozen=True, slots=True)
class DemoSummary:
    """Everything the demo shows; ``to_json`` is the ``--json`` document."""

    deployments: tuple[DeploymentRow, ...]
    tiers: tuple[TierRow, ...]
    decisions: tuple[tuple[str, str, str, int], ...]  # (kind, tier, rule, count)
    requests: int
    failed: int
    wall_s: float
    """How long the traffic ran."""
    cost_dollars: float
    baseline_dollars: float
    affinity: dict[str, float]
    fallbacks: dict[str, float]
    errors: tuple[str, ...] = ()
    urls: dict[str, str] = field(default_factory=dict)
    """Where the router, the cluster and the frontier stand-in listened (or listen)."""
    policy: PolicyView | None = None
    phases: tuple[PhaseRun, ...] = ()
    wake: WakeView | None = None
    traffic: tuple[tuple[float, float], ...] = ()
    """Requests sent per second, by second of the traffic."""
    traffic_by_tier: dict[str, tuple[tuple[float, float], ...]] = field(default_factory=dict)
    """The same, per tier that answered."""
    cost_timeline: tuple[CostPoint, ...] = ()
    total_s: float = 0.0
    """From the command's start to this summary (start-up included)."""

    @property
    def saving_fraction(self) -> float:
        if self.baseline_dollars <= 0:
            return 0.0
        return 1.0 - self.cost_dollars / self.baseline_dollars

    @property
    def tier_order(self) -> list[str]:
        return [t.tier for t in self.tiers]

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "simulated": True,
            "requests": self.requests,
            "failed": self.failed,
            "wall_s": round(self.wall_s, 2),
            "total_s": round(self.total_s, 2),
            "cost_dollars": self.cost_dollars,
            "baseline_dollars": self.baseline_dollars,
            "saving_fraction": self.saving_fraction,
            "affinity": dict(self.affinity),
            "fallbacks": dict(self.fallbacks),
            "errors": list(self.errors),
            "urls": dict(self.urls),
            "tiers": [dataclasses.asdict(t) for t in self.tiers],
            "decisions": [
                dict(zip(("kind", "tier", "rule", "count"), d, strict=True)) for d in self.decisions
            ],
            "deployments": [d.to_json() for d in self.deployments],
            "policy": dataclasses.asdict(self.policy) if self.policy else None,
            "phases": [_phase_json(p) for p in self.phases],
            "wake": dataclasses.asdict(self.wake) | {"answered": self.wake.answered}
            if self.wake
            else None,
            "traffic": [list(p) for p in self.traffic],
            "traffic_by_tier": {t: [list(p) for p in s] for t, s in self.traffic_by_tier.items()},
            "cost_timeline": [[t, dict(c), b] for t, c, b in self.cost_timeline],
        }
        return out


def _phase_json(run: PhaseRun) -> dict[str, Any]:
    return {
        "name": run.phase.value,
        "title": run.title,
        "start": round(run.start_s, 2),
        "end": round(run.end_s, 2),
        "requests": run.requests,
    }


@dataclass(frozen=True)
class Observed:
    """What the demo saw of the system while the traffic ran."""

    deployments: Sequence[DeploymentRow]
    metrics: RouterMetrics
    policy: PolicyView | None = None
    phases: Sequence[PhaseRun] = ()
    wake: WakeView | None = None
    cost_timeline: Sequence[CostPoint] = ()
    urls: Mapping[str, str] = field(default_factory=dict)


def summarize(
    observed: Observed,
    outcomes: Sequence[Outcome],
    *,
    tier_order: Sequence[str],
    wall_s: float,
    total_s: float = 0.0,
) -> DemoSummary:
    """The summary of one run (tiers in ``tier_order``, cheapest first)."""
    by_tier: dict[str, list[Outcome]] = defaultdict(list)
    for outcome in outcomes:
        by_tier[outcome.tier or "(none)"].append(outcome)
    names = [*tier_order, *sorted(set(by_tier) - set(tier_order))]
    cost = observed.metrics.cost_by_tier
    tiers = tuple(_tier_row(t, by_tier.get(t, []), cost.get(t, 0.0)) for t in names)
    decisions = Counter((o.kind.value, o.tier or "(none)", o.rule or "(none)") for o in outcomes)
    failed = [o for o in outcomes if not o.ok]
    return DemoSummary(
        deployments=tuple(observed.deployments),
        tiers=tiers,
        decisions=tuple(
            (k, t, r, c) for (k, t, r), c in sorted(decisions.items(), key=_order(tier_order))
        ),
        requests=len(outcomes),
        failed=len(failed),
        wall_s=wall_s,
        cost_dollars=observed.metrics.cost,
        baseline_dollars=observed.metrics.baseline,
        affinity=dict(observed.metrics.affinity),
        fallbacks={k: v for k, v in observed.metrics.fallbacks.items() if v},
        errors=tuple(f"{o.request_id}: {o.status} {o.error or ''}".strip() for o in failed[:5]),
        urls=dict(observed.urls),
        policy=observed.policy,
        phases=tuple(observed.phases),
        wake=observed.wake,
        traffic=traffic_level(outcomes, wall_s),
        traffic_by_tier={t: traffic_level(by_tier.get(t, []), wall_s) for t in names},
        cost_timeline=tuple(observed.cost_timeline),
        total_s=total_s,
    )


def traffic_level(outcomes: Sequence[Outcome], until_s: float) -> tuple[tuple[float, float], ...]:
    """Requests sent in each second of the traffic, as ``(second, count)``."""
    counts = Counter(int(o.sent_s) for o in outcomes)
    return tuple((float(s), float(counts.get(s, 0))) for s in range(int(until_s) + 1))


def _order(tier_order: Sequence[str]) -> Any:
    rank = {t: i for i, t in enumerate(tier_order)}

    def key(item: tuple[tuple[str, str, str], int]) -> tuple[int, str, str]:
        (kind, tier, rule), _ = item
        return rank.get(tier, len(rank)), rule, kind

    return key


def _tier_row(tier: str, outcomes: Sequence[Outcome], cost: float) -> TierRow:
    ok = [o for o in outcomes if o.ok]
    latencies = [o.latency_s for o in ok]
    return TierRow(
        tier=tier,
        requests=len(outcomes),
        failed=len(outcomes) - len(ok),
        latency_p50_s=percentile(latencies, 50),
        latency_p95_s=percentile(latencies, 95),
        latency_p99_s=percentile(latencies, 99),
        prompt_tokens=sum(o.prompt_tokens for o in ok),
        completion_tokens=sum(o.completion_tokens for o in ok),
        cached_tokens=sum(o.cached_tokens for o in ok),
        cost_dollars=cost,
    )


def tier_of_deployments(tiers: Mapping[str, Sequence[str]]) -> dict[str, str]:
    """ModelDeployment name -> the first tier that lists it (for the tables)."""
    out: dict[str, str] = {}
    for tier, names in tiers.items():
        for name in names:
            out.setdefault(name, tier)
    return out
