"""A quiet model is parked after scaleToZeroAfter; a request held by the router wakes it."""

from __future__ import annotations

import pytest
from autoscaler_helpers import bounds, reading, run, spec, spread

from tierwise.autoscaler.history import History
from tierwise.autoscaler.model import Direction, Limit, Reason, Signals
from tierwise.autoscaler.policy import decide, observe_traffic

QUICK = spec(scaleDownWindow="60s", scaleToZeroAfter="10m")


def burst_then_quiet(t: float, n: int) -> Signals:
    busy = t < 300
    return spread(n, at=t, waiting=30.0 if busy else 0.0, kv_load=2.0 if busy else 0.0)


def test_replicas_rise_on_a_burst_fall_after_the_window_and_reach_zero() -> None:
    decisions = run(QUICK, bounds(0, 10), start=1, load=burst_then_quiet, seconds=1800)
    counts = [d.desired for d in decisions]
    assert counts[0] > 1  # reacts at the first reading
    peak_at = counts.index(max(counts))
    first_down = next(i for i, d in enumerate(decisions) if d.direction is Direction.DOWN)
    assert first_down * 15 >= 300 + 60  # not before the burst ended plus the window
    last_busy = 285  # the last reading inside the burst
    zero_at = counts.index(0) * 15
    assert last_busy + 600 <= zero_at <= last_busy + 600 + 15  # scaleToZeroAfter, no later
    assert decisions[counts.index(0)].reason is Reason.IDLE
    assert all(c == 0 for c in counts[counts.index(0) :])
    assert peak_at * 15 < 300


def test_min_one_never_reaches_zero() -> None:
    decisions = run(QUICK, bounds(1, 10), start=3, load=burst_then_quiet, seconds=3600)
    assert min(d.desired for d in decisions) == 1


@pytest.mark.parametrize(("demand", "want"), [(1.0, 1), (4.0, 1), (5.5, 2), (500.0, 4)])
def test_router_demand_wakes_a_parked_model(demand: float, want: int) -> None:
    signals = Signals(observed_at=5.0, demand=demand)
    decision = decide(spec(), bounds(0, 10), current=0, signals=signals, history=History(), now=5)
    assert (decision.desired, decision.reason, decision.direction) == (
        want,
        Reason.ACTIVATION,
        Direction.UP,
    )
    assert decision.limit is (Limit.SCALE_UP_STEP if demand > 20 else Limit.NONE)


def test_prompt_tokens_between_readings_count_as_traffic() -> None:
    first = observe_traffic(History(), reading(1, tokens=100.0), now=0)
    quiet = observe_traffic(first, reading(1, tokens=100.0), now=60)
    moved = observe_traffic(first, reading(1, tokens=140.0), now=60)
    assert quiet.last_traffic_at == 0
    assert moved.last_traffic_at == 60


def test_routers_last_request_time_counts_as_traffic() -> None:
    base = observe_traffic(History(), reading(1), now=0)
    seen = Signals(observed_at=100.0, replicas=reading(1).replicas, demand=0.0, last_request_at=70)
    assert observe_traffic(base, seen, now=100).last_traffic_at == 70


def test_waiting_for_zero_is_reported() -> None:
    history = History(started_at=-1000.0, last_traffic_at=0.0)
    decision = decide(QUICK, bounds(0, 10), current=1, signals=reading(1), history=history, now=120)
    assert (decision.desired, decision.limit) == (1, Limit.SCALE_TO_ZERO_WAIT)
    assert "idle 120s" in decision.message


def test_a_wake_is_not_undone_by_the_next_quiet_reading() -> None:
    settings, limits = spec(scaleDownWindow="60s"), bounds(0, 10)
    history = History()
    for t in range(0, 600, 15):  # parked for ten minutes: the history is old enough to act
        idle = Signals(observed_at=float(t), demand=0.0)
        history = decide(settings, limits, current=0, signals=idle, history=history, now=t).history
    held = Signals(observed_at=605.0, demand=6.0)
    woken = decide(settings, limits, current=0, signals=held, history=history, now=605)
    assert (woken.desired, woken.reason) == (2, Reason.ACTIVATION)
    # next interval: the replicas are not ready yet, nothing is queued on them
    quiet = spread(2, at=610.0, waiting=0.0, kv_load=0.0)
    after = decide(settings, limits, current=2, signals=quiet, history=woken.history, now=610)
    assert after.desired == 2  # the scale-down window holds the wake
