"""Rules reading the tier classifier pick the cheapest tier whose predicted quality clears
the threshold; a higher threshold never moves a request to a cheaper tier; no scores (a
timeout, a failed classifier) means the policy's default decision."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from tierwise.api.routing_policy import RoutingPolicy
from tierwise.router.features import RequestView, request_view
from tierwise.router.table import RoutingTable, build_table
from tierwise.router.tiers import choose_tier, uses_quality

TIERS = ["small", "mid", "frontier"]
TIER_QUALITY = {"tierQuality": {"path": "tier-quality.json"}}


def chat(text: str) -> RequestView:
    body = {"model": "auto", "messages": [{"role": "user", "content": text}]}
    return request_view("/v1/chat/completions", {}, body)


def quality_table(threshold: float) -> RoutingTable:
    rules = [
        {"name": f"calibrated-{t}", "tier": t, "match": {"minPredictedQuality": threshold}}
        for t in ("small", "mid")
    ]
    tiers = [{"name": t, "backends": [{"modelDeployment": f"md-{t}"}]} for t in TIERS]
    spec = {"tiers": tiers, "rules": rules, "defaultTier": "frontier", "classifier": TIER_QUALITY}
    return build_table(RoutingPolicy.model_validate({"metadata": {"name": "rp"}, "spec": spec}), {})


score = st.floats(0, 1, allow_nan=False)


@given(small=score, mid=score, low=score, high=score)
def test_higher_threshold_never_picks_a_cheaper_tier(
    small: float, mid: float, low: float, high: float
) -> None:
    low, high = sorted((low, high))
    scores = {"small": small, "mid": mid}
    view = chat("hello")
    at_low = choose_tier(quality_table(low), view, quality=scores).tier
    at_high = choose_tier(quality_table(high), view, quality=scores).tier
    assert TIERS.index(at_high) >= TIERS.index(at_low)


@given(small=score, mid=score, threshold=score)
def test_the_cheapest_tier_clearing_the_threshold_wins(
    small: float, mid: float, threshold: float
) -> None:
    decision = choose_tier(
        quality_table(threshold), chat("hi"), quality={"small": small, "mid": mid}
    )
    clearing = [t for t, s in (("small", small), ("mid", mid)) if s >= threshold]
    assert decision.tier == (clearing[0] if clearing else "frontier")


def test_decision_explains_the_score_and_carries_the_header_value() -> None:
    decision = choose_tier(quality_table(0.6), chat("hi"), quality={"small": 0.4, "mid": 0.75})
    assert (decision.tier, decision.rule) == ("mid", "calibrated-mid")
    assert "predicted quality of 'mid' 0.750 >= 0.600" in decision.reason
    assert decision.quality_header() == "small=0.400,mid=0.750"


def test_without_scores_the_default_decides() -> None:
    table = quality_table(0.1)
    assert uses_quality(table)
    decision = choose_tier(table, chat("hi"), quality=None)
    assert (decision.tier, decision.rule, decision.quality_header()) == ("frontier", "default", "")
