"""The simulator's one tokenizer: a deterministic approximation, no vocabulary files.

Real engines count tokens with the model's tokenizer; the simulator has none, so every
count it reports (``usage``, context-length checks, prefix-cache blocks, metrics) goes
through :func:`tokenize` here and nowhere else.

Rule: a token is optional leading whitespace followed by either up to four word
characters or one other character (punctuation, symbol, emoji). That lands near the
~4 characters per token of BPE tokenizers on English text. Each piece is hashed with
CRC-32 (stable across processes, unlike ``hash``) into a token id, so identical text
always yields identical ids, which is what the prefix cache keys on.
"""

from __future__ import annotations

import re
import zlib
from collections.abc import Mapping, Sequence
from typing import Any

import orjson

_PIECE = re.compile(r"\s*(?:\w{1,4}|[^\w\s])")


def tokenize(text: str) -> list[int]:
    """Split ``text`` into deterministic token ids (see the module docstring)."""
    return [zlib.crc32(piece.encode("utf-8")) for piece in _PIECE.findall(text)]


def count_tokens(text: str) -> int:
    """Number of tokens :func:`tokenize` gives for ``text``."""
    return len(_PIECE.findall(text))


def message_text(content: object) -> str:
    """Text of an OpenAI message ``content``: a string or a list of ``text`` parts."""
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    if isinstance(content, Sequence):
        parts = [p.get("text", "") for p in content if isinstance(p, Mapping)]
        return "".join(str(p) for p in parts)
    return str(content)


def render_chat(messages: Sequence[Mapping[str, Any]], tools: Sequence[Any] | None = None) -> str:
    """Render chat messages (and tool definitions) as one prompt, like a chat template.

    Tool definitions go first, as real templates put them in the system preamble, so
    agentic sessions that share tools and a system prompt share a long token prefix.
    """
    parts: list[str] = []
    if tools:
        parts.append(
            "<|tools|>\n" + orjson.dumps(list(tools), option=orjson.OPT_SORT_KEYS).decode()
        )
    for message in messages:
        role = str(message.get("role", "user"))
        parts.append(f"<|{role}|>\n{message_text(message.get('content'))}")
    parts.append("<|assistant|>\n")
    return "\n".join(parts)
