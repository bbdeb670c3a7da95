"""GitOps tools read Reconciling and Stalled (kstatus): derived from Ready, Progressing and
Degraded so Flux waits while the operator works and fails at once when a person must act."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

import pytest

from tierwise.api.common import ConditionStatus, ConditionType
from tierwise.controller.kstatus import kstatus_conditions
from tierwise.controller.plan import SETTLED
from tierwise.controller.plan import STALLED as MD_STALLED
from tierwise.controller.policy_plan import STALLED as RP_STALLED
from tierwise.controller.policy_status import PolicyReason
from tierwise.controller.status import Reason

T, F = ConditionStatus.TRUE, ConditionStatus.FALSE


@dataclass(frozen=True)
class Cond:
    type: ConditionType
    status: ConditionStatus
    reason: StrEnum
    message: str = "why"


def _ours(ready: tuple[ConditionStatus, StrEnum], progressing: tuple[ConditionStatus, StrEnum],
          degraded: tuple[ConditionStatus, StrEnum]) -> list[Cond]:  # fmt: skip
    kinds = (ConditionType.READY, ConditionType.PROGRESSING, ConditionType.DEGRADED)
    return [Cond(k, s, r) for k, (s, r) in zip(kinds, (ready, progressing, degraded), strict=True)]


MD = {"stalled_reasons": MD_STALLED, "settled_reasons": SETTLED}
RP = {"stalled_reasons": RP_STALLED}
CASES = [
    ("md-ready", MD, (T, Reason.ALL_REPLICAS_READY), (F, Reason.COMPLETE),
     (F, Reason.AS_EXPECTED), (F, F)),
    ("md-loading", MD, (F, Reason.REPLICAS_NOT_READY), (T, Reason.LOADING),
     (F, Reason.AS_EXPECTED), (T, F)),
    ("md-scaled-to-zero", MD, (F, Reason.SCALED_TO_ZERO), (F, Reason.COMPLETE),
     (F, Reason.AS_EXPECTED), (F, F)),
    ("md-invalid-spec", MD, (F, Reason.REPLICAS_NOT_READY), (F, Reason.COMPLETE),
     (T, Reason.INVALID_SPEC), (F, T)),
    ("md-crash-loop", MD, (F, Reason.REPLICAS_NOT_READY), (F, Reason.COMPLETE),
     (T, Reason.PODS_FAILING), (F, T)),
    ("md-missing-secret", MD, (F, Reason.REPLICAS_NOT_READY), (F, Reason.COMPLETE),
     (T, Reason.MISSING_REFERENCE), (T, F)),
    ("rp-ready", RP, (T, PolicyReason.READY), (F, PolicyReason.COMPLETE),
     (F, PolicyReason.AS_EXPECTED), (F, F)),
    ("rp-router-rolling", RP, (F, PolicyReason.ROUTER_NOT_READY), (T, PolicyReason.ROLLING_OUT),
     (F, PolicyReason.AS_EXPECTED), (T, F)),
    ("rp-missing-model", RP, (F, PolicyReason.MISSING_MODEL_DEPLOYMENT),
     (F, PolicyReason.COMPLETE), (T, PolicyReason.MISSING_MODEL_DEPLOYMENT), (T, F)),
    ("rp-sidecar-missed", RP, (F, PolicyReason.NOT_INJECTED), (F, PolicyReason.COMPLETE),
     (T, PolicyReason.NOT_INJECTED), (F, T)),
    ("rp-invalid", RP, (F, PolicyReason.INVALID_SPEC), (F, PolicyReason.COMPLETE),
     (T, PolicyReason.INVALID_SPEC), (F, T)),
]  # fmt: skip


@pytest.mark.parametrize(
    ("case", "kind", "ready", "progressing", "degraded", "expected"),
    CASES,
    ids=[c[0] for c in CASES],
)
def test_reconciling_and_stalled(
    case: str,
    kind: dict[str, frozenset[str]],
    ready: tuple[ConditionStatus, StrEnum],
    progressing: tuple[ConditionStatus, StrEnum],
    degraded: tuple[ConditionStatus, StrEnum],
    expected: tuple[ConditionStatus, ConditionStatus],
) -> None:
    reconciling, stalled = kstatus_conditions(_ours(ready, progressing, degraded), **kind)
    assert (reconciling.type, stalled.type) == (ConditionType.RECONCILING, ConditionType.STALLED)
    assert (reconciling.status, stalled.status) == expected
    if stalled.status is T:
        assert (stalled.reason, stalled.message) == (degraded[1], "why")
    elif reconciling.status is T:
        assert reconciling.reason in (progressing[1], ready[1])
    else:
        assert (reconciling.reason, stalled.reason) == ("Complete", "AsExpected")
