"""Idle replicas with cold caches go first; replicas mid-stream go last; values fit int32."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tierwise.autoscaler.deletion_cost import (
    INT32_MAX,
    deletion_cost,
    deletion_costs,
    removal_order,
)
from tierwise.autoscaler.model import ReplicaSample


def pod(
    name: str,
    running: float | None = 0,
    waiting: float | None = 0,
    kv: float = 0.0,
    hits: float = 0.0,
) -> ReplicaSample:
    return ReplicaSample(
        name,
        running_requests=running,
        queue_depth=waiting,
        kv_cache_usage=kv,
        prefix_cache_hit_rate=hits,
    )


@pytest.mark.parametrize(
    ("samples", "order"),
    [
        ([], []),
        ([pod("a", running=3), pod("b"), pod("c", running=1)], ["b", "c", "a"]),
        # idle pods: the one whose cache serves hits stays
        ([pod("warm", kv=0.9, hits=0.8), pod("cold", kv=0.9, hits=0.0)], ["cold", "warm"]),
        # one request in flight outweighs any cache
        ([pod("busy", running=1), pod("warm", kv=1.0, hits=1.0)], ["warm", "busy"]),
        # waiting requests count as in flight
        ([pod("q", waiting=2), pod("r", running=1)], ["r", "q"]),
        # unreadable pods go first
        ([pod("ünï", running=None, waiting=None), pod("ok")], ["ünï", "ok"]),
    ],
)
def test_removal_order(samples: list[ReplicaSample], order: list[str]) -> None:
    assert removal_order(samples) == order
    assert list(deletion_costs(samples)) == [s.pod for s in samples]


@given(
    st.floats(min_value=0, max_value=1e12),
    st.floats(min_value=0, max_value=1e12),
    st.floats(min_value=-5, max_value=5),
    st.floats(min_value=-5, max_value=5),
)
def test_costs_are_int32_and_grow_with_in_flight(
    running: float, waiting: float, kv: float, hits: float
) -> None:
    cost = deletion_cost(pod("p", running, waiting, kv, hits))
    assert 0 <= cost <= INT32_MAX
    assert deletion_cost(pod("p", running + 1, waiting, kv, hits)) >= cost
    assert str(cost) == deletion_costs([pod("p", running, waiting, kv, hits)])["p"]
