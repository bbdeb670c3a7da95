"""The demo's summary reads cost, baseline, affinity, fallbacks, held requests and table
endpoints from the router's own exposition (produced here by the router's metrics
collector), adds up several router replicas as the operator does, reads an engine's queue
under its real metric name, and turns client outcomes into per-tier rows, decisions,
traffic levels and the saving. Pure; under a second."""

from __future__ import annotations

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from prometheus_client import generate_latest

from tierwise.demo.metrics import RouterMetrics, merge, parse_router_metrics, waiting_requests
from tierwise.demo.observe import ScaleEvent
from tierwise.demo.summary import DeploymentRow, Observed, PolicyView, summarize
from tierwise.demo.text import format_deployments, format_summary
from tierwise.demo.traffic import Kind, Outcome
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


def test_held_requests_and_endpoints_are_read_and_replicas_add_up() -> None:
    one, two = Collector(namespace="demo"), Collector(namespace="demo")
    one.pending_by_model["mid-llm"] = 2
    two.pending_by_model["mid-llm"] = 1
    one.held_by_model["mid-llm"] = 4
    two.held_by_model["mid-llm"] = 1
    one.endpoints = {"small-llm": 3, "mid-llm": 0}
    two.endpoints = {"small-llm": 2, "mid-llm": 0}
    one.add_usage("small", 10, 5, cost=1.0, baseline=4.0)
    two.add_usage("small", 10, 5, cost=0.5, baseline=2.0)
    readings = [parse_router_metrics(generate_latest(c.registry).decode()) for c in (one, two)]
    assert readings[0].pending == {"mid-llm": 2}
    total = merge(readings)
    assert total.pending == {"mid-llm": 3}
    assert total.held_total == {"mid-llm": 5}
    assert total.endpoints == {"small-llm": 3, "mid-llm": 0}
    assert total.cost_by_tier == {"small": pytest.approx(1.5)}
    assert (total.cost, total.baseline) == (pytest.approx(1.5), pytest.approx(6.0))
    assert merge([]) == RouterMetrics()


@pytest.mark.parametrize(
    ("engine", "text", "queue"),
    [
        ("vllm", 'vllm:num_requests_waiting{model_name="m"} 4.0\n', 4.0),
        ("sglang", "sglang:num_queue_reqs 2\nsglang:num_running_reqs 7\n", 2.0),
        ("vllm", "sglang:num_queue_reqs 2\n", None),  # the other engine's name: not read
        ("vllm", "vllm:num_requests_waiting{ broken\n", None),
        ("vllm", "", None),
    ],
)
def test_engine_queue_is_read_under_the_engines_own_metric_name(
    engine: str, text: str, queue: float | None
) -> None:
    assert waiting_requests(engine, text) == queue


def test_empty_exposition() -> None:
    assert parse_router_metrics("") == RouterMetrics()


def outcome(i: int, kind: Kind, tier: str, rule: str, *, status: int = 200,
            latency: float = 0.1, sent: float = 0.0) -> Outcome:
    return Outcome(f"r{i}", kind, status, latency, tier, f"{tier}-md", rule,
                   prompt_tokens=100, completion_tokens=10, cached_tokens=50, sent_s=sent)


