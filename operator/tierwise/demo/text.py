"""The demo's summary as text: the tables and lines printed at the end of a run.

Why it exists: :mod:`tierwise.demo.summary` holds the figures; this turns them into what a
person reads in a terminal, in the order the story happened (the policy, what each
ModelDeployment's replicas did and why, where each kind of request went, what each tier
cost and how fast it was, the wake-up, the saving). Pure.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from tierwise.demo.summary import DemoSummary, DeploymentRow, PolicyView


def table(header: Sequence[str], rows: Iterable[Sequence[object]]) -> list[str]:
    cells = [list(map(str, header)), *[list(map(str, r)) for r in rows]]
    widths = [max(len(row[i]) for row in cells) for i in range(len(header))]
    return [
        "  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip() for row in cells
    ]


def money(value: float) -> str:
    return f"${value:.4f}" if value >= 0.01 else f"${value:.6f}"


def ms(seconds: float) -> str:
    return f"{seconds * 1e3:.0f} ms"


def format_deployments(rows: Sequence[DeploymentRow]) -> list[str]:
    """The ModelDeployment table, as ``kubectl get md`` shows it plus tier and replicas."""
    return table(
        ("NAME", "ENGINE", "SERVED AS", "READY", "DESIRED", "PHASE", "TIER", "MIN-MAX"),
        [
            (
                r.name,
                r.engine,
                r.served_name,
                r.ready,
                r.desired,
                r.phase,
                r.tier or "-",
                f"{r.min_replicas}-{r.max_replicas}",
            )
            for r in rows
        ],
    )


def format_policy(policy: PolicyView) -> list[str]:
    tiers = "; ".join(
        f"{t.name}: "
        + ", ".join(f"{b.name} ({b.endpoints} ready)" for b in t.backends)
        + ("" if t.ready else " [not ready]")
        for t in policy.tiers
    )
    return [
        f"RoutingPolicy {policy.name}: Ready={policy.ready} ({policy.reason}), tiers "
        f"{policy.ready_tiers}, router {policy.ready_routers}, table {policy.table_version}",
        f"  {tiers}",
    ]


def _replicas(rows: Sequence[DeploymentRow]) -> list[str]:
    lines = ["Replicas (the operator's autoscaler, from the engines' queue metrics):"]
    for row in rows:
        path = " -> ".join(str(p[1]) for p in _changes(row))
        lines.append(
            f"  {row.name}: desired {path or row.desired} (min {row.min_replicas}, max "
            f"{row.max_replicas}); peak queue {row.peak_queue:.0f}; "
            f"{row.replica_seconds:.0f} replica-seconds"
        )
        lines += [
            f"    {e.time_s:5.1f}s  {e.event:<14} {e.from_replicas} -> {e.to_replicas}  "
            f"({e.reason}) {e.message}"
            for e in row.scale_events
        ]
    return lines


def _changes(row: DeploymentRow) -> list[tuple[float, int, int]]:
    out: list[tuple[float, int, int]] = []
    for point in row.timeline:
        if not out or out[-1][1] != point[1]:
            out.append(point)
    return out


def format_summary(summary: DemoSummary) -> list[str]:
    """The human-readable report (every figure is from simulated engines)."""
    lines = []
    if summary.policy is not None:
        lines += [*format_policy(summary.policy), ""]
    lines += [*_replicas(summary.deployments), ""]
    if summary.wake is not None:
        w = summary.wake
        held = "held by the router" if w.held else "not seen held"
        lines += [
            f"Wake-up: {w.request_id} ({w.kind}) for {w.model_deployment} at {w.sent_s:.1f}s, "
            f"{'at zero' if w.from_zero else 'not at zero'}, {held}, answered {w.status} "
            f"after {w.latency_s:.1f}s on tier {w.tier or '-'}.",
            "",
        ]
    lines += ["Routing decisions (from the x-tierwise-tier / x-tierwise-rule headers):"]
    lines += [
        "  " + line for line in table(("KIND", "TIER", "RULE", "REQUESTS"), summary.decisions)
    ]
    lines += ["", "Per tier (simulated latency; cost from the router's /metrics):"]
    lines += ["  " + line for line in _tier_table(summary)]
    hits, misses = summary.affinity.get("hit", 0.0), summary.affinity.get("miss", 0.0)
    lines += [
        "",
        f"Prefix affinity: {hits:.0f} hits, {misses:.0f} misses "
        "(a hit lands on the replica that already holds the prompt's prefix).",
        f"Fallbacks: {', '.join(f'{k}={v:.0f}' for k, v in summary.fallbacks.items()) or 'none'}.",
        f"Requests: {summary.requests} sent, {summary.failed} failed, traffic "
        f"{summary.wall_s:.1f} s ({summary.total_s:.0f} s with start-up).",
        "",
        f"Cost (simulated): {money(summary.cost_dollars)} with tier routing vs "
        f"{money(summary.baseline_dollars)} if every request went to the frontier tier: "
        f"{summary.saving_fraction:.1%} saved.",
    ]
    lines += [f"  failed: {e}" for e in summary.errors]
    return lines


def _tier_table(summary: DemoSummary) -> list[str]:
    return table(
        ("TIER", "REQUESTS", "FAILED", "P50", "P95", "P99", "TOKENS IN/OUT", "CACHED IN", "COST"),
        [
            (
                t.tier,
                t.requests,
                t.failed,
                ms(t.latency_p50_s),
                ms(t.latency_p95_s),
                ms(t.latency_p99_s),
                f"{t.prompt_tokens}/{t.completion_tokens}",
                "-" if t.cache_hit_rate is None else f"{t.cache_hit_rate:.0%}",
                money(t.cost_dollars),
            )
            for t in summary.tiers
        ],
    )
