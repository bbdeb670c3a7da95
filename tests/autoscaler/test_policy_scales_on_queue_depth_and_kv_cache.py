"""The proportional rule per signal, the largest proposal, tolerance, steps, bounds and guards
(cold-start headroom off here: it has its own tests)."""

from __future__ import annotations

import pytest
from autoscaler_helpers import bounds, reading, spec

from tierwise.autoscaler.history import History
from tierwise.autoscaler.model import Direction, Limit, Reason
from tierwise.autoscaler.policy import decide

SETTLED = History(started_at=-10_000.0)  # past any window: scale-down allowed at once
NO_WINDOWS = {"scaleDownWindow": "0s", "scaleUpWindow": "0s"}
GUARD = {**NO_WINDOWS, "gpuGuard": True}


@pytest.mark.parametrize(
    ("current", "values", "fields", "limits", "want", "reason", "limit"),
    [
        # ceil(2 * 12 / 5) = 5
        (2, {"queue": 12.0}, {}, (1, 10), 5, Reason.QUEUE_DEPTH, Limit.NONE),
        # KV 0.96 vs 0.8 -> ceil(4 * 1.2) = 5
        (4, {"kv": 0.96}, {}, (1, 10), 5, Reason.KV_CACHE_USAGE, Limit.NONE),
        # both inside the 10% band: hold
        (3, {"queue": 5.4, "kv": 0.75}, {}, (1, 10), 3, Reason.WITHIN_TOLERANCE, Limit.NONE),
        # queue proposes 20 from 1, the step allows 1 + 4
        (1, {"queue": 100.0}, {}, (1, 50), 5, Reason.QUEUE_DEPTH, Limit.SCALE_UP_STEP),
        (
            1,
            {"queue": 100.0},
            {"maxScaleUpStep": 100},
            (1, 3),
            3,
            Reason.QUEUE_DEPTH,
            Limit.MAX_REPLICAS,
        ),
        (
            3,
            {"queue": 100.0},
            {"maxScaleUpStep": 100},
            (1, 3),
            3,
            Reason.QUEUE_DEPTH,
            Limit.MAX_REPLICAS,
        ),
        # the largest proposal wins: queue 4 replicas, KV 6
        (4, {"queue": 5.0, "kv": 1.2}, {}, (1, 10), 6, Reason.KV_CACHE_USAGE, Limit.NONE),
        # light load: ceil(4 * 0.25) = 1, one replica removed per decision
        (4, {"kv": 0.2}, NO_WINDOWS, (1, 10), 3, Reason.KV_CACHE_USAGE, Limit.SCALE_DOWN_STEP),
        (
            4,
            {"kv": 0.2},
            {**NO_WINDOWS, "maxScaleDownStep": 10},
            (2, 10),
            2,
            Reason.KV_CACHE_USAGE,
            Limit.MIN_REPLICAS,
        ),
        # with the guard on, busy GPUs veto the scale-down, idle GPUs do not
        (4, {"kv": 0.2, "gpu": 90.0}, GUARD, (1, 10), 4, Reason.KV_CACHE_USAGE, Limit.GPU_GUARD),
        (
            4,
            {"kv": 0.2, "gpu": 30.0},
            GUARD,
            (1, 10),
            3,
            Reason.KV_CACHE_USAGE,
            Limit.SCALE_DOWN_STEP,
        ),
        # the guard is opt-in: by default GPU utilisation never holds a scale-down
        (
            4,
            {"kv": 0.2, "gpu": 100.0},
            NO_WINDOWS,
            (1, 10),
            3,
            Reason.KV_CACHE_USAGE,
            Limit.SCALE_DOWN_STEP,
        ),
        # GPU utilisation alone scales up only when asked to
        (2, {"kv": 0.8, "gpu": 100.0}, {}, (1, 10), 2, Reason.KV_CACHE_USAGE, Limit.NONE),
        (
            2,
            {"kv": 0.8, "gpu": 100.0},
            {"scaleUpOnGPUUtilization": True},
            (1, 10),
            3,
            Reason.GPU_UTILIZATION,
            Limit.NONE,
        ),
        # requests the router holds count as waiting: (0 + 20) / 5 = 4
        (
            1,
            {"queue": 0.0, "kv": 0.8, "demand": 20.0},
            {},
            (1, 10),
            4,
            Reason.QUEUE_DEPTH,
            Limit.NONE,
        ),
        # current above max (the spec changed): back inside the bounds
        (8, {"kv": 0.8}, {}, (1, 5), 5, Reason.REPLICA_BOUNDS, Limit.MAX_REPLICAS),
    ],
)
def test_desired_replicas_follow_the_largest_signal(
    current: int,
    values: dict[str, float],
    fields: dict[str, object],
    limits: tuple[int, int],
    want: int,
    reason: Reason,
    limit: Limit,
) -> None:
    load = {"queue": 0.0, "kv": 0.8, **values}
    signals = reading(current, at=100.0, **load)
    autoscaling = spec(headroomPerMinute=0, **fields)
    decision = decide(
        autoscaling, bounds(*limits), current=current, signals=signals, history=SETTLED, now=100
    )
    assert (decision.desired, decision.reason, decision.limit) == (want, reason, limit)
    expected = Direction.UP if want > current else Direction.DOWN if want < current else "none"
    assert decision.direction == expected
    assert decision.apply


def test_message_names_signal_value_target_and_limit() -> None:
    signals = reading(1, queue=100.0, kv=0.5)
    decision = decide(spec(), bounds(1, 50), current=1, signals=signals, history=History(), now=0)
    assert "QueueDepth 100/replica" in decision.message
    assert "target 5" in decision.message
    assert "MaxScaleUpStep" in decision.message
    assert decision.signals.queue_depth == 100.0


def test_fresh_history_holds_scale_down_for_one_window() -> None:
    idle = reading(4, queue=0.0, kv=0.1, running=1.0)
    early = decide(spec(), bounds(1, 10), current=4, signals=idle, history=History(), now=0)
    assert (early.desired, early.limit) == (4, Limit.SCALE_DOWN_WINDOW)
    later = decide(spec(), bounds(1, 10), current=4, signals=idle, history=early.history, now=301)
    assert later.desired == 3


@pytest.mark.parametrize(("guard", "says"), [(True, True), (False, False)])
def test_scale_down_without_dcgm_says_the_guard_is_inactive(guard: bool, says: bool) -> None:
    signals = reading(3, kv=0.1)
    autoscaling = spec(**NO_WINDOWS, gpuGuard=guard)
    decision = decide(
        autoscaling, bounds(1, 10), current=3, signals=signals, history=SETTLED, now=1
    )
    assert decision.desired == 2
    assert ("GPU guard inactive" in decision.message) is says


def test_the_guard_names_the_metric_that_held_the_scale_down() -> None:
    signals = reading(3, kv=0.1, gpu=82.0, gpu_metric="DCGM_FI_PROF_SM_ACTIVE")
    decision = decide(
        spec(**GUARD), bounds(1, 10), current=3, signals=signals, history=SETTLED, now=1
    )
    assert decision.limit is Limit.GPU_GUARD
    assert "GPUs busy: DCGM_FI_PROF_SM_ACTIVE 82% >= 70%" in decision.message
