"""The load trend (scaleUpLookahead): a ramp is met a cold start early, noise and flat or
falling loads are not, and the trend only ever adds replicas."""

from __future__ import annotations

import pytest
from autoscaler_helpers import bounds, reading, run, spec, spread
from hypothesis import given, settings
from hypothesis import strategies as st

from tierwise.autoscaler.history import History
from tierwise.autoscaler.model import Decision, Reason, Signals
from tierwise.autoscaler.policy import decide
from tierwise.autoscaler.trend import growth, load_level, projected

NOW = 10_000.0
SETTLED = History(started_at=0.0)


def ramp(per_minute: float, base: float = 0.8) -> object:
    """KV load (summed over replicas) growing by ``per_minute`` from ``base``, capped at 1 per
    replica as a saturating engine would be; the rest waits in the queue."""

    def load(t: float, n: int) -> Signals:
        total = base + per_minute * t / 60
        kv = min(total, 0.95 * n)
        waiting = (total - kv) * 8  # ~8 requests per replica's worth of KV cache
        return spread(n, at=t, waiting=waiting, kv_load=kv)

    return load


def decisions_on(lookahead: str, per_minute: float) -> list[Decision]:
    """Two replicas at half the KV target, then a ramp."""
    load = ramp(per_minute)
    return run(spec(scaleUpLookahead=lookahead), bounds(1, 100), start=2, load=load, seconds=120)


def first_scale_up(decisions: list[Decision]) -> int:
    return next(i for i, d in enumerate(decisions) if d.desired > d.current)


@pytest.mark.parametrize("per_minute", [0.5, 1.0])
def test_a_slow_ramp_is_met_earlier_with_lookahead(per_minute: float) -> None:
    ahead, reactive = decisions_on("2m", per_minute), decisions_on("0s", per_minute)
    assert first_scale_up(ahead) < first_scale_up(reactive)


@pytest.mark.parametrize("per_minute", [1.0, 3.0, 10.0])
def test_a_ramp_gets_more_replicas_sooner_with_lookahead(per_minute: float) -> None:
    ahead, reactive = decisions_on("2m", per_minute), decisions_on("0s", per_minute)
    asked = [(a.desired, r.desired) for a, r in zip(ahead, reactive, strict=True)]
    assert all(a >= r for a, r in asked[:5])
    assert any(a > r for a, r in asked[:5])


def test_a_ramp_scales_for_the_projected_load_and_says_so() -> None:
    decisions = decisions_on("2m", 1.0)
    trend = [d for d in decisions if d.reason is Reason.LOAD_TREND]
    assert trend, [d.message for d in decisions]
    assert "growing" in trend[0].message
    assert "in 120s" in trend[0].message
    assert trend[0].desired > trend[0].current


@pytest.mark.parametrize(
    "levels",
    [
        [],  # no earlier reading
        [2.0],  # one interval is not a trend
        [2.0, 2.0],  # flat
        [3.0, 2.5],  # falling
        [1.0, 3.0],  # one spike up, then down to the current level: smallest rate < 0
        [2.0, 5.0],  # spike, the current reading is below it
    ],
)
def test_no_trend_without_two_intervals_of_growth(levels: list[float]) -> None:
    loads = tuple((NOW - 15.0 * (len(levels) - i), v) for i, v in enumerate(levels))
    history = History(started_at=0.0, loads=loads)
    # current level: KV 0.8 on 3 replicas at target 0.8 -> 3 replicas' worth
    decision = decide(
        spec(),
        bounds(1, 50),
        current=3,
        signals=reading(3, at=NOW, kv=0.8),
        history=history,
        now=NOW,
    )
    assert decision.reason is not Reason.LOAD_TREND
    assert decision.desired == 3


def test_a_missing_signal_forgets_the_levels() -> None:
    history = History(started_at=0.0, loads=((NOW - 30, 1.0), (NOW - 15, 2.0)))
    blind = reading(3, at=NOW, kv=None)
    decision = decide(spec(), bounds(1, 50), current=3, signals=blind, history=history, now=NOW)
    assert decision.history.loads == ()


@pytest.mark.parametrize(
    ("gap", "expected"), [(15.0, True), (30.0, True), (31.0, False), (0.0, False)]
)
def test_a_gap_between_readings_breaks_the_trend(gap: float, expected: bool) -> None:
    loads = ((NOW - 2 * gap, 1.0), (NOW - gap, 2.0))
    assert (growth(loads, now=NOW, level=3.0, max_gap=30.0) is not None) is expected


@pytest.mark.parametrize(
    ("queue", "kv", "demand", "want"),
    [(0.0, 0.4, 0.0, 1.0), (5.0, 0.8, 0.0, 4.0), (0.0, 0.0, 10.0, 2.0), (None, 0.8, 0.0, None)],
)
def test_load_level_is_replicas_worth_at_target(
    queue: float | None, kv: float, demand: float, want: float | None
) -> None:
    signals = reading(2, queue=queue, kv=kv, demand=demand)
    level = load_level(signals, target_kv=0.8, target_queue=5.0)
    assert level == (None if want is None else pytest.approx(want))


def test_a_falling_load_projects_to_itself() -> None:
    assert projected(4.0, -1.0, 120.0) == 4.0
    assert projected(4.0, 0.01, 100.0) == pytest.approx(5.0)


LEVEL = st.floats(0, 60, allow_nan=False)


@settings(max_examples=200, deadline=None)
@given(
    st.lists(LEVEL, min_size=2, max_size=2),
    st.floats(0, 1.5),
    st.floats(0, 1.5),
    st.integers(1, 30),
    st.integers(0, 600),
)
def test_trend_is_monotone_in_load_and_only_adds(
    levels: list[float], kv: float, more: float, current: int, lookahead: int
) -> None:
    loads = ((NOW - 30, levels[0]), (NOW - 15, levels[1]))
    history = History(started_at=0.0, loads=loads)

    def desired(value: float, seconds: int) -> int:
        return decide(
            spec(scaleUpLookahead=f"{seconds}s"),
            bounds(1, 40),
            current=current,
            signals=reading(current, at=NOW, kv=value),
            history=history,
            now=NOW,
        ).desired

    assert desired(kv, lookahead) <= desired(kv + more, lookahead)
    assert desired(kv, lookahead) >= desired(kv, 0)


def test_history_keeps_the_latest_levels_and_round_trips() -> None:
    history = SETTLED
    for i in range(6):
        history = history.with_load(15.0 * i, float(i))
    assert history.loads == ((45.0, 3.0), (60.0, 4.0), (75.0, 5.0))
    assert History.from_json(history.to_json()) == history
    assert history.with_load(90.0, None).loads == ()
