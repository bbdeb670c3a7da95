"""The one tokenizer: deterministic, ~4 characters per token, Unicode-safe."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tierwise.sim.tokens import count_tokens, render_chat, tokenize


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("", 0),
        ("   ", 0),
        ("hello", 2),  # "hell" + "o"
        ("a b c", 3),
        ("héllo wörld", 4),
        ("日本語のテキスト", 2),
        ("🙂🙂", 2),
        ("x=1;", 4),
    ],
)
def test_token_counts_follow_the_documented_rule(text: str, expected: int) -> None:
    assert count_tokens(text) == expected == len(tokenize(text))


@given(st.text())
def test_tokenize_is_deterministic_and_prefix_stable(text: str) -> None:
    assert tokenize(text) == tokenize(text)
    assert tokenize(text + " tail")[: len(tokenize(text))] == tokenize(text)


def test_english_is_roughly_four_characters_per_token() -> None:
    text = "The quick brown fox jumps over the lazy dog while routers balance load. " * 20
    assert 3.0 <= len(text) / count_tokens(text) <= 5.0


def test_chat_rendering_puts_tools_first_and_accepts_content_parts() -> None:
    tools = [{"type": "function", "function": {"name": "f"}}]
    rendered = render_chat(
        [
            {"role": "system", "content": [{"type": "text", "text": "sys"}]},
            {"role": "user", "content": "hi"},
        ],
        tools,
    )
    assert rendered.startswith("<|tools|>")
    assert "<|system|>\nsys" in rendered
    assert rendered.endswith("<|assistant|>\n")
