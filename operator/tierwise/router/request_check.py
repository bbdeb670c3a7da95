"""Check the request fields the router itself interprets; everything else passes through.

Why it exists: the router reads ``model`` (tier choice), ``messages`` / ``prompt`` (prompt
text and token estimate for rules, balancing and limits), ``stream`` and
``stream_options`` (how it relays and counts the answer). A value of the wrong shape there
would be routed on a wrong reading (a ``"stream": "yes"`` relayed as a whole answer, a
message without a role counted as empty text) or fail deep in the engine after a routing
decision. So these fields are checked up front and a bad one answers 400 with the OpenAI
error body naming the field (``param``); fields the router does not read are not looked
at, so new OpenAI parameters keep passing through untouched.

The rules (``null`` counts as absent for optional fields, as in the OpenAI API):

* ``model``: a string when present (absent: the unknown-model 404 later).
* ``stream``: a boolean. ``stream_options``: an object; its ``include_usage`` a boolean.
* ``/v1/chat/completions``: ``messages`` is required, a list of objects, each with a
  string ``role``; a message's ``content`` is a string, a list of objects (content parts)
  or null.
* ``/v1/completions``: ``prompt`` is required: a string, a list of strings, a list of
  token ids or a list of token-id lists.

Pure, and cheap on a valid request: a few ``isinstance`` checks per message.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

CHAT_PATH = "/v1/chat/completions"
COMPLETIONS_PATH = "/v1/completions"


@dataclass(frozen=True, slots=True)
class RequestProblem:
    """Why a request is refused: the message and the offending field (OpenAI ``param``)."""

    message: str
    param: str


def check_request(path: str, body: Mapping[str, Any]) -> RequestProblem | None:
    """The first problem with a field the router interprets, or None."""
    model = body.get("model")
    if model is not None and not isinstance(model, str):
        return RequestProblem(f"'model' must be a string, not {_kind(model)}", "model")
    stream = body.get("stream")
    if stream is not None and not isinstance(stream, bool):
        return RequestProblem(f"'stream' must be a boolean, not {_kind(stream)}", "stream")
    options = body.get("stream_options")
    if options is not None:
        if not isinstance(options, dict):
            return RequestProblem(
                f"'stream_options' must be an object, not {_kind(options)}", "stream_options"
            )
        usage = options.get("include_usage")
        if usage is not None and not isinstance(usage, bool):
            return RequestProblem(
                f"'stream_options.include_usage' must be a boolean, not {_kind(usage)}",
                "stream_options.include_usage",
            )
    if path == CHAT_PATH:
        return _check_messages(body.get("messages"))
    if path == COMPLETIONS_PATH:
        return _check_prompt(body.get("prompt"))
    return None


def _check_messages(messages: object) -> RequestProblem | None:
    if messages is None:
        return RequestProblem("'messages' is required", "messages")
    if not isinstance(messages, list):
        return RequestProblem(f"'messages' must be a list, not {_kind(messages)}", "messages")
    for i, message in enumerate(messages):
        if not isinstance(message, dict):
            param = f"messages[{i}]"
            return RequestProblem(f"'{param}' must be an object, not {_kind(message)}", param)
        role = message.get("role")
        if not isinstance(role, str):
            what = "is missing" if role is None else f"must be a string, not {_kind(role)}"
            return RequestProblem(f"'messages[{i}].role' {what}", f"messages[{i}].role")
        content = message.get("content")
        if content is None or isinstance(content, str):
            continue
        if not isinstance(content, list) or not all(isinstance(p, dict) for p in content):
            param = f"messages[{i}].content"
            return RequestProblem(
                f"'{param}' must be a string, a list of content parts or null", param
            )
    return None


def _check_prompt(prompt: object) -> RequestProblem | None:
    if prompt is None:
        return RequestProblem("'prompt' is required", "prompt")
    if isinstance(prompt, str):
        return None
    if isinstance(prompt, list) and (
        all(isinstance(p, str) for p in prompt)
        or all(_is_token_id(p) for p in prompt)
        or all(isinstance(p, list) and all(_is_token_id(t) for t in p) for p in prompt)
    ):
        return None
    return RequestProblem(
        "'prompt' must be a string, a list of strings, a list of token ids or a list of"
        " token-id lists",
        "prompt",
    )


def _is_token_id(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _kind(value: object) -> str:
    """The JSON type name of a parsed value, for messages."""
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dict):
        return "an object"
    return "null"
