"""Two identical long-prefix requests: the hit counter rises and the second is faster."""

from __future__ import annotations

import time
from collections.abc import Callable
from contextlib import AbstractAsyncContextManager

import aiohttp
import openai
import pytest
from prometheus_client.parser import text_string_to_metric_families

from tierwise.sim.config import EngineKind, SimConfig

SYSTEM = "You are the operator's assistant. " + "Policy clause number seven applies. " * 150


async def _timed_chat(client: openai.AsyncOpenAI, user: str) -> tuple[float, int]:
    began = time.monotonic()
    reply = await client.chat.completions.create(
        model="sim-model",
        messages=[{"role": "system", "content": SYSTEM}, {"role": "user", "content": user}],
        max_tokens=2,
    )
    assert reply.usage is not None
    assert reply.usage.prompt_tokens_details is not None
    return time.monotonic() - began, reply.usage.prompt_tokens_details.cached_tokens or 0


@pytest.mark.parametrize("engine", list(EngineKind))
async def test_second_identical_long_prefix_request_is_faster(
    engine: EngineKind,
    serve: Callable[[SimConfig], AbstractAsyncContextManager[str]],
    make_config: Callable[..., SimConfig],
) -> None:
    config = make_config(engine, prefill_ms_per_token=0.2, decode_ms_per_token=1.0)
    async with (
        serve(config) as url,
        openai.AsyncOpenAI(base_url=url + "/v1", api_key="unused", max_retries=0) as client,
    ):
        first_s, first_cached = await _timed_chat(client, "What applies?")
        second_s, second_cached = await _timed_chat(client, "What applies?")
    assert first_cached == 0
    assert second_cached > 1000
    assert first_s > 0.2  # >1,000 uncached tokens at 0.2 ms each
    assert second_s < first_s / 3


async def test_hit_counter_rises_between_identical_requests(
    serve: Callable[[SimConfig], AbstractAsyncContextManager[str]],
    make_config: Callable[..., SimConfig],
) -> None:
    hits = []
    async with (
        serve(make_config()) as url,
        openai.AsyncOpenAI(base_url=url + "/v1", api_key="unused", max_retries=0) as client,
        aiohttp.ClientSession() as http,
    ):
        for _ in range(2):
            await _timed_chat(client, "Same question.")
            async with http.get(url + "/metrics") as response:
                text = await response.text()
            family = next(
                f
                for f in text_string_to_metric_families(text)
                if f.name == "vllm:prefix_cache_hits"
            )
            hits.append(family.samples[0].value)
    assert hits[0] == 0
    assert hits[1] > 1000
