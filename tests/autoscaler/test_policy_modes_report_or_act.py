"""tierwise acts, advisory only reports, external never proposes, disabled pins the spec."""

from __future__ import annotations

import pytest
from autoscaler_helpers import bounds, reading, spec

from tierwise.autoscaler.history import History
from tierwise.autoscaler.model import Reason
from tierwise.autoscaler.policy import decide

BUSY = reading(2, queue=20.0, kv=0.9)


@pytest.mark.parametrize("current", [0, 1, 2, 7])
def test_advisory_computes_the_same_decision_without_applying(current: int) -> None:
    signals = reading(current, queue=20.0, kv=0.9, demand=3.0)
    acting = decide(
        spec(), bounds(0, 10), current=current, signals=signals, history=History(), now=0
    )
    dry = decide(
        spec(mode="advisory"),
        bounds(0, 10),
        current=current,
        signals=signals,
        history=History(),
        now=0,
    )
    assert acting.apply
    assert not dry.apply
    assert (dry.desired, dry.reason, dry.limit) == (acting.desired, acting.reason, acting.limit)
    assert dry.message.startswith("advisory: ")


@pytest.mark.parametrize("current", [0, 2, 9])
def test_external_mode_never_changes_replicas(current: int) -> None:
    decision = decide(
        spec(mode="external"),
        bounds(0, 10),
        current=current,
        signals=BUSY,
        history=History(),
        now=0,
    )
    assert (decision.desired, decision.reason, decision.apply) == (
        current,
        Reason.EXTERNAL_OWNER,
        False,
    )
    assert decision.signals.queue_depth == 20.0  # still reported in status


@pytest.mark.parametrize(("lo", "target", "want"), [(1, None, 1), (0, None, 0), (1, 4, 4)])
def test_disabled_pins_target_or_min(lo: int, target: int | None, want: int) -> None:
    decision = decide(
        spec(enabled=False),
        bounds(lo, 10, target),
        current=2,
        signals=BUSY,
        history=History(),
        now=0,
    )
    assert (decision.desired, decision.reason) == (want, Reason.DISABLED)
