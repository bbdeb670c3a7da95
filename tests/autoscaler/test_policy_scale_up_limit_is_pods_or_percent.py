"""The scale-up limit, like the HPA's: max(maxScaleUpStep pods, maxScaleUpPercent of the
current count) per decision; the default lets 40 replicas double within two decisions."""

from __future__ import annotations

import math

import pytest
from autoscaler_helpers import bounds, reading, run, spec
from hypothesis import given, settings
from hypothesis import strategies as st

from tierwise.autoscaler.history import History
from tierwise.autoscaler.model import Limit, Signals
from tierwise.autoscaler.policy import decide

SETTLED = History(started_at=-10_000.0)
FLOOD = {"queue": 500.0, "kv": 0.95}  # every signal far over target


def burst(current: int, **fields: object) -> int:
    decision = decide(
        spec(headroomPerMinute=0, **fields),
        bounds(1, 1000),
        current=current,
        signals=reading(current, at=100.0, **FLOOD),
        history=SETTLED,
        now=100.0,
    )
    assert decision.limit is Limit.SCALE_UP_STEP
    return decision.desired


@pytest.mark.parametrize(
    ("current", "fields", "want"),
    [
        (40, {}, 60),  # default 50%: 40 -> 60
        (60, {}, 90),  # ... -> 90 on the next decision: doubled within two
        (2, {}, 6),  # small deployments: the 4-pod step is larger
        (40, {"maxScaleUpPercent": 100}, 80),  # the HPA's default
        (40, {"maxScaleUpPercent": 0}, 44),  # pods only (earlier builds)
        (7, {"maxScaleUpPercent": 10, "maxScaleUpStep": 1}, 8),  # ceil(0.7) = 1
    ],
)
def test_one_decision_adds_the_larger_of_pods_and_percent(
    current: int, fields: dict[str, object], want: int
) -> None:
    assert burst(current, **fields) == want


def test_a_40_replica_deployment_doubles_within_two_decisions() -> None:
    def flood(t: float, n: int) -> Signals:
        return reading(n, at=t, **FLOOD)

    decisions = run(spec(), bounds(1, 1000), start=40, load=flood, seconds=15)
    assert [d.desired for d in decisions] == [60, 90]


@settings(max_examples=200, deadline=None)
@given(st.integers(1, 200), st.integers(1, 20), st.integers(0, 300), st.floats(0, 600))
def test_no_decision_adds_more_than_the_limit(
    current: int, step: int, percent: int, queue: float
) -> None:
    decision = decide(
        spec(maxScaleUpStep=step, maxScaleUpPercent=percent),
        bounds(1, 1000),
        current=current,
        signals=reading(current, at=100.0, queue=queue, kv=0.9),
        history=SETTLED,
        now=100.0,
    )
    assert decision.desired - current <= max(step, math.ceil(current * percent / 100))
