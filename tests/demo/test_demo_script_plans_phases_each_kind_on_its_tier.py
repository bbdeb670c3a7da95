"""The demo's traffic script is deterministic, spreads ``--requests`` over four phases of
``--duration`` in the stated shares, turns the burst mostly into short chat and the quiet
spell into a trickle of chat only, plans one wake candidate per kind, keeps agent sessions
whole and early in their phase — and, decided offline by the router's own tier rules over
examples/00-demo, each kind lands on the tier it is meant to show. Pure; a few seconds."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tierwise.api.documents import load_documents
from tierwise.api.routing_policy import RoutingPolicy
from tierwise.demo.script import (
    MIN_DURATION_S,
    MIN_REQUESTS,
    SESSION_START_SHARE,
    Phase,
    build_script,
    split,
)
from tierwise.demo.traffic import Kind
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


@given(total=st.integers(0, 5000),
       shares=st.dictionaries(st.sampled_from(list(Kind)), st.floats(0.01, 1.0), min_size=1))
@settings(max_examples=80, deadline=None)
def test_split_adds_up_and_stays_within_one_of_the_share(total: int,
                                                         shares: dict[Kind, float]) -> None:
    counts = split(total, shares)
    assert sum(counts.values()) == total
    weight = sum(shares.values())
    assert all(abs(counts[k] - total * s / weight) < 1 for k, s in shares.items())


@pytest.mark.parametrize(("duration", "requests"), [(20, 40), (40, 400), (61.5, 1001)])
def test_phases_split_duration_and_requests(duration: float, requests: int) -> None:
    script = build_script(duration, requests, seed=3)
    assert [p.phase for p in script.phases] == list(Phase)
    assert script.length_s == pytest.approx(duration)
    lengths = {p.phase: p.length_s / duration for p in script.phases}
    assert lengths == pytest.approx({Phase.STEADY: 0.25, Phase.BURST: 0.25,
                                     Phase.QUIET: 0.30, Phase.WAKE: 0.20})
    assert sum(p.requests for p in script.phases) == requests
    sent = [p for p in script.items if not p.wake]
    assert len(sent) + 1 == requests  # plus the one wake candidate the player keeps
    for plan in script.phases:
        assert all(0 <= p.at_s <= plan.length_s for p in script.of(plan.phase))


def test_burst_is_mostly_chat_and_quiet_only_a_trickle_of_chat() -> None:
    script = build_script(40, 400, seed=0)
    kinds = {phase: Counter(p.item.kind for p in script.of(phase)) for phase in Phase}
    rates = {p.phase: p.requests / p.length_s for p in script.phases}
    assert rates[Phase.BURST] > 2 * rates[Phase.STEADY]
    assert kinds[Phase.BURST][Kind.CHAT] / sum(kinds[Phase.BURST].values()) >= 0.7
    assert set(kinds[Phase.QUIET]) == {Kind.CHAT}
    assert rates[Phase.QUIET] < rates[Phase.STEADY] / 5


def test_wake_phase_opens_with_one_candidate_per_kind() -> None:
    script = build_script(40, 400, seed=0)
    wake = script.of(Phase.WAKE)
    candidates = [p for p in wake if p.wake]
    assert sorted(p.item.kind for p in candidates) == sorted(Kind)
    assert all(p.at_s == 0 for p in candidates)
    assert all(p.at_s >= 1 for p in wake if not p.wake)


def test_sessions_stay_whole_ordered_and_start_early_in_their_phase() -> None:
    script = build_script(40, 400, seed=0)
    by_session: dict[str, list[tuple[Phase, int, float]]] = {}
    for p in script.items:
        by_session.setdefault(p.item.request.session_id, []).append(
            (p.phase, p.item.request.turn, p.at_s))
    multi = {s: t for s, t in by_session.items() if len(t) > 1}
    assert multi
    lengths = {p.phase: p.length_s for p in script.phases}
    for turns in multi.values():
        assert len({phase for phase, _, _ in turns}) == 1
        assert len({at for _, _, at in turns}) == 1  # later turns follow answers, not a clock
        phase = turns[0][0]
        assert turns[0][2] <= lengths[phase] * SESSION_START_SHARE + 2.0
    ids = [p.item.request.id for p in script.items]
    assert len(ids) == len(set(ids))


def test_same_seed_same_script_other_seed_other_script() -> None:
    def shape(seed: int) -> list[tuple[str, float, str]]:
        return [(p.item.request.id, round(p.at_s, 6), str(p.item.request.messages))
                for p in build_script(30, 120, seed).items]

    assert shape(5) == shape(5)
    assert shape(5) != shape(6)


@pytest.mark.parametrize(("duration", "requests", "message"), [
    (MIN_DURATION_S - 1, 400, "duration must be at least"),
    (40, MIN_REQUESTS - 1, "requests must be at least"),
])
def test_too_short_or_too_small_is_refused(duration: float, requests: int, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        build_script(duration, requests, seed=0)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_each_kind_is_routed_to_its_tier_by_the_demo_policy(seed: int) -> None:
    table = build_table(policy(), {"small-llm": ["http://127.0.0.1:1"],
                                   "mid-llm": ["http://127.0.0.1:2"]})
    routed: Counter[tuple[Kind, str]] = Counter()
    for planned in build_script(40, 400, seed).items:
        body = planned.item.request.body("auto", stream=planned.item.stream)
        decision = choose_tier(table, request_view("/v1/chat/completions", {}, body))
        routed[(planned.item.kind, decision.tier)] += 1
    assert {kind: tier for kind, tier in routed} == INTENDED
    assert all(routed[(kind, tier)] > 0 for kind, tier in INTENDED.items())


def test_non_ascii_prompts_are_part_of_the_mix() -> None:
    texts = [m["content"] for p in build_script(40, 400, 0).items
             if p.item.kind is Kind.REASONING for m in p.item.request.messages]
    assert any("证明" in t for t in texts)
    assert any("Démontrez" in t for t in texts)
