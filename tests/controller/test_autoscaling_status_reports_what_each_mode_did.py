"""The status the autoscaler writes says what it did, or in advisory mode what it would do."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from tierwise.api.model_deployment import AutoscalingMode, AutoscalingSpec, ReplicasSpec
from tierwise.autoscaler.history import History
from tierwise.autoscaler.model import ReplicaSample, Signals
from tierwise.autoscaler.policy import decide
from tierwise.controller.status import autoscaling_status


def _busy_decision(mode: AutoscalingMode) -> tuple[int, dict[str, object]]:
    spec = AutoscalingSpec.model_validate({"mode": mode.value, "targetQueueDepth": 2})
    samples = (ReplicaSample(pod="p", queue_depth=8.0, running_requests=2.0, kv_cache_usage=0.5),)
    decision = decide(
        spec,
        ReplicasSpec(min=1, max=8),
        current=1,
        signals=Signals(observed_at=100.0, replicas=samples, demand=3.0),
        history=History(),
        now=100.0,
    )
    applied = datetime(2026, 1, 1, tzinfo=UTC) if decision.apply else None
    return decision.desired, autoscaling_status(decision, mode=mode, applied_at=applied)


@pytest.mark.parametrize(
    ("mode", "desired_field", "advised_field"),
    [
        (AutoscalingMode.TIERWISE, True, False),
        (AutoscalingMode.ADVISORY, False, True),
    ],
)
def test_scale_up_is_reported_where_the_mode_says(
    mode: AutoscalingMode, desired_field: bool, advised_field: bool
) -> None:
    desired, out = _busy_decision(mode)
    assert desired > 1, "a queue of 8 against a target of 2 must ask for more replicas"
    assert ("desiredReplicas" in out) is desired_field
    assert ("advisedReplicas" in out) is advised_field
    assert out.get("desiredReplicas", out.get("advisedReplicas")) == desired
    signals = out["lastSignals"]
    assert isinstance(signals, dict)
    assert signals["queueDepth"] == 8.0
    assert signals["routerDemand"] == 3.0
