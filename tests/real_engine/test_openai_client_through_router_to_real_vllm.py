"""The official ``openai`` client, through ``tierwise router``, to two real vLLM servers.

Chat and completions, streaming and not: the answer is the one the engine gives directly
(greedy decoding, fixed length), ``usage`` matches the engine's own tokenizer, and every
response carries the decision headers. Prompts include empty and non-Latin text.
"""

from __future__ import annotations

import json
import urllib.request
from collections.abc import Callable, Iterator
from typing import Any

import openai
import pytest
from real_engine_support import SERVED_NAME, Served

from tierwise.api.routing_policy import BalancingPolicy

pytestmark = pytest.mark.real_engine

MAX_TOKENS = 12
FIXED = {"temperature": 0, "max_tokens": MAX_TOKENS, "extra_body": {"ignore_eos": True}}
HEADERS = {"x-tierwise-tier": "local", "x-tierwise-backend": SERVED_NAME}
PROMPTS = ["Hello, how are you?", "café 東京 🙂 — naïve résumé", "", "word " * 300]


@pytest.fixture(scope="module")
def router(routers: Callable[[BalancingPolicy], Served]) -> Served:
    return routers(BalancingPolicy.PREFIX_AWARE)


@pytest.fixture
def client(router: Served) -> Iterator[Any]:
    with openai.OpenAI(base_url=router.url + "/v1", api_key="unused", max_retries=0) as c:
        yield c


@pytest.fixture
def direct(vllm_servers: list[Served]) -> Iterator[Any]:
    url = vllm_servers[0].url + "/v1"
    with openai.OpenAI(base_url=url, api_key="unused", max_retries=0) as c:
        yield c


def tokens(server: Served, body: dict[str, Any]) -> int:
    """The engine's own prompt-token count (vLLM's ``/tokenize``)."""
    request = urllib.request.Request(
        server.url + "/tokenize",
        data=json.dumps({"model": SERVED_NAME, **body}).encode(),
        headers={"content-type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        return int(json.load(response)["count"])


def assert_decision_headers(headers: Any) -> None:
    for name, value in HEADERS.items():
        assert headers.get(name) == value, name
    assert headers.get("x-tierwise-rule")


def messages(prompt: str) -> list[dict[str, str]]:
    return [{"role": "system", "content": "You are terse."}, {"role": "user", "content": prompt}]


@pytest.mark.parametrize("prompt", PROMPTS)
def test_chat_matches_the_engine_with_usage_and_headers(
    prompt: str, client: Any, direct: Any, vllm_servers: list[Served]
) -> None:
    raw = client.chat.completions.with_raw_response.create(
        model="auto", messages=messages(prompt), **FIXED
    )
    assert_decision_headers(raw.headers)
    answer = raw.parse()
    expected = direct.chat.completions.create(model=SERVED_NAME, messages=messages(prompt), **FIXED)
    assert answer.choices[0].message.content == expected.choices[0].message.content
    assert answer.choices[0].finish_reason == "length"
    prompt_tokens = tokens(vllm_servers[0], {"messages": messages(prompt)})
    assert answer.usage.prompt_tokens == prompt_tokens
    assert answer.usage.completion_tokens == MAX_TOKENS
    assert answer.usage.total_tokens == prompt_tokens + MAX_TOKENS


@pytest.mark.parametrize("prompt", PROMPTS)
def test_streamed_chat_arrives_in_chunks_with_usage(
    prompt: str, client: Any, direct: Any, vllm_servers: list[Served]
) -> None:
    with client.chat.completions.with_streaming_response.create(
        model="auto", messages=messages(prompt), stream=True,
        stream_options={"include_usage": True}, **FIXED,
    ) as response:  # fmt: skip
        assert_decision_headers(response.headers)
        assert response.headers["content-type"].startswith("text/event-stream")
        chunks = list(response.parse())
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    expected = direct.chat.completions.create(model=SERVED_NAME, messages=messages(prompt), **FIXED)
    assert text == expected.choices[0].message.content
    assert sum(1 for c in chunks if c.choices and c.choices[0].delta.content) > 1
    usage = chunks[-1].usage
    assert usage.prompt_tokens == tokens(vllm_servers[0], {"messages": messages(prompt)})
    assert usage.completion_tokens == MAX_TOKENS


@pytest.mark.parametrize("prompt", [p for p in PROMPTS if p])
@pytest.mark.parametrize("stream", [False, True])
def test_completions_match_the_engine_with_usage_and_headers(
    prompt: str, stream: bool, client: Any, direct: Any, vllm_servers: list[Served]
) -> None:
    expected = direct.completions.create(model=SERVED_NAME, prompt=prompt, **FIXED)
    if stream:
        with client.completions.with_streaming_response.create(
            model="auto", prompt=prompt, stream=True,
            stream_options={"include_usage": True}, **FIXED,
        ) as response:  # fmt: skip
            assert_decision_headers(response.headers)
            chunks = list(response.parse())
        text = "".join(c.choices[0].text for c in chunks if c.choices)
        usage = chunks[-1].usage
    else:
        raw = client.completions.with_raw_response.create(model="auto", prompt=prompt, **FIXED)
        assert_decision_headers(raw.headers)
        answer = raw.parse()
        text, usage = answer.choices[0].text, answer.usage
    assert text == expected.choices[0].text
    assert usage.prompt_tokens == tokens(vllm_servers[0], {"prompt": prompt})
    assert usage.completion_tokens == MAX_TOKENS
    assert usage.total_tokens == usage.prompt_tokens + MAX_TOKENS


async def test_async_client_streams_through_the_router(router: Served) -> None:
    async with openai.AsyncOpenAI(
        base_url=router.url + "/v1", api_key="unused", max_retries=0
    ) as client:
        stream = await client.chat.completions.create(
            model="auto", messages=messages("stream me"), stream=True, **FIXED
        )
        pieces = [chunk.choices[0].delta.content or "" async for chunk in stream if chunk.choices]
    assert len([p for p in pieces if p]) > 1


def test_models_lists_the_policy_alias(client: Any) -> None:
    assert [m.id for m in client.models.list()] == ["auto"]


def test_unknown_model_gets_an_openai_error(client: Any) -> None:
    with pytest.raises(openai.NotFoundError):
        client.chat.completions.create(model="no-such-model", messages=messages("hi"), **FIXED)
