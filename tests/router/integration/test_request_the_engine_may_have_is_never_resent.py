"""A request the engine may have received is never sent again: an engine that reads the
request, starts generating and drops the connection (with or without a response head) ran
the generation once, and the client gets 502 with the OpenAI error body, although other
replicas and tiers were there to retry on; one that never answers gets 504 after the
timeout, also without a second generation. An idle keep-alive connection the engine closed
is not such a failure: requests after it succeed, each generated once."""

from __future__ import annotations

import asyncio

import httpx
import pytest
from raw_engine_harness import Mode, RawEngine, raw_engines
from router_harness import RouterProcess, StartRouter, policy, tier, until

BODY = {"model": "auto", "messages": [{"role": "user", "content": "write a poem"}]}


def _start(start_router: StartRouter, engines: list[RawEngine], *flags: str) -> RouterProcess:
    document = policy([tier("small", "small-md", 0.1, 0.2), tier("large", "large-md", 2, 8)])
    endpoints = {"small-md": [e.url for e in engines[:2]], "large-md": [engines[2].url]}
    return start_router(document, endpoints, *flags)


@pytest.mark.parametrize(
    ("mode", "stream", "status"),
    [
        (Mode.DROP, False, 502),
        (Mode.DROP, True, 502),
        (Mode.DROP_AFTER_HEAD, False, 502),
        (Mode.HANG, False, 504),
        (Mode.HANG, True, 504),
    ],
)
async def test_generation_the_engine_had_runs_once(
    start_router: StartRouter, mode: Mode, stream: bool, status: int
) -> None:
    async with raw_engines(mode, mode, mode) as engines:
        router = await asyncio.to_thread(_start, start_router, engines, "--upstream-timeout", "0.5")
        # the scraper has pooled a connection to each engine: the request reuses one
        await until(lambda: all(e.connections for e in engines), "scrapes of every engine")
        async with httpx.AsyncClient(timeout=10) as client:
            response = await client.post(
                router.base_url + "/chat/completions", json={**BODY, "stream": stream}
            )
        await asyncio.sleep(0.3)  # a (wrong) late resend would have arrived by now
    assert sum(e.generations for e in engines) == 1
    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert error["type"] == "server_error"
    assert "not retried" in error["message"]
    assert "x-tierwise-fallback" not in response.headers
    metric = await asyncio.to_thread(router.metric, "tierwise_router_fallbacks_total")
    assert metric == 0


async def test_idle_connections_closed_by_the_engine_are_not_failures(
    start_router: StartRouter,
) -> None:
    async with raw_engines(Mode.ANSWER, Mode.ANSWER, Mode.ANSWER, idle_close_s=0.1) as engines:
        router = await asyncio.to_thread(_start, start_router, engines)
        statuses = []
        async with httpx.AsyncClient(timeout=10) as client:
            for i in range(6):
                # longer than the engines keep a used connection idle: each request finds
                # the previous one's connection closed by the engine
                await asyncio.sleep(0.25)
                response = await client.post(
                    router.base_url + "/chat/completions",
                    json={**BODY, "messages": [{"role": "user", "content": f"poem {i}"}]},
                )
                statuses.append(response.status_code)
    assert statuses == [200] * 6
    assert sum(e.generations for e in engines) == 6
