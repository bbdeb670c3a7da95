"""The minimal view of a request that routing decisions read, computed lazily.

Why it exists: the hot path budget is tens of microseconds per request, so nothing is
extracted unless a rule or balancer asks for it. The data plane builds one
:class:`RequestView` per request from the parsed body; tier rules and balancers read its
properties, each computed on first use and cached on the view.

Prompt text
    Chat: the ``content`` of every message, joined with newlines, in order (list-of-parts
    contents contribute their ``text`` parts). Completions: ``prompt`` (a string, or the
    strings of a list joined with newlines). Tool definitions are not part of it: they are
    identical across a tenant's requests and carry no routing signal.

Token estimate (``prompt_tokens``)
    No tokenizer on the hot path. ASCII text: ``ceil(chars / 4)`` (BPE tokenizers average
    about four characters per English token). Other text: ``ceil(utf8_bytes / 3)``, which
    counts a CJK character (3 bytes) as one token and accented Latin close to chars/3, so
    the estimate errs high for scripts that tokenize densely. Token-id prompts count
    exactly. Cost: ``str.isascii`` is O(1) in CPython, so ASCII prompts cost one division.

Session key
    The value of the policy's session header if present, else the body's ``user`` field.

Conversation anchor (``anchor_text``)
    What names a conversation across its turns, for consistent hashing: chat, the
    contents of the messages up to and including the first ``user`` message (system prompt
    plus the task; later turns only append to it); completions, the first
    ``completion_chars`` characters of the prompt. Only its length and its first and last
    ``edge_chars`` characters are kept, so hashing a 10k-character system prompt costs
    the same as a short one.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

_UNSET: Any = object()


@dataclass(slots=True)
class RequestView:
    """A request as routing sees it; see the module docstring for the lazy fields."""

    path: str
    model: str
    headers: Mapping[str, str]
    body: Mapping[str, Any]
    _text: str | None = field(default=None, init=False, repr=False)
    _lower: str | None = field(default=None, init=False, repr=False)
    _tokens: int | None = field(default=None, init=False, repr=False)
    _blocks: tuple[int, list[int]] | None = field(default=None, init=False, repr=False)
    _session: Any = field(default=_UNSET, init=False, repr=False)
    _anchor: str | None = field(default=None, init=False, repr=False)

    @property
    def prompt_text(self) -> str:
        if self._text is None:
            self._text = _extract_text(self.body)
        return self._text

    @property
    def prompt_lower(self) -> str:
        """Case-folded prompt text, for case-insensitive keyword rules."""
        if self._lower is None:
            self._lower = self.prompt_text.casefold()
        return self._lower

    @property
    def prompt_tokens(self) -> int:
        if self._tokens is None:
            ids = _token_ids(self.body)
            self._tokens = ids if ids is not None else estimate_tokens(self.prompt_text)
        return self._tokens

    def session_key(self, header: str) -> str | None:
        """Session header value (``header`` lower-cased by the caller), else ``user``."""
        if self._session is _UNSET:
            value = self.headers.get(header) if header else None
            if not value:
                user = self.body.get("user")
                value = user if isinstance(user, str) and user else None
            self._session = value
        result: str | None = self._session
        return result

    def anchor_text(self, completion_chars: int, edge_chars: int) -> str:
        """The conversation anchor, cut to its length and edges (see the module docstring)."""
        if self._anchor is None:
            text = _anchor(self.body, completion_chars)
            if len(text) > 2 * edge_chars:
                text = f"{len(text)}:{text[:edge_chars]}:{text[-edge_chars:]}"
            self._anchor = text
        return self._anchor

    def block_hashes(self, block_chars: int) -> list[int]:
        """Chained hashes of the prompt's full ``block_chars``-character blocks (cached).

        ``h[i]`` folds ``h[i-1]`` with the hash of block *i*, so it names the whole prefix
        up to block *i*. Python's string hash is per-process; the trees keyed on it live
        in the same process.
        """
        cached = self._blocks
        if cached is not None and cached[0] == block_chars:
            return cached[1]
        text = self.prompt_text
        out: list[int] = []
        h = 0
        for start in range(0, len(text) - block_chars + 1, block_chars):
            h = hash((h, text[start : start + block_chars]))
            out.append(h)
        self._blocks = (block_chars, out)
        return out


def request_view(path: str, headers: Mapping[str, str], body: Mapping[str, Any]) -> RequestView:
    """Build the view; ``headers`` must already have lower-cased names."""
    model = body.get("model")
    return RequestView(path, model if isinstance(model, str) else "", headers, body)


def estimate_tokens(text: str) -> int:
    """Fast token estimate of ``text`` (see the module docstring)."""
    if not text:
        return 0
    if text.isascii():
        return (len(text) + 3) // 4
    return (len(text.encode("utf-8", "surrogatepass")) + 2) // 3


def _extract_text(body: Mapping[str, Any]) -> str:
    messages = body.get("messages")
    if isinstance(messages, list):
        parts: list[str] = []
        for message in messages:
            if isinstance(message, Mapping):
                parts.append(_content_text(message.get("content")))
        return "\n".join(parts)
    prompt = body.get("prompt")
    if isinstance(prompt, str):
        return prompt
    if isinstance(prompt, list):
        return "\n".join(p for p in prompt if isinstance(p, str))
    return ""


def _anchor(body: Mapping[str, Any], completion_chars: int) -> str:
    messages = body.get("messages")
    if isinstance(messages, list):
        parts: list[str] = []
        for message in messages:
            if isinstance(message, Mapping):
                parts.append(_content_text(message.get("content")))
                if message.get("role") == "user":
                    break
        return "\n".join(parts)
    return _extract_text(body)[:completion_chars]


def _content_text(content: object) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, Sequence) and not isinstance(content, bytes | bytearray):
        texts = [p.get("text") for p in content if isinstance(p, Mapping)]
        return "\n".join(t for t in texts if isinstance(t, str))
    return ""


def _token_ids(body: Mapping[str, Any]) -> int | None:
    """Exact count for a completions prompt given as token ids (a list of ints, or lists)."""
    if "messages" in body:
        return None
    prompt = body.get("prompt")
    if not isinstance(prompt, list) or not prompt:
        return None
    if all(isinstance(p, int) for p in prompt):
        return len(prompt)
    if all(isinstance(p, list) for p in prompt):
        return sum(len(p) for p in prompt)
    return None
