"""``Reconciling`` and ``Stalled``: the conditions GitOps tools read, derived from ours (pure).

Why it exists: Flux (through kstatus) and other tools built on it judge a custom resource by
three things only: ``status.observedGeneration`` equal to ``metadata.generation``, a
``Reconciling`` condition that is True while the controller still works toward the spec, and
a ``Stalled`` condition that is True when it cannot get there without a person. Tierwise's
own conditions (``Ready``, ``Progressing``, ``Degraded`` with their reasons) stay the
contract; these two are added beside them, so a HelmRelease or Kustomization that applies
ModelDeployments and RoutingPolicies waits for them and fails fast on a broken spec, with
no custom health code.

Rules (first match wins):

* ``Stalled`` True when ``Degraded`` is True for a reason that waiting cannot fix
  (``stalled_reasons``: an invalid spec, crash-looping pods, a failed rollout, a pod that
  missed its sidecar), with that reason and message;
* ``Reconciling`` True when ``Progressing`` is True (its reason), or when ``Ready`` is
  False for any other reason than a settled one (``settled_reasons``: scaled to zero is
  where a ModelDeployment is meant to be) — waiting for a ModelDeployment, a Secret or
  replicas is still work in progress;
* otherwise both False (``Complete``, ``AsExpected``).
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass
from enum import StrEnum

from tierwise.api.common import ConditionStatus, ConditionType
from tierwise.controller.status import ConditionLike


class KstatusReason(StrEnum):
    COMPLETE = "Complete"
    AS_EXPECTED = "AsExpected"


@dataclass(frozen=True)
class KstatusCondition:
    type: ConditionType
    status: ConditionStatus
    reason: StrEnum
    message: str


def kstatus_conditions(
    values: Sequence[ConditionLike],
    *,
    stalled_reasons: Collection[str],
    settled_reasons: Collection[str] = (),
) -> list[KstatusCondition]:
    """``Reconciling`` and ``Stalled`` for the Ready/Progressing/Degraded ``values``."""
    by_type = {v.type: v for v in values}
    t, f = ConditionStatus.TRUE, ConditionStatus.FALSE
    reconciling = KstatusCondition(ConditionType.RECONCILING, f, KstatusReason.COMPLETE, "")
    stalled = KstatusCondition(ConditionType.STALLED, f, KstatusReason.AS_EXPECTED, "")
    degraded = by_type.get(ConditionType.DEGRADED)
    progressing = by_type.get(ConditionType.PROGRESSING)
    ready = by_type.get(ConditionType.READY)
    if degraded is not None and degraded.status is t and degraded.reason in stalled_reasons:
        stalled = KstatusCondition(stalled.type, t, degraded.reason, degraded.message)
    elif progressing is not None and progressing.status is t:
        reconciling = KstatusCondition(
            reconciling.type, t, progressing.reason, progressing.message
        )
    elif ready is not None and ready.status is not t and ready.reason not in settled_reasons:
        reconciling = KstatusCondition(reconciling.type, t, ready.reason, ready.message)
    return [reconciling, stalled]
