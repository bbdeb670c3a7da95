"""Unknown signals hold or fill conservatively; they never look like an idle model."""

from __future__ import annotations

import pytest
from autoscaler_helpers import bounds, reading, spec

from tierwise.autoscaler.history import History
from tierwise.autoscaler.model import Limit, Reason, ReplicaSample, Signal, Signals
from tierwise.autoscaler.policy import decide

SETTLED = History(started_at=-10_000.0, last_traffic_at=-10_000.0)
EAGER = spec(scaleDownWindow="0s", scaleToZeroAfter="0s", maxScaleDownStep=10)


@pytest.mark.parametrize("demand", [None, 0.0, 7.0])
def test_every_load_signal_missing_holds(demand: float | None) -> None:
    signals = reading(3, queue=None, kv=None, running=None, demand=demand)
    decision = decide(EAGER, bounds(0, 10), current=3, signals=signals, history=SETTLED, now=1)
    assert (decision.desired, decision.reason) == (3, Reason.SIGNALS_MISSING)
    assert Signal.QUEUE_DEPTH in decision.signals.missing


def test_no_ready_replica_reporting_holds_and_says_why() -> None:
    signals = Signals(observed_at=1.0, demand=0.0, problems=("pod-0: connection refused",))
    decision = decide(EAGER, bounds(0, 10), current=2, signals=signals, history=SETTLED, now=1)
    assert (decision.desired, decision.reason) == (2, Reason.SIGNALS_MISSING)
    assert "connection refused" in decision.message


def test_one_silent_replica_blocks_scale_down() -> None:
    quiet = ReplicaSample("pod-x", queue_depth=None, running_requests=None, kv_cache_usage=0.0)
    signals = reading(3, kv=0.0, demand=0.0)
    signals = Signals(observed_at=1.0, replicas=(*signals.replicas, quiet), demand=0.0)
    decision = decide(EAGER, bounds(0, 10), current=4, signals=signals, history=SETTLED, now=1)
    assert (decision.desired, decision.limit) == (4, Limit.SIGNALS_MISSING)


@pytest.mark.parametrize(("reporting", "want"), [(4, 8), (3, 6), (2, 4), (1, 2)])
def test_replicas_that_did_not_report_count_as_idle_for_scale_up(reporting: int, want: int) -> None:
    # each reporting replica has 10 waiting; silent ones are assumed idle: ceil(10k / 5)
    signals = reading(reporting, queue=10.0, kv=0.5)
    decision = decide(
        spec(maxScaleUpStep=100), bounds(1, 50), current=4, signals=signals, history=SETTLED, now=1
    )
    assert decision.desired == max(want, 4)


def test_unknown_router_demand_never_parks_a_model() -> None:
    signals = reading(1, queue=0.0, kv=0.0, running=0.0, demand=None)
    decision = decide(EAGER, bounds(0, 10), current=1, signals=signals, history=SETTLED, now=1)
    assert decision.desired == 1
    at_zero = decide(EAGER, bounds(0, 10), current=0, signals=Signals(1.0), history=SETTLED, now=1)
    assert (at_zero.desired, at_zero.reason) == (0, Reason.SIGNALS_MISSING)
