"""OpenAI-compatible request parsing, error bodies and response shapes, without HTTP.

Why it exists: clients, routers and peers (sglang-router, vllm-router) judge the simulator
by its wire format, so every body it reads or writes is defined here, in one place, and
errors take the shape the impersonated engine uses: vLLM nests them under ``"error"``,
SGLang answers a flat ``{"object": "error", ...}``. Both carry ``message``, ``type``,
``param`` and ``code``, which the official ``openai`` client reads either way.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from tierwise.sim.config import EngineKind, SimConfig
from tierwise.sim.tokens import render_chat, tokenize


class Endpoint(enum.StrEnum):
    CHAT = "chat.completion"
    COMPLETION = "text_completion"


class ApiError(Exception):
    """An OpenAI-style error: HTTP status, message, error type and offending parameter."""

    def __init__(
        self, status: int, message: str, *, type_: str = "BadRequestError", param: str | None = None
    ) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.type = type_
        self.param = param


def error_body(engine: EngineKind, error: ApiError) -> dict[str, Any]:
    """The JSON body ``engine`` answers ``error`` with."""
    fields = {
        "message": error.message,
        "type": error.type,
        "param": error.param,
        "code": error.status,
    }
    if engine is EngineKind.SGLANG:
        return {"object": "error", **fields}
    return {"error": fields}


@dataclass(frozen=True, slots=True)
class GenerationRequest:
    """What the engine needs from a chat or completion request, validated."""

    endpoint: Endpoint
    model: str
    prompt_text: str
    prompt_tokens: list[int]
    max_tokens: int | None
    ignore_eos: bool
    stream: bool
    include_usage: bool


def parse_generation(endpoint: Endpoint, body: object, config: SimConfig) -> GenerationRequest:
    """Validate a decoded JSON body for ``endpoint``; raise :class:`ApiError` when bad."""
    if not isinstance(body, Mapping):
        raise ApiError(400, "The request body must be a JSON object.")
    model = _check_model(body.get("model"), config)
    if endpoint is Endpoint.CHAT:
        prompt_text = _chat_prompt(body)
        max_tokens = _positive_int(body, "max_completion_tokens") or _positive_int(
            body, "max_tokens"
        )
    else:
        prompt_text = _completion_prompt(body.get("prompt"))
        max_tokens = _positive_int(body, "max_tokens")
    n = body.get("n", 1)
    if n not in (None, 1):
        raise ApiError(400, "The simulator supports only n=1.", param="n")
    tokens = tokenize(prompt_text)
    check_context(config, prompt_len=len(tokens), max_tokens=max_tokens)
    options = body.get("stream_options")
    include_usage = isinstance(options, Mapping) and bool(options.get("include_usage"))
    return GenerationRequest(
        endpoint=endpoint,
        model=model,
        prompt_text=prompt_text,
        prompt_tokens=tokens,
        max_tokens=max_tokens,
        ignore_eos=bool(body.get("ignore_eos", False)),
        stream=bool(body.get("stream", False)),
        include_usage=include_usage,
    )


def _check_model(model: object, config: SimConfig) -> str:
    if model is None:
        return config.model
    if model not in (config.model, str(config.resolved_model_path())):
        raise ApiError(
            404, f"The model `{model}` does not exist.", type_="NotFoundError", param="model"
        )
    return config.model


def _chat_prompt(body: Mapping[str, Any]) -> str:
    messages = body.get("messages")
    if not isinstance(messages, Sequence) or isinstance(messages, str) or not messages:
        raise ApiError(400, "'messages' must be a non-empty list of messages.", param="messages")
    if not all(isinstance(m, Mapping) and "role" in m for m in messages):
        raise ApiError(400, "Each message must be an object with a 'role'.", param="messages")
    tools = body.get("tools")
    return render_chat(messages, tools if isinstance(tools, Sequence) else None)


def _completion_prompt(prompt: object) -> str:
    if isinstance(prompt, list) and len(prompt) == 1 and isinstance(prompt[0], str):
        prompt = prompt[0]
    if isinstance(prompt, str):
        return prompt
    if isinstance(prompt, list) and prompt and all(isinstance(t, int) for t in prompt):
        return " ".join(str(t) for t in prompt)
    raise ApiError(
        400, "'prompt' must be a string (batched prompts are not simulated).", param="prompt"
    )


def _positive_int(body: Mapping[str, Any], key: str) -> int | None:
    value = body.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ApiError(400, f"{key} must be at least 1, got {value}.", param=key)
    return value


def check_context(config: SimConfig, *, prompt_len: int, max_tokens: int | None) -> None:
    """Reject prompts (plus requested output) over the context length, as each engine does."""
    ctx = config.context_length
    if prompt_len >= ctx:  # no room left for even one output token
        if config.engine is EngineKind.SGLANG:
            message = (
                f"The input ({prompt_len} tokens) is longer than the model's context "
                f"length ({ctx} tokens)."
            )
        else:
            message = (
                f"This model's maximum context length is {ctx} tokens. However, your "
                f"request has {prompt_len} input tokens. Please reduce the length of "
                "the input messages."
            )
        raise ApiError(400, message, param="messages")
    if max_tokens is not None and prompt_len + max_tokens > ctx:
        raise ApiError(
            400,
            f"'max_tokens' or 'max_completion_tokens' is too large: {max_tokens}. This model's "
            f"maximum context length is {ctx} tokens and your request has {prompt_len} input "
            f"tokens ({max_tokens} > {ctx} - {prompt_len}).",
            param="max_tokens",
        )


def usage(prompt_tokens: int, completion_tokens: int, cached_tokens: int) -> dict[str, Any]:
    return {
        "prompt_tokens": prompt_tokens,
        "completion_tokens": completion_tokens,
        "total_tokens": prompt_tokens + completion_tokens,
        "prompt_tokens_details": {"cached_tokens": cached_tokens},
    }


@dataclass(frozen=True, slots=True)
class ResponseIds:
    """Fields every response and chunk of one request repeats."""

    id: str
    created: int
    model: str
    endpoint: Endpoint


def full_response(
    ids: ResponseIds, text: str, finish_reason: str, usage_: dict[str, Any]
) -> dict[str, Any]:
    """A non-streaming chat or completion body."""
    if ids.endpoint is Endpoint.CHAT:
        choice: dict[str, Any] = {
            "index": 0,
            "message": {"role": "assistant", "content": text, "tool_calls": []},
            "logprobs": None,
            "finish_reason": finish_reason,
        }
    else:
        choice = {"index": 0, "text": text, "logprobs": None, "finish_reason": finish_reason}
    return {
        "id": ids.id,
        "object": ids.endpoint.value,
        "created": ids.created,
        "model": ids.model,
        "choices": [choice],
        "usage": usage_,
    }


def chunk(
    ids: ResponseIds, text: str | None, *, finish_reason: str | None = None, first: bool = False
) -> dict[str, Any]:
    """One SSE chunk carrying ``text`` (``None`` for the final, empty-delta chunk)."""
    if ids.endpoint is Endpoint.CHAT:
        delta: dict[str, Any] = {} if text is None else {"content": text}
        if first:
            delta = {"role": "assistant", **delta}
        choice: dict[str, Any] = {
            "index": 0,
            "delta": delta,
            "logprobs": None,
            "finish_reason": finish_reason,
        }
        obj = "chat.completion.chunk"
    else:
        choice = {"index": 0, "text": text or "", "logprobs": None, "finish_reason": finish_reason}
        obj = "text_completion"
    return {
        "id": ids.id,
        "object": obj,
        "created": ids.created,
        "model": ids.model,
        "choices": [choice],
    }


def usage_chunk(ids: ResponseIds, usage_: dict[str, Any]) -> dict[str, Any]:
    """The last chunk when ``stream_options.include_usage`` is set: no choices, usage."""
    obj = "chat.completion.chunk" if ids.endpoint is Endpoint.CHAT else "text_completion"
    return {
        "id": ids.id,
        "object": obj,
        "created": ids.created,
        "model": ids.model,
        "choices": [],
        "usage": usage_,
    }
