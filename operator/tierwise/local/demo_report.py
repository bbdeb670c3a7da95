"""What ``tierwise demo`` reports, built from the client's outcomes and the router's metrics.

Why it exists: the demo's point is a readable answer to "what did routing do and what did
it save?". Decisions per tier and rule and latency per tier come from what the client saw
(the ``x-tierwise-*`` headers); cost by tier, the all-frontier baseline and prefix
affinity come from the router's own ``/metrics`` (``tierwise_router_cost_dollars_total``,
``…_baseline_cost_dollars_total``, ``…_prefix_affinity_total``), so the numbers shown are
the ones a dashboard would show. Everything is data (:class:`DemoSummary`) first, then
text or JSON. Pure: no I/O here.
"""

from __future__ import annotations

import dataclasses
from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from prometheus_client.parser import text_string_to_metric_families

from tierwise.local.demo_traffic import Outcome
from tierwise.sim.driver import percentile

PREFIX = "tierwise_router_"


@dataclass(frozen=True, slots=True)
class RouterMetrics:
    """The router counters the demo reports (dollars, counts)."""

    cost_by_tier: dict[str, float] = field(default_factory=dict)
    baseline: float = 0.0
    affinity: dict[str, float] = field(default_factory=dict)
    fallbacks: dict[str, float] = field(default_factory=dict)
    requests: float = 0.0


def parse_router_metrics(text: str) -> RouterMetrics:
    """Read the router's Prometheus text exposition."""
    cost: dict[str, float] = {}
    affinity: dict[str, float] = {}
    fallbacks: dict[str, float] = {}
    baseline = requests = 0.0
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            name, labels, value = sample.name, sample.labels, float(sample.value)
            if name == PREFIX + "cost_dollars_total":
                cost[labels.get("tier", "")] = cost.get(labels.get("tier", ""), 0.0) + value
            elif name == PREFIX + "baseline_cost_dollars_total":
                baseline += value
            elif name == PREFIX + "prefix_affinity_total":
                affinity[labels.get("result", "")] = value
            elif name == PREFIX + "fallbacks_total":
                fallbacks[labels.get("reason", "")] = value
            elif name == PREFIX + "requests_total":
                requests += value
    return RouterMetrics(cost, baseline, affinity, fallbacks, requests)


@dataclass(frozen=True, slots=True)
class DeploymentRow:
    """One ModelDeployment as its status reports it."""

    name: str
    engine: str
    served_name: str
    ready: int
    desired: int
    phase: str
    tier: str = ""
    endpoints: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class TierRow:
    tier: str
    requests: int
    failed: int
    latency_p50_s: float
    latency_p99_s: float
    prompt_tokens: int
    completion_tokens: int
    cached_tokens: int
    cost_dollars: float


@dataclass(frozen=True, slots=True)
class DemoSummary:
    """Everything the demo shows; ``to_json`` is the ``--json`` document."""

    deployments: tuple[DeploymentRow, ...]
    tiers: tuple[TierRow, ...]
    decisions: tuple[tuple[str, str, str, int], ...]  # (kind, tier, rule, count)
    requests: int
    failed: int
    wall_s: float
    cost_dollars: float
    baseline_dollars: float
    affinity: dict[str, float]
    fallbacks: dict[str, float]
    errors: tuple[str, ...] = ()
    urls: dict[str, str] = field(default_factory=dict)
    """Where the router, the cluster and the frontier stand-in listened (or listen)."""

    @property
    def saving_fraction(self) -> float:
        if self.baseline_dollars <= 0:
            return 0.0
        return 1.0 - self.cost_dollars / self.baseline_dollars

    def to_json(self) -> dict[str, Any]:
        out = dataclasses.asdict(self)
        out["saving_fraction"] = self.saving_fraction
        out["decisions"] = [
            dict(zip(("kind", "tier", "rule", "count"), d, strict=True)) for d in self.decisions
        ]
        out["simulated"] = True
        return out


