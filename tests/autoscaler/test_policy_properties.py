"""Properties of the policy over generated loads and histories (hypothesis).

Monotone in load, never outside min/max, no flapping under constant load, windows and step
limits (pods or percent, whichever is larger) honoured on every decision of a random load
sequence; the specs include a load-trend lookahead, cold-start headroom and the GPU guard,
and the histories recent load levels, so all of them are under every property.
"""

from __future__ import annotations

import math

from autoscaler_helpers import bounds, reading, run, spec, spread
from hypothesis import given, settings
from hypothesis import strategies as st

from tierwise.autoscaler.history import History, Proposal
from tierwise.autoscaler.model import Direction, Reason, Signals
from tierwise.autoscaler.policy import decide

LOAD = st.floats(min_value=0, max_value=200, allow_nan=False)
FRACTION = st.floats(min_value=0, max_value=1.5, allow_nan=False)
GPU = st.one_of(st.none(), st.floats(min_value=0, max_value=100, allow_nan=False))
COLD = st.one_of(st.none(), st.floats(min_value=0, max_value=900, allow_nan=False))
NOW = 10_000.0


@st.composite
def specs(draw: st.DrawFn) -> tuple[dict[str, object], int, int]:
    lo = draw(st.integers(0, 5))
    hi = draw(st.integers(max(lo, 1), 30))
    fields = {
        "targetQueueDepth": draw(st.floats(0.5, 20)),
        "targetKVCacheUsage": draw(st.floats(0.1, 1.0)),
        "targetGPUUtilization": draw(st.integers(1, 100)),
        "scaleUpOnGPUUtilization": draw(st.booleans()),
        "tolerance": draw(st.floats(0, 0.5)),
        "scaleUpWindow": f"{draw(st.integers(0, 120))}s",
        "scaleDownWindow": f"{draw(st.integers(0, 600))}s",
        "maxScaleUpStep": draw(st.integers(1, 10)),
        "maxScaleDownStep": draw(st.integers(1, 10)),
        "scaleToZeroAfter": f"{draw(st.integers(0, 1800))}s",
        "scaleUpLookahead": f"{draw(st.one_of(st.just(0), st.integers(15, 300)))}s",
        "maxScaleUpPercent": draw(st.integers(0, 200)),
        "headroomPerMinute": draw(st.floats(0, 20)),
        "gpuGuard": draw(st.booleans()),
    }
    if draw(st.booleans()):
        fields["coldStart"] = f"{draw(st.integers(0, 900))}s"
    if draw(st.booleans()):
        del fields["scaleUpLookahead"]  # the cold start
    return fields, lo, hi


@st.composite
def histories(draw: st.DrawFn) -> History:
    ages = draw(st.lists(st.tuples(st.floats(0, 900), st.integers(0, 30)), max_size=8))
    proposals = tuple(sorted((Proposal(NOW - age, n) for age, n in ages), key=lambda p: p.at))
    levels = draw(st.lists(st.floats(0, 100), max_size=12))
    loads = tuple((NOW - 15.0 * (len(levels) - i), v) for i, v in enumerate(levels))
    return History(
        loads=loads,
        proposals=proposals,
        started_at=NOW - draw(st.floats(0, 3600)),
        last_traffic_at=NOW - draw(st.floats(0, 3600)),
    )


@st.composite
def loads(draw: st.DrawFn) -> tuple[dict[str, float | None], dict[str, float | None]]:
    """Two loads, the second at least the first in every signal."""
    low = {"queue": draw(LOAD), "kv": draw(FRACTION), "running": draw(LOAD), "demand": draw(LOAD)}
    high = {k: v + draw(st.floats(0, 50)) for k, v in low.items()}
    gpu_low = draw(GPU)
    gpu_high = None if gpu_low is None else min(100.0, gpu_low + draw(st.floats(0, 50)))
    return {**low, "gpu": gpu_low}, {**high, "gpu": gpu_high}


@settings(max_examples=300, deadline=None)
@given(specs(), histories(), loads(), st.integers(0, 30), COLD)
def test_more_load_never_means_fewer_replicas(
    setup: tuple[dict[str, object], int, int],
    history: History,
    pair: tuple[dict[str, float | None], dict[str, float | None]],
    current: int,
    cold: float | None,
) -> None:
    fields, lo, hi = setup
    low, high = pair
    decisions = [
        decide(
            spec(**fields),
            bounds(lo, hi),
            current=current,
            signals=reading(current, at=NOW, cold_start=cold, **load),
            history=history,
            now=NOW,
        )
        for load in (low, high)
    ]
    assert decisions[0].desired <= decisions[1].desired


@settings(max_examples=300, deadline=None)
@given(specs(), histories(), loads(), st.integers(0, 40), st.booleans())
def test_desired_stays_within_min_and_max(
    setup: tuple[dict[str, object], int, int],
    history: History,
    pair: tuple[dict[str, float | None], dict[str, float | None]],
    current: int,
    blind: bool,
) -> None:
    fields, lo, hi = setup
    signals = Signals(observed_at=NOW) if blind else reading(current, at=NOW, **pair[1])
    decision = decide(
        spec(**fields), bounds(lo, hi), current=current, signals=signals, history=history, now=NOW
    )
    assert lo <= decision.desired <= hi
    if decision.desired == 0:
        assert decision.reason in {Reason.IDLE, Reason.SIGNALS_MISSING}


@settings(max_examples=40, deadline=None)
@given(specs(), st.floats(0, 150), st.floats(0, 12), st.integers(0, 30))
def test_constant_load_never_flaps(
    setup: tuple[dict[str, object], int, int], waiting: float, kv_load: float, start: int
) -> None:
    fields, lo, hi = setup
    start = min(max(start, lo), hi)
    decisions = run(
        spec(**fields),
        bounds(lo, hi),
        start=start,
        load=lambda t, n: spread(n, at=t, waiting=waiting, kv_load=kv_load),
        seconds=90 * 60,
    )
    directions = {d.direction for d in decisions} - {Direction.NONE}
    assert len(directions) <= 1, [(d.current, d.desired, d.reason) for d in decisions if d.changed]
    assert not any(d.changed for d in decisions[-20:])


@settings(max_examples=60, deadline=None)
@given(specs(), st.lists(st.tuples(LOAD, FRACTION), min_size=1, max_size=40), st.integers(0, 30))
def test_windows_and_steps_hold_on_every_decision(
    setup: tuple[dict[str, object], int, int],
    trace: list[tuple[float, float]],
    start: int,
) -> None:
    fields, lo, hi = setup
    autoscaling = spec(**fields)
    start = min(max(start, lo, 1), hi)
    step = 15.0

    def load(t: float, n: int) -> Signals:
        waiting, kv = trace[int(t // step) % len(trace)]
        return reading(n, at=t, queue=waiting, kv=kv, running=1.0)

    decisions = run(autoscaling, bounds(lo, hi), start=start, load=load, seconds=40 * step)
    down_window = float(str(fields["scaleDownWindow"]).rstrip("s"))
    for i, d in enumerate(decisions):
        now = i * step
        if d.direction is Direction.UP and d.current >= lo:
            percent = math.ceil(d.current * autoscaling.max_scale_up_percent / 100)
            assert d.desired <= d.current + max(autoscaling.max_scale_up_step, percent)
        if d.direction is Direction.DOWN and d.current <= hi and d.reason is not Reason.IDLE:
            assert d.desired >= d.current - autoscaling.max_scale_down_step
            assert d.desired >= max(d.history.window(now, down_window))
            assert now >= down_window  # a fresh history holds scale-down for a window
