"""Phase and conditions come from what the Deployment and its pods report."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from tierwise.api.model_deployment import Phase
from tierwise.controller.status import (
    ConditionValue,
    Problem,
    Reason,
    conditions_of,
    deployment_health,
    phase_of,
    render_conditions,
)

T0 = datetime(2026, 1, 1, tzinfo=UTC)
T1 = datetime(2026, 1, 1, 0, 5, tzinfo=UTC)


def _deployment(
    desired: int, ready: int, *, conditions: list[dict[str, Any]] | None = None
) -> dict[str, Any]:
    return {
        "metadata": {"name": "m", "generation": 1},
        "spec": {"replicas": desired},
        "status": {
            "observedGeneration": 1,
            "replicas": desired,
            "readyReplicas": ready,
            "updatedReplicas": desired,
            "conditions": conditions or [],
        },
    }


def _pod(reason: str) -> dict[str, Any]:
    waiting = {"state": {"waiting": {"reason": reason, "message": "back-off ünïcode 再起動"}}}
    return {"metadata": {"name": "m-abc"}, "status": {"containerStatuses": [waiting]}}


STALLED = [{"type": "Progressing", "status": "False", "reason": "ProgressDeadlineExceeded"}]
REPLICA_FAILURE = [{"type": "ReplicaFailure", "status": "True", "reason": "FailedCreate"}]


@pytest.mark.parametrize(
    ("deployment", "pods", "problems", "phase"),
    [
        (None, [], [], Phase.PENDING),
        (None, [], [Problem("spec.model.uri", "claim missing")], Phase.FAILED),
        (_deployment(2, 0), [], [], Phase.LOADING),
        (_deployment(2, 1), [], [], Phase.LOADING),
        (_deployment(2, 2), [], [], Phase.READY),
        (_deployment(0, 0), [], [], Phase.SCALED_TO_ZERO),
        (_deployment(2, 1), [_pod("CrashLoopBackOff")], [], Phase.DEGRADED),
        (_deployment(2, 0), [_pod("CrashLoopBackOff")], [], Phase.FAILED),
        (_deployment(1, 0), [_pod("ImagePullBackOff")], [], Phase.FAILED),
        (_deployment(1, 0), [_pod("ContainerCreating")], [], Phase.LOADING),
        (_deployment(2, 1, conditions=STALLED), [], [], Phase.DEGRADED),
        (_deployment(2, 0, conditions=REPLICA_FAILURE), [], [], Phase.FAILED),
        (_deployment(2, 2), [], [Problem("spec.engine.args[0]", "x")], Phase.DEGRADED),
    ],
)
def test_phase(deployment: Any, pods: list[Any], problems: list[Problem], phase: Phase) -> None:
    assert phase_of(deployment_health(deployment, pods), problems) is phase


@pytest.mark.parametrize(
    ("deployment", "pods", "problems", "expected"),
    [
        (_deployment(2, 2), [], [], {"Ready": "True", "Progressing": "False", "Degraded": "False"}),
        (_deployment(2, 1), [], [], {"Ready": "False", "Progressing": "True", "Degraded": "False"}),
        (None, [], [], {"Ready": "False", "Progressing": "True", "Degraded": "False"}),
        (
            _deployment(2, 0),
            [_pod("CrashLoopBackOff")],
            [],
            {"Ready": "False", "Progressing": "False", "Degraded": "True"},
        ),
        (
            None,
            [],
            [
                Problem(
                    "spec.model.tokenSecretRef.name",
                    "Secret 'hf' does not exist",
                    Reason.MISSING_REFERENCE,
                )
            ],
            {"Ready": "False", "Progressing": "False", "Degraded": "True"},
        ),
    ],
)
def test_conditions(
    deployment: Any, pods: list[Any], problems: list[Problem], expected: dict[str, str]
) -> None:
    health = deployment_health(deployment, pods)
    values = conditions_of(health, phase_of(health, problems), problems)
    assert {v.type.value: v.status.value for v in values} == expected


def test_degraded_names_the_field_and_reason() -> None:
    problem = Problem(
        "spec.model.tokenSecretRef.name", "Secret 'hf' does not exist", Reason.MISSING_REFERENCE
    )
    health = deployment_health(None, [])
    degraded = conditions_of(health, phase_of(health, [problem]), [problem])[-1]
    assert degraded.reason is Reason.MISSING_REFERENCE
    assert degraded.message.startswith("spec.model.tokenSecretRef.name: ")


def test_crash_looping_pod_is_named_in_degraded() -> None:
    health = deployment_health(_deployment(1, 0), [_pod("CrashLoopBackOff")])
    degraded = conditions_of(health, phase_of(health, []), [])[-1]
    assert degraded.reason is Reason.PODS_FAILING
    assert "m-abc" in degraded.message


@pytest.mark.parametrize(
    ("old_status", "new_status", "moved"),
    [("True", "True", False), ("False", "True", True), (None, "True", True)],
)
def test_transition_time_moves_only_when_status_flips(
    old_status: str | None, new_status: str, moved: bool
) -> None:
    previous = (
        []
        if old_status is None
        else [{"type": "Ready", "status": old_status, "lastTransitionTime": "2026-01-01T00:00:00Z"}]
    )
    value = ConditionValue(*_ready(new_status))
    (cond,) = render_conditions([value], previous, generation=3, now=T1)
    assert (cond["lastTransitionTime"] == "2026-01-01T00:05:00Z") is moved
    assert cond["observedGeneration"] == 3


def _ready(status: str) -> tuple[Any, ...]:
    from tierwise.api.common import ConditionStatus, ConditionType

    return (ConditionType.READY, ConditionStatus(status), Reason.ALL_REPLICAS_READY, "")
