"""The demo's report reads cost, baseline, affinity and fallbacks from the router's own
exposition (produced here by the router's metrics collector), and turns client outcomes
into per-tier rows, decisions and the saving. Pure; under a second."""

from __future__ import annotations

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from prometheus_client import generate_latest

from tierwise.local.demo_report import (
    DeploymentRow,
    RouterMetrics,
    format_deployments,
    format_summary,
    parse_router_metrics,
    summarize,
)
from tierwise.local.demo_traffic import Kind, Outcome
from tierwise.router.metrics import RouterMetrics as Collector

money = st.floats(min_value=0, max_value=1e3, allow_nan=False, allow_infinity=False)


@given(costs=st.dictionaries(st.sampled_from(["small", "mid", "frontier", "ünï-tier"]),
                             st.lists(st.tuples(money, money), min_size=1, max_size=5),
                             max_size=4),
       fallbacks=st.lists(st.sampled_from(["error", "overload", "überlast"]), max_size=6),
       hits=st.integers(0, 50), misses=st.integers(0, 50))
@settings(max_examples=40, deadline=None)
def test_parsed_counters_equal_what_the_router_counted(
    costs: dict[str, list[tuple[float, float]]], fallbacks: list[str], hits: int, misses: int
) -> None:
    collector = Collector()
    collector.declare_tiers(costs)
    for tier, usages in costs.items():
        for cost, baseline in usages:
            collector.add_usage(tier, 10, 5, cost=cost, baseline=baseline)
            collector.observe_request(tier, "b", "r", 200, duration_s=0.1)
    for reason in fallbacks:
        collector.count_fallback(reason)
    for _ in range(hits):
        collector.count_affinity("hit")
    for _ in range(misses):
        collector.count_affinity("miss")
    parsed = parse_router_metrics(generate_latest(collector.registry).decode())
    for tier, usages in costs.items():
        assert parsed.cost_by_tier[tier] == pytest.approx(sum(c for c, _ in usages))
    expected_baseline = sum(b for usages in costs.values() for _, b in usages)
    assert parsed.baseline == pytest.approx(expected_baseline)
    assert parsed.affinity.get("hit", 0) == hits
    assert parsed.affinity.get("miss", 0) == misses
    assert {k: v for k, v in parsed.fallbacks.items() if v} == {
        r: fallbacks.count(r) for r in set(fallbacks)}
    assert parsed.requests == sum(len(u) for u in costs.values())


def test_empty_exposition() -> None:
    assert parse_router_metrics("") == RouterMetrics()


def outcome(i: int, kind: Kind, tier: str, rule: str, *, status: int = 200,
            latency: float = 0.1) -> Outcome:
    return Outcome(f"r{i}", kind, status, latency, tier, f"{tier}-md", rule,
                   prompt_tokens=100, completion_tokens=10, cached_tokens=50)


@pytest.mark.parametrize(
    ("cost", "baseline", "saving"),
    [({"small": 1.0, "frontier": 1.0}, 8.0, 0.75), ({}, 0.0, 0.0), ({"small": 2.0}, 2.0, 0.0)],
)
def test_summary_rows_decisions_and_saving(cost: dict[str, float], baseline: float,
                                            saving: float) -> None:
    outcomes = [outcome(0, Kind.CHAT, "small", "default", latency=0.2),
                outcome(1, Kind.CHAT, "small", "default", latency=0.4),
                outcome(2, Kind.REASONING, "frontier", "hard-reasoning"),
                outcome(3, Kind.CODE, "", "", status=0)]
    summary = summarize([], outcomes, RouterMetrics(cost_by_tier=cost, baseline=baseline),
                        tier_order=["small", "mid", "frontier"], wall_s=1.0)
    assert [t.tier for t in summary.tiers] == ["small", "mid", "frontier", "(none)"]
    small = summary.tiers[0]
    assert (small.requests, small.failed, small.prompt_tokens) == (2, 0, 200)
    assert small.latency_p50_s == pytest.approx(0.2)
    assert summary.tiers[1].requests == 0
    assert (summary.requests, summary.failed) == (4, 1)
    assert summary.decisions[0] == ("chat", "small", "default", 2)
    assert summary.saving_fraction == pytest.approx(saving)
    document = summary.to_json()
    assert json.loads(json.dumps(document))["simulated"] is True
    assert document["saving_fraction"] == pytest.approx(saving)
    text = "\n".join(format_summary(summary))
    assert f"{saving:.1%} saved" in text
    assert "r3: 0" in text  # the failed request is named


def test_deployment_table_shows_ready_over_desired_and_urls() -> None:
    rows = [DeploymentRow("small-llm", "vllm", "qwen", 1, 2, "Loading", "small",
                          ("http://127.0.0.1:1",)),
            DeploymentRow("模型", "sglang", "m", 0, 0, "Pending")]
    lines = format_deployments(rows)
    assert lines[0].split()[:2] == ["NAME", "ENGINE"]
    assert "1/2" in lines[1]
    assert "http://127.0.0.1:1" in lines[1]
    assert lines[2].startswith("模型")
