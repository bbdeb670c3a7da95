"""Cold start: measured from the pods (creation to Ready), or set; the slower replicas start,
the more spare capacity stands (headroomPerMinute), and the trend looks that far ahead."""

from __future__ import annotations

from typing import Any

import pytest
from autoscaler_helpers import bounds, reading, spec
from hypothesis import given, settings
from hypothesis import strategies as st

from tierwise.autoscaler.coldstart import DEFAULT_COLD_START_S, MAX_HEADROOM, headroom, measured
from tierwise.autoscaler.history import History
from tierwise.autoscaler.model import Reason
from tierwise.autoscaler.policy import decide

SETTLED = History(started_at=-10_000.0)
REACTIVE = {"scaleUpLookahead": "0s"}


def pod(created: str | None, ready: str | None, *, status: str = "True") -> dict[str, Any]:
    conditions = [{"type": "PodScheduled", "status": "True", "lastTransitionTime": created}]
    if ready is not None:
        conditions.append({"type": "Ready", "status": status, "lastTransitionTime": ready})
    return {"metadata": {"creationTimestamp": created}, "status": {"conditions": conditions}}


def at(minute: int, second: int = 0) -> str:
    return f"2024-05-13T10:{minute:02d}:{second:02d}Z"


def test_the_cold_start_is_the_median_of_the_newest_ready_pods() -> None:
    pods = [
        pod(at(0), at(9)),  # oldest: left out of the newest five
        pod(at(1), at(2)),  # 60 s
        pod(at(2), at(5)),  # 180 s
        pod(at(3), at(5)),  # 120 s
        pod(at(4), at(14)),  # 600 s: a restarted container
        pod(at(5), at(7)),  # 120 s
        pod(at(6), None),  # still starting
        pod(at(7), at(8), status="False"),  # not ready
        pod("yesterday", at(9)),  # unreadable
    ]
    assert measured(pods) == 120.0


@pytest.mark.parametrize("pods", [[], [pod(at(1), None)], [{"metadata": {}}], [pod(at(5), at(1))]])
def test_no_ready_pod_means_no_measurement(pods: list[dict[str, Any]]) -> None:
    assert measured(pods) is None


@pytest.mark.parametrize(
    ("percent", "seconds", "factor"),
    [(5, 60, 1.05), (5, 180, 1.157625), (5, 600, 1.6289), (0, 600, 1.0), (50, 1800, MAX_HEADROOM)],
)
def test_headroom_compounds_per_minute_of_cold_start(
    percent: float, seconds: float, factor: float
) -> None:
    assert headroom(percent, seconds) == pytest.approx(factor, rel=1e-4)


def kv_decision(cold: float | None, **fields: object) -> tuple[int, str]:
    """Four replicas at exactly the configured KV target (0.8)."""
    signals = reading(4, at=100.0, kv=0.8, cold_start=cold)
    decision = decide(
        spec(**REACTIVE, **fields),
        bounds(1, 40),
        current=4,
        signals=signals,
        history=SETTLED,
        now=100.0,
    )
    return decision.desired, decision.message


def test_at_target_a_slow_cold_start_asks_for_spare_replicas() -> None:
    assert kv_decision(180.0)[0] == 5  # target 0.8 / 1.158 = 0.69: ceil(4 * 1.158)
    assert kv_decision(600.0)[0] == 7  # target 0.8 / 1.629 = 0.49: ceil(4 * 1.629)
    assert kv_decision(600.0, headroomPerMinute=0)[0] == 4


def test_the_message_names_the_headroom_and_the_cold_start() -> None:
    _, message = kv_decision(180.0)
    assert "target 0.691 (0.8 with 16% headroom for a 180s cold start)" in message


def test_coldstart_in_the_spec_wins_over_the_measurement() -> None:
    assert kv_decision(600.0, coldStart="1m")[0] == kv_decision(60.0)[0]


def test_without_a_measurement_the_default_cold_start_applies() -> None:
    assert DEFAULT_COLD_START_S == 120.0
    assert kv_decision(None)[0] == kv_decision(120.0)[0]
    assert "for a 120s cold start" in kv_decision(None)[1]


@settings(max_examples=150, deadline=None)
@given(
    st.floats(0, 900),
    st.floats(0, 900),
    st.floats(0, 1.2),
    st.floats(0, 30),
    st.integers(1, 30),
)
def test_a_slower_cold_start_never_means_fewer_replicas(
    fast: float, slow: float, kv: float, percent: float, current: int
) -> None:
    fast, slow = min(fast, slow), max(fast, slow)

    def desired(cold: float) -> int:
        return decide(
            spec(**REACTIVE, headroomPerMinute=percent),
            bounds(1, 100),
            current=current,
            signals=reading(current, at=100.0, kv=kv, cold_start=cold),
            history=SETTLED,
            now=100.0,
        ).desired

    assert desired(fast) <= desired(slow)


def test_the_reason_stays_the_kv_cache() -> None:
    signals = reading(4, at=100.0, kv=0.8, cold_start=600.0)
    decision = decide(
        spec(**REACTIVE), bounds(1, 40), current=4, signals=signals, history=SETTLED, now=100.0
    )
    assert decision.reason is Reason.KV_CACHE_USAGE
