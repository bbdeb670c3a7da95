"""The fields the router interprets are checked (a wrong shape names the field); valid
OpenAI requests, including every documented prompt form and null optional fields, pass;
fields the router does not read are not looked at."""

from __future__ import annotations

from typing import Any

import pytest

from tierwise.router.request_check import CHAT_PATH, COMPLETIONS_PATH, check_request

HI = [{"role": "user", "content": "hi"}]


@pytest.mark.parametrize(
    ("path", "body"),
    [
        (CHAT_PATH, {"model": "auto", "messages": HI}),
        (CHAT_PATH, {"model": "auto", "messages": HI, "stream": True}),
        (CHAT_PATH, {"model": "auto", "messages": HI, "stream": None, "stream_options": None}),
        (
            CHAT_PATH,
            {"messages": HI, "stream": True, "stream_options": {"include_usage": False}},
        ),
        (CHAT_PATH, {"messages": [{"role": "assistant", "content": None, "tool_calls": []}]}),
        (CHAT_PATH, {"messages": [{"role": "user", "content": [{"type": "text", "text": "x"}]}]}),
        (CHAT_PATH, {"messages": [], "unknown": object()}),
        (COMPLETIONS_PATH, {"prompt": "hi"}),
        (COMPLETIONS_PATH, {"prompt": ["a", "b"]}),
        (COMPLETIONS_PATH, {"prompt": [1, 2, 3]}),
        (COMPLETIONS_PATH, {"prompt": [[1, 2], [3]]}),
        (COMPLETIONS_PATH, {"prompt": "hi", "messages": 5}),  # not read on this path
    ],
)
def test_valid_requests_pass(path: str, body: dict[str, Any]) -> None:
    assert check_request(path, body) is None


@pytest.mark.parametrize(
    ("path", "body", "param"),
    [
        (CHAT_PATH, {"model": ["a"], "messages": HI}, "model"),
        (CHAT_PATH, {"messages": HI, "stream": "true"}, "stream"),
        (CHAT_PATH, {"messages": HI, "stream": 1}, "stream"),
        (CHAT_PATH, {"messages": HI, "stream_options": "usage"}, "stream_options"),
        (
            CHAT_PATH,
            {"messages": HI, "stream_options": {"include_usage": "yes"}},
            "stream_options.include_usage",
        ),
        (CHAT_PATH, {}, "messages"),
        (CHAT_PATH, {"messages": {"role": "user"}}, "messages"),
        (CHAT_PATH, {"messages": [*HI, "hi"]}, "messages[1]"),
        (CHAT_PATH, {"messages": [{"content": "hi"}]}, "messages[0].role"),
        (CHAT_PATH, {"messages": [{"role": 1, "content": "hi"}]}, "messages[0].role"),
        (CHAT_PATH, {"messages": [{"role": "user", "content": 5}]}, "messages[0].content"),
        (CHAT_PATH, {"messages": [{"role": "user", "content": ["x"]}]}, "messages[0].content"),
        (COMPLETIONS_PATH, {}, "prompt"),
        (COMPLETIONS_PATH, {"prompt": 5}, "prompt"),
        (COMPLETIONS_PATH, {"prompt": [True, False]}, "prompt"),
        (COMPLETIONS_PATH, {"prompt": ["a", 1]}, "prompt"),
    ],
)
def test_wrong_shapes_name_the_field(path: str, body: dict[str, Any], param: str) -> None:
    problem = check_request(path, body)
    assert problem is not None
    assert problem.param == param
    assert param.split("[")[0].split(".")[0] in problem.message
