"""Admission: batch slots, a bounded FIFO queue (503 beyond it), load gauges, KV usage."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from contextlib import AbstractAsyncContextManager

import aiohttp

from tierwise.sim.config import SimConfig

Serve = Callable[[SimConfig], AbstractAsyncContextManager[str]]


async def test_queue_beyond_max_queue_is_refused_with_503(
    serve: Serve, make_config: Callable[..., SimConfig]
) -> None:
    config = make_config(decode_ms_per_token=20.0, max_running=1, max_queue=1)
    body = {"model": "sim-model", "prompt": "x", "max_tokens": 10, "ignore_eos": True}
    async with serve(config) as url, aiohttp.ClientSession() as http:

        async def post() -> int:
            async with http.post(url + "/v1/completions", json=body) as response:
                await response.read()
                return response.status

        first = asyncio.create_task(post())
        await asyncio.sleep(0.05)
        second = asyncio.create_task(post())
        await asyncio.sleep(0.05)
        async with http.get(url + "/sim/state") as response:
            state = await response.json()
        assert state["running"] == 1
        assert state["waiting"] == 1
        assert state["kv_used_tokens"] > 0
        assert await post() == 503
        assert [await first, await second] == [200, 200]
        async with http.get(url + "/sim/state") as response:
            state = await response.json()
    assert (state["running"], state["waiting"], state["kv_used_tokens"]) == (0, 0, 0)


async def test_decode_slows_down_as_the_batch_grows(
    serve: Serve, make_config: Callable[..., SimConfig]
) -> None:
    config = make_config(decode_ms_per_token=2.0, decode_ms_per_running=2.0)
    async with serve(config) as url, aiohttp.ClientSession() as http:

        async def timed(i: int) -> float:
            body = {"model": "sim-model", "prompt": f"p{i}", "max_tokens": 30, "ignore_eos": True}
            began = time.monotonic()
            async with http.post(url + "/v1/completions", json=body) as response:
                assert response.status == 200
            return time.monotonic() - began

        alone = await timed(0)
        together = await asyncio.gather(*(timed(i) for i in range(1, 9)))
    assert alone < 0.2
    assert min(together) > alone * 2  # 8 running: steps of 16 ms instead of 2 ms
