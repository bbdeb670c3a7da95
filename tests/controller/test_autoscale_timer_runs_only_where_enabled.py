"""kopf runs the autoscale timer only for ModelDeployments that autoscale: at 500 objects
with autoscaling disabled, a no-op tick every 5 s each was about 100 handler runs a second
(docs/benchmarks/operator_busy_cluster.md)."""

from __future__ import annotations

import pytest

from tierwise.controller.handlers import autoscaling_enabled


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        ({}, True),  # enabled is the default
        ({"autoscaling": {}}, True),
        ({"autoscaling": {"enabled": True, "mode": "advisory"}}, True),
        ({"autoscaling": {"enabled": False}}, False),
        ({"autoscaling": None}, True),
    ],
)
def test_the_timer_filter_follows_spec_autoscaling_enabled(
    spec: dict[str, object], expected: bool
) -> None:
    assert autoscaling_enabled(spec) is expected