def summarize(
    deployments: Sequence[DeploymentRow],
    outcomes: Sequence[Outcome],
    metrics: RouterMetrics,
    *,
    tier_order: Sequence[str],
    wall_s: float,
    urls: Mapping[str, str] | None = None,
) -> DemoSummary:
    """The summary of one run (tiers in ``tier_order``, cheapest first)."""
    by_tier: dict[str, list[Outcome]] = defaultdict(list)
    for outcome in outcomes:
        by_tier[outcome.tier or "(none)"].append(outcome)
    names = [*tier_order, *sorted(set(by_tier) - set(tier_order))]
    tiers = tuple(_tier_row(t, by_tier.get(t, []), metrics.cost_by_tier.get(t, 0.0)) for t in names)
    decisions = Counter((o.kind.value, o.tier or "(none)", o.rule or "(none)") for o in outcomes)
    failed = [o for o in outcomes if not o.ok]
    return DemoSummary(
        deployments=tuple(deployments),
        tiers=tiers,
        decisions=tuple(
            (k, t, r, c) for (k, t, r), c in sorted(decisions.items(), key=_order(tier_order))
        ),
        requests=len(outcomes),
        failed=len(failed),
        wall_s=wall_s,
        cost_dollars=sum(metrics.cost_by_tier.values()),
        baseline_dollars=metrics.baseline,
        affinity=dict(metrics.affinity),
        fallbacks={k: v for k, v in metrics.fallbacks.items() if v},
        errors=tuple(f"{o.request_id}: {o.status} {o.error or ''}".strip() for o in failed[:5]),
        urls=dict(urls or {}),
    )


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
        latency_p99_s=percentile(latencies, 99),
        prompt_tokens=sum(o.prompt_tokens for o in ok),
        completion_tokens=sum(o.completion_tokens for o in ok),
        cached_tokens=sum(o.cached_tokens for o in ok),
        cost_dollars=cost,
    )


def _table(header: Sequence[str], rows: Iterable[Sequence[object]]) -> list[str]:
    cells = [list(map(str, header)), *[list(map(str, r)) for r in rows]]
    widths = [max(len(row[i]) for row in cells) for i in range(len(header))]
    return [
        "  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip() for row in cells
    ]


def format_deployments(rows: Sequence[DeploymentRow]) -> list[str]:
    """The ModelDeployment table, as ``kubectl get md`` would show it plus the tier."""
    return _table(
        ("NAME", "ENGINE", "SERVED AS", "READY", "PHASE", "TIER", "REPLICAS (local URLs)"),
        [
            (
                r.name,
                r.engine,
                r.served_name,
                f"{r.ready}/{r.desired}",
                r.phase,
                r.tier or "-",
                " ".join(r.endpoints) or "-",
            )
            for r in rows
        ],
    )


def _money(value: float) -> str:
    return f"${value:.4f}" if value >= 0.01 else f"${value:.6f}"


def format_summary(summary: DemoSummary) -> list[str]:
    """The human-readable report (every figure is from simulated engines)."""
    lines = ["Routing decisions (from the x-tierwise-tier / x-tierwise-rule headers):"]
    lines += [
        "  " + line
        for line in _table(
            ("KIND", "TIER", "RULE", "REQUESTS"), [(k, t, r, c) for k, t, r, c in summary.decisions]
        )
    ]
    lines += ["", "Per tier (simulated latency; cost from the router's /metrics):"]
    lines += [
        "  " + line
        for line in _table(
            ("TIER", "REQUESTS", "FAILED", "P50", "P99", "TOKENS IN/OUT", "CACHED IN", "COST"),
            [
                (
                    t.tier,
                    t.requests,
                    t.failed,
                    f"{t.latency_p50_s * 1e3:.0f} ms",
                    f"{t.latency_p99_s * 1e3:.0f} ms",
                    f"{t.prompt_tokens}/{t.completion_tokens}",
                    f"{t.cached_tokens / t.prompt_tokens:.0%}" if t.prompt_tokens else "-",
                    _money(t.cost_dollars),
                )
                for t in summary.tiers
            ],
        )
    ]
    hits, misses = summary.affinity.get("hit", 0.0), summary.affinity.get("miss", 0.0)
    lines += [
        "",
        f"Prefix affinity: {hits:.0f} hits, {misses:.0f} misses "
        "(a hit lands on the replica that already holds the prompt's prefix).",
        f"Fallbacks: {', '.join(f'{k}={v:.0f}' for k, v in summary.fallbacks.items()) or 'none'}.",
        f"Requests: {summary.requests} sent, {summary.failed} failed, in {summary.wall_s:.1f} s.",
        "",
        f"Cost (simulated): {_money(summary.cost_dollars)} with tier routing vs "
        f"{_money(summary.baseline_dollars)} if every request went to the frontier tier: "
        f"{summary.saving_fraction:.1%} saved.",
    ]
    lines += [f"  failed: {e}" for e in summary.errors]
    return lines


def tier_of_deployments(tiers: Mapping[str, Sequence[str]]) -> dict[str, str]:
    """ModelDeployment name -> the first tier that lists it (for the table)."""
    out: dict[str, str] = {}
    for tier, names in tiers.items():
        for name in names:
            out.setdefault(name, tier)
    return out
