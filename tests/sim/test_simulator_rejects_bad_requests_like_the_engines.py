"""Bad requests get the OpenAI-style errors the real servers give."""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractAsyncContextManager
from typing import Any

import aiohttp
import openai
import pytest

from tierwise.sim.config import EngineKind, SimConfig

Serve = Callable[[SimConfig], AbstractAsyncContextManager[str]]


def _error_fields(engine: EngineKind, body: dict[str, Any]) -> dict[str, Any]:
    if engine is EngineKind.VLLM:
        return dict(body["error"])
    assert body["object"] == "error"
    return body


@pytest.mark.parametrize("engine", list(EngineKind))
@pytest.mark.parametrize(
    ("path", "payload", "status", "needle"),
    [
        ("/v1/chat/completions", b"{not json", 400, "Malformed JSON"),
        ("/v1/completions", b"", 400, "Malformed JSON"),
        (
            "/v1/chat/completions",
            b'{"model": "nope", "messages": [{"role": "user"}]}',
            404,
            "does not exist",
        ),
        ("/v1/chat/completions", b'{"messages": []}', 400, "messages"),
        ("/v1/completions", b'{"prompt": "hi", "max_tokens": 0}', 400, "max_tokens"),
        ("/v1/completions", b'{"prompt": "hi", "n": 2}', 400, "n=1"),
        ("/v1/completions", b'{"prompt": ["a", "b"]}', 400, "prompt"),
        ("/v1/completions", b"[1, 2]", 400, "JSON object"),
    ],
)
async def test_bad_request_gets_engine_shaped_error(
    engine: EngineKind,
    path: str,
    payload: bytes,
    status: int,
    needle: str,
    serve: Serve,
    make_config: Callable[..., SimConfig],
) -> None:
    async with (
        serve(make_config(engine)) as url,
        aiohttp.ClientSession() as http,
        http.post(
            url + path, data=payload, headers={"Content-Type": "application/json"}
        ) as response,
    ):
        assert response.status == status
        fields = _error_fields(engine, await response.json())
    assert fields["code"] == status
    assert needle in fields["message"]
    assert fields["type"] == ("NotFoundError" if status == 404 else "BadRequestError")


@pytest.mark.parametrize("engine", list(EngineKind))
async def test_prompt_over_context_length_is_rejected(
    engine: EngineKind, serve: Serve, make_config: Callable[..., SimConfig]
) -> None:
    config = make_config(engine)
    config = SimConfig(engine=engine, model="sim-model", latency=config.latency, context_length=100)
    async with (
        serve(config) as url,
        openai.AsyncOpenAI(base_url=url + "/v1", api_key="unused", max_retries=0) as client,
    ):
        with pytest.raises(openai.BadRequestError, match="context length"):
            await client.completions.create(model="sim-model", prompt="word " * 200)
        with pytest.raises(openai.BadRequestError, match="max_tokens"):
            await client.completions.create(model="sim-model", prompt="word " * 50, max_tokens=80)
        ok = await client.completions.create(model="sim-model", prompt="word " * 50, max_tokens=50)
    assert ok.usage is not None
    assert ok.usage.prompt_tokens + ok.usage.completion_tokens <= 100


async def test_unknown_model_raises_not_found_in_the_openai_client(vllm_url: str) -> None:
    async with openai.AsyncOpenAI(
        base_url=vllm_url + "/v1", api_key="unused", max_retries=0
    ) as client:
        with pytest.raises(openai.NotFoundError, match="`gpt-5` does not exist"):
            await client.chat.completions.create(
                model="gpt-5", messages=[{"role": "user", "content": "hi"}]
            )
