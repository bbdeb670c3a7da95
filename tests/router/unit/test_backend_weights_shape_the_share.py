"""Backend.weight: a backend's share of its tier's traffic, split among its replicas, in
every balancing policy's choices (idle and busy), and ignored when a tier has one backend."""

from __future__ import annotations

from collections import Counter

import pytest

from tierwise.api.routing_policy import BalancingPolicy, BalancingSpec
from tierwise.router.balance import ReplicaLoad, make_balancer
from tierwise.router.features import RequestView, request_view
from tierwise.router.table import Endpoint
from tierwise.router.weights import SmoothRotation, shares


def endpoint(i: int, backend: str, weight: int) -> Endpoint:
    return Endpoint(f"http://10.0.{weight}.{i}:8000", backend, "m", weight=weight)


def fleet(*backends: tuple[str, int, int]) -> list[ReplicaLoad]:
    """``(backend, weight, replicas)`` per backend."""
    return [
        ReplicaLoad(endpoint(i, name, weight))
        for name, weight, count in backends
        for i in range(count)
    ]


def view(i: int) -> RequestView:
    messages = [{"role": "user", "content": f"Task {i}: " + "details " * 80}]
    return request_view("/v1/chat/completions", {}, {"model": "m", "messages": messages})


@pytest.mark.parametrize(
    ("backends", "expected"),
    [
        ([("a", 1, 3)], None),  # one backend: equal shares, fast path
        ([("a", 5, 2)], None),
        ([("a", 1, 1), ("b", 1, 1)], None),  # equal weights, equal replicas
        ([("a", 3, 1), ("b", 1, 1)], [0.75, 0.25]),
        ([("a", 1, 2), ("b", 1, 1)], [0.25, 0.25, 0.5]),  # a backend's share is split
        ([("a", 2, 2), ("b", 1, 1)], None),  # 1 + 1 vs 1: equal per replica
    ],
)
def test_shares_split_a_backends_weight_among_its_replicas(
    backends: list[tuple[str, int, int]], expected: list[float] | None
) -> None:
    got = shares(fleet(*backends))
    assert got == (None if expected is None else pytest.approx(expected))


def test_shares_of_no_endpoints_are_equal() -> None:
    assert shares([]) is None


def test_smooth_rotation_interleaves_and_follows_weights() -> None:
    rotation = SmoothRotation()
    urls = ["a", "b", "c"]
    picks = [urls[rotation.pick(urls, [5.0, 1.0, 1.0])] for _ in range(70)]
    assert Counter(picks) == {"a": 50, "b": 10, "c": 10}
    assert "bb" not in "".join(picks)
    assert "cc" not in "".join(picks)


def backend_share(picks: list[ReplicaLoad]) -> dict[str, float]:
    counts = Counter(r.endpoint.backend for r in picks)
    return {name: n / len(picks) for name, n in counts.items()}


POLICIES = [p for p in BalancingPolicy]


@pytest.mark.parametrize("policy", POLICIES)
def test_idle_replicas_get_traffic_in_proportion_to_backend_weight(
    policy: BalancingPolicy,
) -> None:
    balancer = make_balancer(BalancingSpec(policy=policy))
    reps = fleet(("big", 3, 2), ("small", 1, 1))
    picks = []
    for i in range(2_000):
        v = view(i)
        choice = balancer.choose(reps, v)
        balancer.record(choice, v, ok=False)  # nothing cached: every choice is fresh
        picks.append(choice.replica)
    share = backend_share(picks)
    assert share["big"] == pytest.approx(0.75, abs=0.05)
    per_replica = Counter(r.endpoint.url for r in picks if r.endpoint.backend == "big")
    low, high = sorted(per_replica.values())
    assert high / low < 1.25  # the big backend's replicas split its share


@pytest.mark.parametrize(
    "policy",
    [BalancingPolicy.LEAST_LOAD, BalancingPolicy.PREFIX_HASH, BalancingPolicy.PREFIX_AWARE],
)
def test_busy_replicas_hold_in_flight_work_in_proportion_to_weight(
    policy: BalancingPolicy,
) -> None:
    balancer = make_balancer(BalancingSpec(policy=policy))
    reps = fleet(("big", 4, 1), ("small", 1, 1))
    for i in range(200):  # requests that never finish
        choice = balancer.choose(reps, view(i))
        choice.replica.in_flight += 1
    big, small = reps
    assert big.in_flight / small.in_flight == pytest.approx(4.0, rel=0.3)


@pytest.mark.parametrize("policy", POLICIES)
def test_one_backend_tier_ignores_weight(policy: BalancingPolicy) -> None:
    balancer = make_balancer(BalancingSpec(policy=policy))
    reps = [ReplicaLoad(endpoint(i, "only", 1 + 99 * (i == 0))) for i in range(2)]
    picks: Counter[str] = Counter()
    for i in range(400):
        v = view(i)
        choice = balancer.choose(reps, v)
        balancer.record(choice, v, ok=False)
        picks[choice.replica.endpoint.url] += 1
    low, high = sorted(picks.values())
    assert high / low < 1.5
