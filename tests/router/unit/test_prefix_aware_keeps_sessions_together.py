"""Replica selection: prefix affinity while load allows, saturation cut-off, sessions,
least-load and round-robin, and load spread within a bound."""

from __future__ import annotations

import random
from collections import Counter
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tierwise.api.routing_policy import BalancingSpec
from tierwise.router.balance import (
    Affinity,
    BalancerTuning,
    LeastLoad,
    NoReplicaError,
    PrefixAware,
    PrefixHash,
    ReplicaLoad,
    RoundRobin,
    make_balancer,
)
from tierwise.router.features import RequestView, request_view
from tierwise.router.table import Endpoint

TUNING = BalancerTuning(block_chars=16, capacity_blocks=10_000)
SYSTEM = "You are a careful agent. " * 20


def replicas(n: int) -> list[ReplicaLoad]:
    return [ReplicaLoad(Endpoint(f"http://127.0.0.1:{8000 + i}", "md", "m")) for i in range(n)]


def req(text: str, *, headers: dict[str, str] | None = None, **body: Any) -> RequestView:
    messages = [{"role": "system", "content": SYSTEM}, {"role": "user", "content": text}]
    return request_view(
        "/v1/chat/completions", headers or {}, {"model": "m", "messages": messages, **body}
    )


def prefix_aware(**spec: Any) -> PrefixAware:
    return PrefixAware(BalancingSpec.model_validate(spec), TUNING)


def send(balancer: PrefixAware, reps: list[ReplicaLoad], view: RequestView) -> ReplicaLoad:
    choice = balancer.choose(reps, view)
    balancer.record(choice, view, ok=True)
    return choice.replica


@pytest.mark.parametrize(
    ("policy", "kind"),
    [
        ("prefix-aware", PrefixAware),
        ("prefix-hash", PrefixHash),
        ("least-load", LeastLoad),
        ("round-robin", RoundRobin),
    ],
)
def test_factory_builds_the_named_policy(policy: str, kind: type) -> None:
    balancer = make_balancer(BalancingSpec.model_validate({"policy": policy}))
    assert isinstance(balancer, kind)
    assert balancer.needs_prompt is policy.startswith("prefix-")


def test_same_prefix_goes_to_same_replica() -> None:
    b, reps = prefix_aware(), replicas(4)
    first = send(b, reps, req("task one: " + "details " * 30))
    for turn in range(5):
        view = req("task one: " + "details " * 30 + f" turn {turn}")
        choice = b.choose(reps, view)
        assert choice.replica is first
        assert choice.affinity is Affinity.HIT
        assert choice.matched_tokens >= 32
        b.record(choice, view, ok=True)


def test_new_sessions_spread_by_load_when_prefixes_tie() -> None:
    b, reps = prefix_aware(), replicas(4)
    for r in reps:  # every replica already holds the shared system prompt
        b.record(b.choose([r], req("warm-up")), req("warm-up"), ok=True)
    picked = []
    for i in range(4):
        choice = b.choose(reps, req(f"session {i}: " + "x" * 100))
        assert choice.affinity is Affinity.HIT  # the system prompt is cached everywhere
        b.record(choice, req(f"session {i}: " + "x" * 100), ok=True)
        choice.replica.in_flight += 1  # still running
        picked.append(choice.replica)
    assert len({id(r) for r in picked}) == 4


def test_cold_replicas_get_work_once_the_warm_one_is_busy() -> None:
    b, reps = prefix_aware(), replicas(2)
    home = send(b, reps, req("first"))
    home.in_flight = int(TUNING.imbalance_slack) + 1
    choice = b.choose(reps, req("second"))
    assert choice.replica is not home
    assert choice.affinity is Affinity.MISS


def test_failed_request_is_not_remembered() -> None:
    b, reps = prefix_aware(), replicas(2)
    view = req("unique " * 50)
    choice = b.choose(reps, view)
    b.record(choice, view, ok=False)
    assert b.choose(reps, req("unique " * 50)).affinity is Affinity.MISS


@pytest.mark.parametrize(
    ("load", "why"),
    [
        ({"queue_depth": 5}, "saturated"),
        ({"kv_cache_usage": 0.8}, "saturated"),
        ({"in_flight": 5}, "saturated"),
    ],
)
def test_saturated_replica_loses_affinity(load: dict[str, Any], why: str) -> None:
    b, reps = prefix_aware(), replicas(2)
    home = send(b, reps, req("long shared context " * 20))
    for key, value in load.items():
        setattr(home, key, value)
    choice = b.choose(reps, req("long shared context " * 20 + "more"))
    assert choice.replica is not home
    assert choice.affinity is Affinity.MISS


def test_lower_saturation_thresholds_apply() -> None:
    b, reps = prefix_aware(saturationQueueDepth=2, saturationKVCacheUsage=0.5), replicas(2)
    home = send(b, reps, req("ctx " * 80))
    home.queue_depth = 1
    assert b.choose(reps, req("ctx " * 80)).replica is home
    home.kv_cache_usage = 0.5
    assert b.choose(reps, req("ctx " * 80)).replica is not home


