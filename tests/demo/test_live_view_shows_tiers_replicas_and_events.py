"""The live view shows, per tier, the recent rate and latency percentiles, the cache hit
rate and the cost so far against all-frontier; per ModelDeployment desired/ready replicas,
queue and held requests; each scale event once with its reason; the policy's state when it
changes. Plain lines when the output is not a terminal, a redrawn ``rich`` panel when it
is. Scale events are read from the operator's Events (their ``N -> M (Reason)``
messages). Pure; instant."""

from __future__ import annotations

import io

import pytest

from tierwise.demo.live import PlainView, RichView, make_view, tiers_now
from tierwise.demo.metrics import RouterMetrics
from tierwise.demo.observe import DeploymentState, ScaleEvent, Snapshot
from tierwise.demo.script import build_script
from tierwise.demo.traffic import Kind, Outcome

POLICY = {"readyTiers": "3/3", "readyRouters": "2/2", "tableVersion": "v1",
          "conditions": [{"type": "Ready", "status": "True", "reason": "RouterReady"}]}
EVENT = ScaleEvent(10.8, "small-llm", 1, 3, "QueueDepth", "ScaledUp", "QueueDepth 10/replica")


def snapshot(t: float, policy: dict[str, object] | None = None) -> Snapshot:
    return Snapshot(
        t,
        {"small-llm": DeploymentState(3, 2, 7.0, "Ready"),
         "mid-llm": DeploymentState(0, 0, None, "ScaledToZero")},
        RouterMetrics(cost_by_tier={"small": 0.01, "mid": 0.05}, baseline=0.2,
                      pending={"mid-llm": 1.0}),
        dict(POLICY if policy is None else policy),
    )


def outcomes() -> list[Outcome]:
    return [
        Outcome("a", Kind.CHAT, 200, 0.2, "small", prompt_tokens=100, cached_tokens=40,
                sent_s=8.0),
        Outcome("b", Kind.CHAT, 200, 0.4, "small", prompt_tokens=100, cached_tokens=0,
                sent_s=9.0),
        Outcome("c", Kind.CHAT, 200, 0.3, "small", prompt_tokens=100, sent_s=1.0),  # old
        Outcome("d", Kind.CODE, 503, 0.1, "mid", sent_s=9.5),  # failed: not counted
    ]


def test_tier_figures_cover_the_last_seconds_and_cost_so_far() -> None:
    small, mid = tiers_now(outcomes(), snapshot(10.0), ["small", "mid"], now_s=10.0)
    assert small.rate == pytest.approx(2 / 5)
    assert small.p50_s == pytest.approx(0.2)
    assert small.p95_s == pytest.approx(0.4, abs=0.02)
    assert small.hit_rate == pytest.approx(40 / 300)
    assert (small.cost, mid.cost) == (0.01, 0.05)
    assert (mid.rate, mid.p50_s, mid.hit_rate) == (0.0, None, None)


def test_plain_view_prints_phases_events_policy_and_status_lines() -> None:
    out = io.StringIO()
    view = PlainView(out, ["small", "mid", "frontier"])
    view.phase(build_script(40, 400, 0).phases[1], 10.0)
    view.update(snapshot(10.0), [EVENT], outcomes())
    view.update(snapshot(10.5), [], outcomes())  # no news: no status line before 5 s pass
    view.update(snapshot(11.0, {**POLICY, "readyTiers": "2/3"}), [], outcomes())
    lines = out.getvalue().splitlines()
    assert lines[0].startswith("[ 10.0s] phase burst: a burst of short chat")
    assert "[ 10.8s] small-llm 1 -> 3 ScaledUp (QueueDepth): QueueDepth 10/replica" in lines
    assert sum("ScaledUp" in line for line in lines) == 1
    policy = [line for line in lines if "policy Ready=" in line]
    assert [p.split("] ")[1] for p in policy] == [
        "policy Ready=True (RouterReady), tiers 3/3, routers 2/2, table v1",
        "policy Ready=True (RouterReady), tiers 2/3, routers 2/2, table v1"]
    status = [line for line in lines if "all-frontier" in line]
    assert len(status) == 1
    assert "cost $0.0600 vs $0.2000 all-frontier" in status[0]
    assert "small-llm 2/3 ready, queue 7, mid-llm 0/0 ready, queue -, held 1" in out.getvalue()


def test_rich_view_draws_a_panel_on_a_terminal() -> None:
    out = io.StringIO()
    view = RichView(out, ["small", "mid"])
    view.phase(build_script(40, 400, 0).phases[0], 0.0)
    view.update(snapshot(10.0), [EVENT], outcomes())
    view.stop()
    text = out.getvalue()
    for shown in ("phase", "steady", "req/s", "cache hit", "held by router", "small-llm",
                  "ScaledUp (QueueDepth)", "70% saved", "policy Ready=True"):
        assert shown in text


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_the_view_follows_the_output() -> None:
    assert isinstance(make_view(io.StringIO(), ["small"]), PlainView)
    assert isinstance(make_view(Terminal(), ["small"]), RichView)


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ({"involvedObject": {"kind": "ModelDeployment", "name": "small-llm"},
          "reason": "ScaledUp", "message": "1 -> 3 (QueueDepth): QueueDepth 10/replica"},
         (1, 3, "QueueDepth", "QueueDepth 10/replica")),
        ({"involvedObject": {"kind": "ModelDeployment", "name": "mid-llm"},
          "reason": "ScaledToZero", "message": "1 -> 0 (Idle): no traffic for 6s ≥ 6s"},
         (1, 0, "Idle", "no traffic for 6s ≥ 6s")),
        ({"involvedObject": {"kind": "ModelDeployment", "name": "x"},
          "reason": "AutoscalerAdvice", "message": "would scale 1 -> 2 (QueueDepth): q"}, None),
        ({"involvedObject": {"kind": "RoutingPolicy", "name": "x"},
          "reason": "ScaledUp", "message": "1 -> 2 (QueueDepth): q"}, None),
        ({"involvedObject": {"kind": "ModelDeployment", "name": "x"},
          "reason": "ScaledUp", "message": "garbled"}, None),
    ],
)
def test_scale_events_are_read_from_the_operators_events(
    body: dict[str, object], expected: tuple[int, int, str, str] | None
) -> None:
    from tierwise.demo.observe import scale_event

    event = scale_event(body, 4.5)
    if expected is None:
        assert event is None
        return
    assert event is not None
    assert (event.from_replicas, event.to_replicas, event.reason, event.message) == expected
    assert (event.time_s, event.event) == (4.5, body["reason"])
