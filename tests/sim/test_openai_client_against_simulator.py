"""The official ``openai`` client against an in-process simulator: shapes and usage."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable

import openai
import pytest

from tierwise.sim.app import serve_engine
from tierwise.sim.config import EngineKind, SimConfig
from tierwise.sim.tokens import count_tokens, render_chat

MESSAGES = [
    {"role": "system", "content": "You are terse."},
    {"role": "user", "content": "Name three rivers in Europe, please. Ünïcödé too 🙂"},
]


@pytest.fixture(params=[EngineKind.VLLM, EngineKind.SGLANG])
async def client(
    request: pytest.FixtureRequest, make_config: Callable[..., SimConfig]
) -> AsyncIterator[openai.AsyncOpenAI]:
    async with (
        serve_engine(make_config(request.param)) as url,
        openai.AsyncOpenAI(base_url=url + "/v1", api_key="unused", max_retries=0) as client,
    ):
        yield client


async def test_chat_completion_reports_exact_usage(client: openai.AsyncOpenAI) -> None:
    reply = await client.chat.completions.create(
        model="sim-model", messages=MESSAGES, max_tokens=7, extra_body={"ignore_eos": True}
    )
    assert reply.object == "chat.completion"
    assert reply.choices[0].finish_reason == "length"
    assert reply.choices[0].message.role == "assistant"
    assert count_tokens(reply.choices[0].message.content or "") == 7
    assert reply.usage is not None
    assert reply.usage.prompt_tokens == count_tokens(render_chat(MESSAGES))
    assert reply.usage.completion_tokens == 7
    assert reply.usage.total_tokens == reply.usage.prompt_tokens + 7


async def test_chat_stream_includes_usage_when_asked(client: openai.AsyncOpenAI) -> None:
    stream = await client.chat.completions.create(
        model="sim-model",
        messages=MESSAGES,
        max_tokens=5,
        stream=True,
        stream_options={"include_usage": True},
        extra_body={"ignore_eos": True},
    )
    chunks = [chunk async for chunk in stream]
    pieces = [
        c.choices[0].delta.content for c in chunks if c.choices and c.choices[0].delta.content
    ]
    assert len(pieces) == 5
    assert chunks[0].choices[0].delta.role == "assistant"
    assert [c.choices[0].finish_reason for c in chunks if c.choices][-1] == "length"
    assert chunks[-1].choices == []
    assert chunks[-1].usage is not None
    assert chunks[-1].usage.completion_tokens == 5
    assert chunks[-1].usage.prompt_tokens == count_tokens(render_chat(MESSAGES))


async def test_stream_without_include_usage_has_no_usage_chunk(
    client: openai.AsyncOpenAI,
) -> None:
    stream = await client.chat.completions.create(
        model="sim-model", messages=MESSAGES, max_tokens=3, stream=True
    )
    chunks = [chunk async for chunk in stream]
    assert all(c.usage is None for c in chunks)
    assert all(c.choices for c in chunks)


async def test_completion_json_and_stream_agree(client: openai.AsyncOpenAI) -> None:
    prompt = "Once upon a time"
    full = await client.completions.create(model="sim-model", prompt=prompt, max_tokens=12)
    stream = await client.completions.create(
        model="sim-model",
        prompt=prompt,
        max_tokens=12,
        stream=True,
        stream_options={"include_usage": True},
    )
    chunks = [chunk async for chunk in stream]
    text = "".join(c.choices[0].text for c in chunks if c.choices)
    assert full.object == "text_completion"
    assert text == full.choices[0].text  # same seed and prompt: same reply
    assert full.usage is not None
    assert chunks[-1].usage is not None
    assert full.usage.prompt_tokens == chunks[-1].usage.prompt_tokens == count_tokens(prompt)
    assert full.usage.completion_tokens == chunks[-1].usage.completion_tokens
    assert full.usage.completion_tokens == count_tokens(full.choices[0].text)


async def test_models_lists_the_served_model(client: openai.AsyncOpenAI) -> None:
    models = await client.models.list()
    assert [m.id for m in models.data] == ["sim-model"]


async def test_reply_stops_naturally_without_max_tokens(client: openai.AsyncOpenAI) -> None:
    reply = await client.chat.completions.create(model="sim-model", messages=MESSAGES)
    assert reply.choices[0].finish_reason == "stop"
    assert reply.usage is not None
    assert 16 <= reply.usage.completion_tokens <= 128