@pytest.mark.parametrize(
    ("cost", "baseline", "saving"),
    [({"small": 1.0, "frontier": 1.0}, 8.0, 0.75), ({}, 0.0, 0.0), ({"small": 2.0}, 2.0, 0.0)],
)
def test_summary_rows_decisions_traffic_and_saving(cost: dict[str, float], baseline: float,
                                                   saving: float) -> None:
    outcomes = [outcome(0, Kind.CHAT, "small", "default", latency=0.2, sent=0.5),
                outcome(1, Kind.CHAT, "small", "default", latency=0.4, sent=0.7),
                outcome(2, Kind.REASONING, "frontier", "hard-reasoning", sent=2.1),
                outcome(3, Kind.CODE, "", "", status=0, sent=2.2)]
    observed = Observed(deployments=[], metrics=RouterMetrics(cost_by_tier=cost,
                                                              baseline=baseline))
    summary = summarize(observed, outcomes, tier_order=["small", "mid", "frontier"], wall_s=3.0)
    assert [t.tier for t in summary.tiers] == ["small", "mid", "frontier", "(none)"]
    small = summary.tiers[0]
    assert (small.requests, small.failed, small.prompt_tokens) == (2, 0, 200)
    assert small.latency_p50_s == pytest.approx(0.2)
    assert small.cache_hit_rate == pytest.approx(0.5)
    assert summary.tiers[1].requests == 0
    assert summary.tiers[1].cache_hit_rate is None
    assert (summary.requests, summary.failed) == (4, 1)
    assert summary.decisions[0] == ("chat", "small", "default", 2)
    assert summary.traffic == ((0.0, 2.0), (1.0, 0.0), (2.0, 2.0), (3.0, 0.0))
    assert summary.traffic_by_tier["frontier"][2] == (2.0, 1.0)
    assert summary.saving_fraction == pytest.approx(saving)
    document = json.loads(json.dumps(summary.to_json()))
    assert document["simulated"] is True
    assert document["saving_fraction"] == pytest.approx(saving)
    assert document["policy"] is None
    assert document["wake"] is None
    text = "\n".join(format_summary(summary))
    assert f"{saving:.1%} saved" in text
    assert "r3: 0" in text  # the failed request is named


def test_deployments_carry_timeline_events_and_replica_seconds() -> None:
    event = ScaleEvent(10.5, "small-llm", 1, 3, "QueueDepth", "ScaledUp", "QueueDepth 6 …")
    row = DeploymentRow("small-llm", "vllm", "qwen", 1, 1, "Ready", "small", (), 1, 3,
                        timeline=((0.0, 1, 1), (10.5, 3, 1), (12.0, 3, 3), (20.0, 1, 1),
                                  (30.0, 1, 1)),
                        scale_events=(event,), peak_queue=9.0)
    assert row.replica_seconds == pytest.approx(10.5 + 1.5 + 8 * 3 + 10)
    document = json.loads(json.dumps(row.to_json()))
    assert document["timeline"][1] == [10.5, 3, 1]
    assert document["scale_events"] == [{"time": 10.5, "from": 1, "to": 3,
                                         "reason": "QueueDepth", "event": "ScaledUp",
                                         "message": "QueueDepth 6 …"}]
    observed = Observed(deployments=[row], metrics=RouterMetrics())
    text = "\n".join(format_summary(summarize(observed, [], tier_order=["small"], wall_s=30)))
    assert "small-llm: desired 1 -> 3 -> 1 (min 1, max 3); peak queue 9" in text
    assert "ScaledUp       1 -> 3  (QueueDepth)" in text


def test_policy_view_reads_the_ready_condition_and_tiers() -> None:
    status = {
        "tableVersion": "abc", "readyTiers": "1/2", "readyRouters": "2/2",
        "conditions": [{"type": "Progressing", "status": "False"},
                       {"type": "Ready", "status": "False", "reason": "TiersNotReady",
                        "message": "tier mid: mid-llm missing"}],
        "tiers": [{"name": "small", "ready": True,
                   "backends": [{"name": "small-llm", "ready": True, "endpoints": 2}]},
                  {"name": "mid", "ready": False, "backends": [{"name": "mid-llm"}]}],
    }
    view = PolicyView.from_status("demo", status)
    assert (view.ready, view.reason, view.table_version) == ("False", "TiersNotReady", "abc")
    assert [(t.name, t.ready, [(b.name, b.endpoints) for b in t.backends])
            for t in view.tiers] == [("small", True, [("small-llm", 2)]),
                                     ("mid", False, [("mid-llm", 0)])]
    assert PolicyView.from_status("x", {}).ready == "Unknown"


def test_deployment_table_shows_ready_desired_and_bounds() -> None:
    rows = [DeploymentRow("small-llm", "vllm", "qwen", 1, 2, "Loading", "small", (), 1, 3),
            DeploymentRow("模型", "sglang", "m", 0, 0, "ScaledToZero", "", (), 0, 2)]
    lines = format_deployments(rows)
    assert lines[0].split()[:2] == ["NAME", "ENGINE"]
    assert lines[1].split()[3:5] == ["1", "2"]
    assert lines[1].split()[-1] == "1-3"
    assert lines[2].startswith("模型")
