"""The demo's traffic mix is deterministic, holds every kind in its share, and — decided
offline by the router's own tier rules over examples/00-demo — each kind lands on the
tier it is meant to show. Pure; about a second."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tierwise.api.documents import load_documents
from tierwise.api.routing_policy import RoutingPolicy
from tierwise.local.demo_traffic import SHARES, Kind, counts, demo_mix
from tierwise.router.features import request_view
from tierwise.router.table import build_table
from tierwise.router.tiers import choose_tier

POLICY = Path(__file__).parents[2] / "examples" / "00-demo" / "routingpolicy.yaml"
INTENDED = {Kind.CHAT: "small", Kind.CODE: "mid", Kind.AGENTIC: "mid",
            Kind.REASONING: "frontier"}


def policy() -> RoutingPolicy:
    (doc,) = list(load_documents(POLICY))
    assert isinstance(doc.resource, RoutingPolicy)
    return doc.resource


@pytest.mark.parametrize("n", [0, 1, 3, 4, 7, 40, 200, 1001])
def test_counts_add_up_and_every_kind_appears_from_four(n: int) -> None:
    per_kind = counts(n)
    assert sum(per_kind.values()) == n
    assert all(c >= 0 for c in per_kind.values())
    if n >= len(Kind):
        assert all(c >= 1 for c in per_kind.values())


@given(st.integers(min_value=20, max_value=2000))
@settings(max_examples=50, deadline=None)
def test_shares_are_kept_within_one_request(n: int) -> None:
    per_kind = counts(n)
    for kind, share in SHARES.items():
        assert abs(per_kind[kind] - n * share) <= 1


def test_same_seed_same_mix_other_seed_other_order() -> None:
    first = [(d.request.id, d.request.messages, d.stream) for d in demo_mix(60, 3)]
    again = [(d.request.id, d.request.messages, d.stream) for d in demo_mix(60, 3)]
    other = [(d.request.id, d.request.messages, d.stream) for d in demo_mix(60, 4)]
    assert first == again
    assert first != other
    assert demo_mix(0, 0) == []


def test_mix_streams_about_half_and_keeps_session_turns_in_order() -> None:
    mix = demo_mix(200, 0)
    assert 90 <= sum(d.stream for d in mix) <= 110
    turns: dict[str, list[int]] = {}
    for d in mix:
        turns.setdefault(d.request.session_id, []).append(d.request.turn)
    agentic = [t for sid, t in turns.items() if sid.startswith("agent-")]
    assert agentic
    assert all(t == sorted(t) for t in agentic)
    assert any(len(t) > 1 for t in agentic)  # real multi-turn sessions


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_each_kind_is_routed_to_its_tier_by_the_demo_policy(seed: int) -> None:
    table = build_table(policy(), {"small-llm": ["http://127.0.0.1:1"],
                                   "mid-llm": ["http://127.0.0.1:2"]})
    routed: Counter[tuple[Kind, str]] = Counter()
    for item in demo_mix(200, seed):
        body = item.request.body("auto", stream=item.stream)
        decision = choose_tier(table, request_view("/v1/chat/completions", {}, body))
        routed[(item.kind, decision.tier)] += 1
    assert {kind: tier for kind, tier in routed} == INTENDED
    assert all(routed[(kind, tier)] > 0 for kind, tier in INTENDED.items())


def test_non_ascii_prompts_are_part_of_the_mix() -> None:
    texts = [m["content"] for d in demo_mix(200, 0) if d.kind is Kind.REASONING
             for m in d.request.messages]
    assert any("证明" in t for t in texts)
    assert any("Démontrez" in t for t in texts)