def test_all_saturated_falls_back_to_least_load() -> None:
    b, reps = prefix_aware(), replicas(3)
    send(b, reps, req("ctx " * 80))
    for r, q in zip(reps, (9, 6, 7), strict=True):
        r.queue_depth = q
    choice = b.choose(reps, req("ctx " * 80))
    assert choice.replica is reps[1]
    assert "all replicas saturated" in choice.reason


def test_short_match_is_not_worth_affinity() -> None:
    b = PrefixAware(BalancingSpec(min_prefix_match_tokens=1000), TUNING)
    reps = replicas(2)
    home = send(b, reps, req("abc " * 40))
    home.in_flight = 3
    choice = b.choose(reps, req("abc " * 40))
    assert choice.replica is not home
    assert "< minPrefixMatchTokens" in choice.reason


@pytest.mark.parametrize("session", ["s-1", "sessión-ü", "x" * 300])
def test_session_header_pins_the_replica(session: str) -> None:
    b, reps = prefix_aware(sessionHeader="X-Conversation"), replicas(4)
    home = send(b, reps, req("first", headers={"x-conversation": session}))
    home.in_flight = 2
    choice = b.choose(reps, req("unrelated text", headers={"x-conversation": session}))
    assert choice.replica is home
    assert choice.affinity is Affinity.HIT
    assert "session" in choice.reason


def test_user_field_is_the_session_when_no_header() -> None:
    b, reps = prefix_aware(), replicas(4)
    home = send(b, reps, req("a", user="alice"))
    home.in_flight = 2
    assert b.choose(reps, req("b", user="alice")).replica is home
    assert "session" not in b.choose(reps, req("b", user="bob")).reason


def test_session_pins_are_bounded() -> None:
    b = PrefixAware(BalancingSpec(), BalancerTuning(session_capacity=3))
    reps = replicas(2)
    for i in range(10):
        send(b, reps, req(str(i), user=f"u{i}"))
    assert len(b._sessions) == 3


def test_unhealthy_replicas_are_skipped_and_none_raises() -> None:
    reps = replicas(3)
    reps[0].healthy = reps[1].healthy = False
    for balancer in (prefix_aware(), LeastLoad(), RoundRobin()):
        assert balancer.choose(reps, req("x")).replica is reps[2]
    reps[2].healthy = False
    for balancer in (prefix_aware(), LeastLoad(), RoundRobin()):
        with pytest.raises(NoReplicaError):
            balancer.choose(reps, req("x"))
    with pytest.raises(NoReplicaError):
        LeastLoad().choose([], req("x"))


def test_least_load_counts_in_flight_and_queue() -> None:
    reps = replicas(3)
    reps[0].in_flight, reps[1].in_flight, reps[2].in_flight = 1, 0, 0
    reps[1].queue_depth = 4.0
    choice = LeastLoad().choose(reps, req("x"))
    assert choice.replica is reps[2]
    assert choice.affinity is Affinity.NONE


def test_least_load_ties_rotate() -> None:
    balancer, reps = LeastLoad(), replicas(4)
    counts = Counter(balancer.choose(reps, req("x")).replica.endpoint.url for _ in range(400))
    assert set(counts.values()) == {100}


def test_round_robin_cycles() -> None:
    balancer, reps = RoundRobin(), replicas(3)
    urls = [balancer.choose(reps, req("x")).replica.endpoint.url for _ in range(6)]
    assert urls == [r.endpoint.url for r in reps] * 2


def test_retain_forgets_removed_replicas() -> None:
    b, reps = prefix_aware(), replicas(2)
    for r in reps:
        b.record(b.choose([r], req("y " * 40)), req("y " * 40), ok=True)
    b.retain({reps[0].endpoint.url})
    assert b.index(reps[0].endpoint.url) is not None
    assert b.index(reps[1].endpoint.url) is None


@settings(max_examples=25, deadline=None)
@given(seed=st.integers(0, 10_000), n_replicas=st.integers(2, 6))
def test_load_spread_stays_within_bound(seed: int, n_replicas: int) -> None:
    """Multi-turn sessions with concurrent requests: affinity never piles in-flight work
    on one replica beyond the imbalance cut-off (factor x least in-flight + slack)."""
    rng = random.Random(seed)
    b, reps = prefix_aware(), replicas(n_replicas)
    sessions = [f"sess-{i} " * 10 for i in range(24)]
    running: list[tuple[ReplicaLoad, RequestView]] = []
    for _ in range(300):
        text = rng.choice(sessions)
        view = req(text + "turn")
        choice = b.choose(reps, view)
        least = min(r.in_flight for r in reps)
        assert choice.replica.in_flight <= TUNING.imbalance_factor * least + TUNING.imbalance_slack
        choice.replica.in_flight += 1
        running.append((choice.replica, view))
        if len(running) > 12 or rng.random() < 0.3:
            done, done_view = running.pop(rng.randrange(len(running)))
            done.in_flight -= 1
            b.record(choice, done_view, ok=True)
