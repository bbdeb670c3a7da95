"""Request features: prompt text, token estimate, session key and block hashes."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tierwise.router.features import estimate_tokens, request_view


@pytest.mark.parametrize(
    ("body", "text"),
    [
        (
            {"messages": [{"role": "system", "content": "A"}, {"role": "user", "content": "B"}]},
            "A\nB",
        ),
        (
            {
                "messages": [
                    {
                        "role": "user",
                        "content": [
                            {"type": "text", "text": "x"},
                            {"type": "image_url", "image_url": {}},
                            {"type": "text", "text": "y"},
                        ],
                    }
                ]
            },
            "x\ny",
        ),
        (
            {
                "messages": [
                    {"role": "assistant", "content": None},
                    {"role": "user", "content": "é"},
                ]
            },
            "\né",
        ),
        ({"messages": []}, ""),
        ({"messages": "not a list"}, ""),
        ({"prompt": "plain"}, "plain"),
        ({"prompt": ["one", "two"]}, "one\ntwo"),
        ({"prompt": [1, 2, 3]}, ""),
        ({}, ""),
    ],
)
def test_prompt_text_extraction(body: dict[str, Any], text: str) -> None:
    assert request_view("/v1/chat/completions", {}, {"model": "m", **body}).prompt_text == text


@pytest.mark.parametrize(
    ("text", "tokens"),
    [("", 0), ("abcd", 1), ("abcde", 2), ("a" * 4000, 1000), ("日本語", 3), ("é", 1), ("😀😀", 3)],
)
def test_token_estimate(text: str, tokens: int) -> None:
    assert estimate_tokens(text) == tokens


def test_token_ids_prompt_counts_exactly() -> None:
    view = request_view("/v1/completions", {}, {"model": "m", "prompt": [5, 6, 7, 8, 9]})
    assert view.prompt_tokens == 5
    view = request_view("/v1/completions", {}, {"model": "m", "prompt": [[1, 2], [3]]})
    assert view.prompt_tokens == 3


@given(st.text(max_size=2000))
def test_estimate_is_monotone_in_appended_text(text: str) -> None:
    assert estimate_tokens(text + "more words") >= estimate_tokens(text)


@pytest.mark.parametrize(
    ("headers", "body", "key"),
    [
        ({"x-session-id": "s1"}, {"user": "u"}, "s1"),
        ({}, {"user": "u"}, "u"),
        ({"x-session-id": ""}, {"user": "ü"}, "ü"),
        ({}, {"user": 7}, None),
        ({}, {}, None),
    ],
)
def test_session_key_prefers_header_then_user(
    headers: dict[str, str], body: dict[str, Any], key: str | None
) -> None:
    view = request_view("/v1/chat/completions", headers, {"model": "m", **body})
    assert view.session_key("x-session-id") == key


def test_model_is_empty_when_missing_or_not_a_string() -> None:
    assert request_view("/v1/completions", {}, {}).model == ""
    assert request_view("/v1/completions", {}, {"model": 3}).model == ""


def _blocks(text: str, size: int) -> list[int]:
    view = request_view("/v1/completions", {}, {"model": "m", "prompt": text})
    return view.block_hashes(size)


@given(
    st.text(min_size=0, max_size=300),
    st.text(max_size=200),
    st.text(max_size=200),
    st.integers(1, 40),
)
def test_shared_prefix_gives_shared_leading_hashes(prefix: str, a: str, b: str, size: int) -> None:
    ha, hb = _blocks(prefix + a, size), _blocks(prefix + b, size)
    shared = len(prefix) // size
    assert ha[:shared] == hb[:shared]
    assert len(ha) == len(prefix + a) // size


def test_a_block_hash_names_the_whole_prefix() -> None:
    # Same second block, different first block: the chained key differs.
    assert _blocks("AAAABBBB", 4)[1] != _blocks("CCCCBBBB", 4)[1]


def test_block_hashes_are_cached_per_size() -> None:
    view = request_view("/v1/completions", {}, {"model": "m", "prompt": "x" * 64})
    first = view.block_hashes(8)
    assert view.block_hashes(8) is first
    assert len(view.block_hashes(16)) == 4
