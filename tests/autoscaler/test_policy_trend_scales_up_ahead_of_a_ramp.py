"""The load trend (scaleUpLookahead, by default the cold start): a sustained ramp is met a
cold start early, noise, spikes and flat or falling loads are not, and the trend only ever
adds replicas."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from autoscaler_helpers import bounds, reading, run, spec, spread
from hypothesis import given, settings
from hypothesis import strategies as st

from tierwise.autoscaler.history import History
from tierwise.autoscaler.model import Decision, Reason, Signals
from tierwise.autoscaler.policy import decide
from tierwise.autoscaler.trend import Growth, growth, load_level, window_for

NOW = 10_000.0
NO_HEADROOM = {"headroomPerMinute": 0}


def ramp(per_minute: float, base: float = 0.8) -> Callable[[float, int], Signals]:
    """KV load (summed over replicas) growing by ``per_minute`` from ``base``, capped at 1 per
    replica as a saturating engine would be; the rest waits in the queue."""

    def load(t: float, n: int) -> Signals:
        total = base + per_minute * t / 60
        kv = min(total, 0.95 * n)
        waiting = (total - kv) * 8  # ~8 requests per replica's worth of KV cache
        return spread(n, at=t, waiting=waiting, kv_load=kv)

    return load


def decisions_on(lookahead: str, per_minute: float, seconds: float = 600) -> list[Decision]:
    """Two replicas at half the KV target, then a ramp."""
    autoscaling = spec(scaleUpLookahead=lookahead, **NO_HEADROOM)
    return run(autoscaling, bounds(1, 100), start=2, load=ramp(per_minute), seconds=seconds)


def first_scale_up(decisions: list[Decision]) -> int:
    return next(i for i, d in enumerate(decisions) if d.desired > d.current)


def history_of(levels: list[float], step: float = 15.0) -> History:
    """Readings of ``levels`` every ``step`` seconds, the last one ``step`` before NOW."""
    loads = tuple((NOW - step * (len(levels) - i), v) for i, v in enumerate(levels))
    return History(started_at=0.0, loads=loads)


@pytest.mark.parametrize("per_minute", [0.3, 0.6])
def test_a_slow_ramp_is_met_earlier_with_lookahead(per_minute: float) -> None:
    ahead, reactive = decisions_on("2m", per_minute), decisions_on("0s", per_minute)
    assert first_scale_up(ahead) < first_scale_up(reactive)


@pytest.mark.parametrize("per_minute", [0.5, 1.0, 3.0])
def test_a_ramp_gets_more_replicas_sooner_with_lookahead(per_minute: float) -> None:
    ahead, reactive = decisions_on("2m", per_minute), decisions_on("0s", per_minute)
    asked = [(a.desired, r.desired) for a, r in zip(ahead, reactive, strict=True)]
    assert all(a >= r for a, r in asked)
    assert any(a > r for a, r in asked)


def test_a_ramp_scales_for_the_projected_load_and_says_so() -> None:
    decisions = decisions_on("2m", 1.0)
    trend = [d for d in decisions if d.reason is Reason.LOAD_TREND]
    assert trend, [d.message for d in decisions]
    assert "grew" in trend[0].message
    assert "over 120s" in trend[0].message
    assert trend[0].desired > trend[0].current


def test_the_lookahead_defaults_to_the_measured_cold_start() -> None:
    levels = [2.0 + 0.1 * i for i in range(40)]  # 10 minutes of steady growth
    history = history_of(levels)
    signals = reading(3, at=NOW, kv=0.8 * 6.0 / 3, cold_start=600.0)
    decision = decide(
        spec(**NO_HEADROOM), bounds(1, 50), current=3, signals=signals, history=history, now=NOW
    )
    assert decision.reason is Reason.LOAD_TREND
    assert "over 600s" in decision.message


@pytest.mark.parametrize(
    "levels",
    [
        [],  # no earlier reading
        [3.0],  # too short a history for the span
        [3.0] * 8,  # flat
        [4.0, 4.0, 3.8, 3.6, 3.5, 3.3, 3.2, 3.1],  # falling
        [3.0, 3.0, 3.0, 9.0, 3.0, 3.0, 3.0, 3.0],  # a spike in the middle
        [3.0, 3.0, 3.0, 3.0, 3.0, 3.0, 3.0, 8.0],  # a spike just before now
    ],
)
def test_no_trend_without_sustained_growth(levels: list[float]) -> None:
    # current level: KV 0.8 on 3 replicas at target 0.8 -> 3 replicas' worth
    decision = decide(
        spec(scaleUpLookahead="2m", **NO_HEADROOM),
        bounds(1, 50),
        current=3,
        signals=reading(3, at=NOW, kv=0.8),
        history=history_of(levels),
        now=NOW,
    )
    assert decision.reason is not Reason.LOAD_TREND
    assert decision.desired == 3


def test_a_missing_signal_forgets_the_levels() -> None:
    history = history_of([1.0, 2.0])
    blind = reading(3, at=NOW, kv=None)
    decision = decide(spec(), bounds(1, 50), current=3, signals=blind, history=history, now=NOW)
    assert decision.history.loads == ()


@pytest.mark.parametrize(
    ("missing", "expected"),
    [
        ((), True),
        ((NOW - 120, NOW - 105, NOW - 90), False),  # nothing in the start stretch
        ((NOW - 75, NOW - 60, NOW - 45), False),  # nothing in the middle stretch
        ((NOW - 15,), True),  # the current reading is in the end stretch
    ],
)
def test_a_gap_in_the_readings_breaks_the_trend(missing: tuple[float, ...], expected: bool) -> None:
    loads = [(NOW - 15.0 * i, 10.0 - i) for i in range(8, 0, -1)]
    kept = [(at, v) for at, v in loads if at not in missing]
    found = growth(kept, now=NOW, level=10.0, span=120.0, window=30.0)
    assert (found is not None) is expected


def test_growth_is_the_smaller_half_between_averaged_stretches() -> None:
    # flat at 2 for two minutes, then rising by 1 every 15 s; span 240 s, stretches of 60 s:
    # start mean 2, middle mean 2.6 (2, 2, 2, 3, 4), end mean 8 (6, 7, 8, 9 and now 10)
    loads = [(NOW - 240 + 15 * i, 2.0 + max(0, i - 8)) for i in range(16)]
    found = growth(loads, now=NOW, level=10.0, span=240.0, window=60.0)
    assert found == Growth(level=pytest.approx(8.0), rate=pytest.approx(0.6 / 120))


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
    assert Growth(level=4.0, rate=-1.0).projected(120.0) == 4.0
    assert Growth(level=4.0, rate=0.01).projected(100.0) == pytest.approx(5.0)


@pytest.mark.parametrize(
    ("span", "interval", "window"), [(120, 15, 30), (600, 15, 60), (30, 15, 15), (60, 30, 30)]
)
def test_stretches_are_a_quarter_of_the_span_between_an_interval_and_a_minute(
    span: float, interval: float, window: float
) -> None:
    assert window_for(span, interval) == window


LEVEL = st.floats(0, 60, allow_nan=False)


@settings(max_examples=200, deadline=None)
@given(
    st.lists(LEVEL, min_size=2, max_size=20),
    st.floats(0, 1.5),
    st.floats(0, 1.5),
    st.integers(1, 30),
    st.one_of(st.just(0), st.integers(15, 600)),
)
def test_trend_is_monotone_in_load_and_only_adds(
    levels: list[float], kv: float, more: float, current: int, lookahead: int
) -> None:
    history = history_of(levels)

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


def test_history_keeps_the_levels_of_the_span_and_round_trips() -> None:
    history = History(started_at=0.0)
    for i in range(12):
        history = history.with_load(15.0 * i, float(i), keep_for=60.0)
    assert history.loads == ((105.0, 7.0), (120.0, 8.0), (135.0, 9.0), (150.0, 10.0), (165.0, 11.0))
    assert History.from_json(history.to_json()) == history
    assert history.with_load(180.0, None).loads == ()
