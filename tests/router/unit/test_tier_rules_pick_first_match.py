"""Tier selection: ordered rules, conditions, aliases, pins, defaults and escalation."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tierwise.router.classifier import Classification
from tierwise.router.features import RequestView
from tierwise.router.rules import _Keyword
from tierwise.router.table import RoutingTable
from tierwise.router.tiers import (
    PromptTooLong,
    PromptTooLongError,
    UnknownModel,
    UnknownModelError,
    choose_tier,
)

Table = Callable[..., RoutingTable]
Chat = Callable[..., RequestView]


def rule(name: str, tier: str, **match: Any) -> dict[str, Any]:
    shadow = match.pop("shadow", False)
    return {"name": name, "tier": tier, "match": match, "shadow": shadow}


def test_contract_names_are_the_error_classes() -> None:
    assert UnknownModel is UnknownModelError
    assert PromptTooLong is PromptTooLongError


def test_first_matching_rule_wins_over_later_ones(make_table: Table, make_chat: Chat) -> None:
    t = make_table(
        rules=[rule("a", "mid", keywords=["alpha"]), rule("b", "frontier", keywords=["alpha"])]
    )
    d = choose_tier(t, make_chat("alpha"))
    assert (d.tier, d.rule) == ("mid", "a")
    assert d.reason == "rule 'a' matched keyword 'alpha'"


def test_no_match_goes_to_default_tier(make_table: Table, make_chat: Chat) -> None:
    t = make_table(rules=[rule("a", "frontier", keywords=["alpha"])], defaultTier="mid")
    d = choose_tier(t, make_chat("beta"))
    assert (d.tier, d.rule) == ("mid", "default")
    assert "defaultTier 'mid'" in d.reason


def test_default_tier_defaults_to_cheapest(make_table: Table, make_chat: Chat) -> None:
    assert choose_tier(make_table(), make_chat("")).tier == "small"


@pytest.mark.parametrize(
    ("keyword", "prompt", "hit"),
    [
        ("def ", "def f(x): return x", True),
        ("def", "define the term", False),
        ("def", "x = 1; def", True),
        ("stack trace", "here is the Stack\n  Trace below", True),
        ("stack trace", "stacktrace", False),
        ("refactor", "REFACTOR this", True),
        ("refactor", "refactoring", False),
        ("c++", "is C++ hard?", True),
        ("日本語", "これは日本語です", True),
        ("日本", "日本語", True),
        ("déjà vu", "DÉJÀ VU again", True),
        ("naïve", "naive", False),
        ("alpha", "", False),
        (" def", "x def y", True),
        (" def", "xdef y", False),
        ("stack trace ", "STACK   TRACE\tok", True),
        ("stack trace ", "stack trace", False),
        ("_x", "a_x", False),
        ("ß", "STRASSE", False),
    ],
)
def test_keywords_are_case_insensitive_whole_words(
    make_table: Table, make_chat: Chat, keyword: str, prompt: str, hit: bool
) -> None:
    t = make_table(rules=[rule("kw", "mid", keywords=[keyword])])
    d = choose_tier(t, make_chat(prompt))
    assert (d.rule == "kw") is hit
    if hit:
        assert d.reason == f"rule 'kw' matched keyword {keyword!r}"


def reference_pattern(keyword: str) -> re.Pattern[str]:
    """The obvious regex for a keyword (slow: one scan per position)."""
    body = r"\s+".join(re.escape(p) for p in keyword.split())
    body = (r"\s" if keyword[0].isspace() else "") + body
    body += r"\s" if keyword[-1].isspace() and keyword.strip() else ""
    head = r"(?<!\w)" if re.match(r"\w", keyword) else ""
    tail = r"(?!\w)" if re.search(r"\w\Z", keyword) else ""  # not $: it matches before a final \n
    return re.compile(head + body + tail)


ascii_text = st.text(alphabet="ab_ \n.", max_size=40)


@given(keyword=ascii_text.filter(lambda k: k.strip() != ""), text=ascii_text)
def test_fast_keyword_search_agrees_with_the_regex(keyword: str, text: str) -> None:
    expected = reference_pattern(keyword).search(text) is not None
    assert _Keyword.of(keyword).found_in(text) is expected


@pytest.mark.parametrize(
    ("header", "headers", "hit"),
    [
        ({"name": "X-Team"}, {"x-team": "ml"}, True),
        ({"name": "X-Team"}, {}, False),
        ({"name": "x-team", "value": "ml"}, {"x-team": "ml"}, True),
        ({"name": "x-team", "value": "ml"}, {"x-team": "ML"}, False),
        ({"name": "X-TEAM", "regex": "^(ml|ai)-"}, {"x-team": "ai-core"}, True),
        ({"name": "x-team", "regex": "^(ml|ai)-"}, {"x-team": "web"}, False),
        ({"name": "x-team", "value": "ünïcode"}, {"x-team": "ünïcode"}, True),
    ],
)
def test_header_conditions(
    make_table: Table,
    make_chat: Chat,
    header: dict[str, str],
    headers: dict[str, str],
    hit: bool,
) -> None:
    t = make_table(rules=[rule("h", "frontier", headers=[header])])
    d = choose_tier(t, make_chat("hi", headers=headers))
    assert (d.tier == "frontier") is hit
    if hit:
        assert "header x-team" in d.reason


@pytest.mark.parametrize(
    ("chars", "low", "high", "hit"),
    [(0, 0, 10, True), (40, 10, None, True), (36, 10, None, False), (400, None, 99, False)],
)
def test_prompt_token_bounds(
    make_table: Table, make_chat: Chat, chars: int, low: int | None, high: int | None, hit: bool
) -> None:
    match = {
        k: v for k, v in (("minPromptTokens", low), ("maxPromptTokens", high)) if v is not None
    }
    t = make_table(rules=[rule("len", "mid", **match)])
    assert (choose_tier(t, make_chat("a" * chars)).rule == "len") is hit


def test_regex_rule_matches_prompt(make_table: Table, make_chat: Chat) -> None:
    t = make_table(rules=[rule("sql", "mid", regex=r"(?i)\bselect\b.+\bfrom\b")])
    d = choose_tier(t, make_chat("please SELECT a FROM b"))
    assert d.rule == "sql"
    assert "regex" in d.reason
    assert choose_tier(t, make_chat("select nothing")).rule == "default"


def test_all_conditions_of_a_rule_must_hold(make_table: Table, make_chat: Chat) -> None:
    t = make_table(rules=[rule("both", "mid", keywords=["code"], headers=[{"name": "x-a"}])])
    assert choose_tier(t, make_chat("code")).rule == "default"
    assert choose_tier(t, make_chat("text", headers={"x-a": "1"})).rule == "default"
    d = choose_tier(t, make_chat("code", headers={"x-a": "1"}))
    assert d.rule == "both"
    assert "header x-a present" in d.reason
    assert "keyword 'code'" in d.reason


def test_models_condition_and_rule_models_are_aliases(make_table: Table, make_chat: Chat) -> None:
    t = make_table(models=["auto"], rules=[rule("gpt", "frontier", models=["gpt-4o"])])
    assert t.aliases == {"auto", "gpt-4o"}
    assert choose_tier(t, make_chat("x", model="gpt-4o")).tier == "frontier"
    assert choose_tier(t, make_chat("x", model="auto")).tier == "small"


@pytest.mark.parametrize("model", ["small", "mid", "frontier"])
def test_tier_name_as_model_pins_the_tier_when_allowed(
    make_table: Table, make_chat: Chat, model: str
) -> None:
    t = make_table(allowTierPinning=True, rules=[rule("all", "frontier", keywords=["x"])])
    d = choose_tier(t, make_chat("x", model=model))
    assert (d.tier, d.rule) == (model, "model-pin")


@pytest.mark.parametrize("model", ["small", "mid", "frontier"])
def test_tier_name_is_an_unknown_model_without_pinning(
    make_table: Table, make_chat: Chat, model: str
) -> None:
    t = make_table(models=["auto", "chat"], rules=[rule("all", "frontier", keywords=["x"])])
    with pytest.raises(UnknownModelError) as err:
        choose_tier(t, make_chat("x", model=model))
    assert err.value.status == 404
    assert str(err.value).endswith("use one of: auto, chat")  # the aliases, no tier name


@pytest.mark.parametrize("model", ["gpt-5", "", "AUTO", "modèle"])
def test_unknown_model_is_rejected(make_table: Table, make_chat: Chat, model: str) -> None:
    with pytest.raises(UnknownModelError) as err:
        choose_tier(make_table(), make_chat("x", model=model))
    assert err.value.status == 404
    assert "auto" in str(err.value)


def test_over_long_prompt_escalates_to_next_accepting_tier(
    make_table: Table, make_chat: Chat
) -> None:
    t = make_table()
    d = choose_tier(t, make_chat("a" * 800))  # ~200 tokens: small (100) refuses
    assert (d.tier, d.escalated_from) == ("mid", "small")
    assert "escalated to 'mid'" in d.reason
    d = choose_tier(t, make_chat("a" * 8000))  # ~2000 tokens: mid (1000) refuses too
    assert (d.tier, d.escalated_from) == ("frontier", "small")


def test_prompt_too_long_for_every_tier(make_table: Table, make_chat: Chat) -> None:
    tiers = [
        {"name": "a", "backends": [{"modelDeployment": "x"}], "maxPromptTokens": 10},
        {"name": "b", "backends": [{"modelDeployment": "y"}], "maxPromptTokens": 20},
    ]
    with pytest.raises(PromptTooLongError) as err:
        choose_tier(make_table(tiers=tiers), make_chat("a" * 400))
    assert err.value.tokens == 100
    assert err.value.status == 400
    assert "'b'" in str(err.value)


class FakeClassifier:
    def __init__(self, answer: Classification | None) -> None:
        self.answer = answer
        self.calls: list[str] = []

    def classify(self, text: str) -> Classification | None:
        self.calls.append(text)
        return self.answer


CATEGORIES = {"categories": [{"name": "reasoning", "examples": ["prove it"]}]}


def test_category_rule_uses_classifier_once(make_table: Table, make_chat: Chat) -> None:
    t = make_table(
        classifier=CATEGORIES,
        rules=[
            rule("r1", "frontier", category="reasoning", keywords=["nope"]),
            rule("r2", "frontier", category="reasoning"),
            rule("r3", "mid", category="reasoning", shadow=True),
        ],
    )
    fake = FakeClassifier(Classification("reasoning", 0.91))
    d = choose_tier(t, make_chat("prove that"), fake)
    assert d.rule == "r2"
    assert d.reason == "rule 'r2' matched category 'reasoning' (similarity 0.91)"
    assert fake.calls == ["prove that"]
    assert choose_tier(t, make_chat("prove that"), FakeClassifier(None)).rule == "default"
    assert choose_tier(t, make_chat("prove that"), None).rule == "default"


UNLIMITED = [
    {"name": "a", "backends": [{"modelDeployment": "x"}]},
    {"name": "b", "backends": [{"modelDeployment": "y"}]},
]


def test_cheap_rules_do_not_extract_the_prompt(make_table: Table, make_chat: Chat) -> None:
    t = make_table(tiers=UNLIMITED, rules=[rule("h", "b", headers=[{"name": "x-a"}])])
    view = make_chat("long text " * 100, headers={"x-a": "1"})
    assert choose_tier(t, view).tier == "b"
    assert view._text is None
    assert view._tokens is None


def test_tier_limit_needs_the_token_estimate(make_table: Table, make_chat: Chat) -> None:
    view = make_chat("long text " * 100)
    assert choose_tier(make_table(), view).tier == "mid"
    assert view._tokens == 250


def test_shadow_rules_are_reported_not_enforced(make_table: Table, make_chat: Chat) -> None:
    t = make_table(
        rules=[
            rule("try-frontier", "frontier", keywords=["plan"], shadow=True),
            rule("code", "mid", keywords=["code"]),
            rule("late-shadow", "frontier", keywords=["code"], shadow=True),
        ]
    )
    d = choose_tier(t, make_chat("plan the code"))
    assert (d.tier, d.rule) == ("mid", "code")
    assert [(s.rule, s.tier, s.preempts) for s in d.shadow] == [
        ("try-frontier", "frontier", True),
        ("late-shadow", "frontier", False),
    ]
    d = choose_tier(t, make_chat("plan only"))
    assert d.rule == "default"
    assert [(s.rule, s.preempts) for s in d.shadow] == [("try-frontier", True)]
    assert choose_tier(t, make_chat("nothing")).shadow == ()


def test_shadow_rule_escalates_like_an_enforced_one(make_table: Table, make_chat: Chat) -> None:
    t = make_table(rules=[rule("s", "small", keywords=["x"], shadow=True)], defaultTier="mid")
    d = choose_tier(t, make_chat("x " + "a" * 800))
    assert d.tier == "mid"
    assert [(s.tier, s.preempts) for s in d.shadow] == [("mid", True)]
    assert "escalated" in d.shadow[0].reason
