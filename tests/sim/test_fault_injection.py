"""Fault injection for router fallback tests: errors, latency, hangs, failing health."""

from __future__ import annotations

import asyncio
import dataclasses
import time
from collections.abc import Callable
from contextlib import AbstractAsyncContextManager

import aiohttp
import pytest

from tierwise.sim.config import FaultConfig, SimConfig

Serve = Callable[[SimConfig], AbstractAsyncContextManager[str]]
BODY = {"model": "sim-model", "prompt": "hello", "max_tokens": 2}


async def _post(http: aiohttp.ClientSession, url: str) -> int:
    async with http.post(url + "/v1/completions", json=BODY) as response:
        await response.read()
        return response.status


@pytest.mark.parametrize("status", [500, 503, 429])
async def test_error_faults_fail_requests_until_cleared(status: int, vllm_url: str) -> None:
    async with aiohttp.ClientSession() as http:
        faults = {"error_status": status, "error_rate": 1.0}
        async with http.post(vllm_url + "/sim/faults", json=faults) as response:
            assert response.status == 200
            assert (await response.json())["error_status"] == status
        assert await _post(http, vllm_url) == status
        async with http.get(vllm_url + "/health") as response:
            assert response.status == 200  # errors only hit generation
        async with http.delete(vllm_url + "/sim/faults") as response:
            assert (await response.json())["error_rate"] == 0
        assert await _post(http, vllm_url) == 200


async def test_partial_error_rate_is_deterministic_under_a_seed(
    serve: Serve, make_config: Callable[..., SimConfig]
) -> None:
    config = dataclasses.replace(make_config(), faults=FaultConfig(error_rate=0.5), seed=7)
    outcomes = []
    for _ in range(2):
        async with serve(config) as url, aiohttp.ClientSession() as http:
            outcomes.append([await _post(http, url) for _ in range(20)])
    assert outcomes[0] == outcomes[1]
    assert set(outcomes[0]) == {200, 500}


async def test_hang_holds_requests_until_faults_are_cleared(vllm_url: str) -> None:
    async with aiohttp.ClientSession() as http:
        await http.post(vllm_url + "/sim/faults", json={"hang": True})
        pending = asyncio.create_task(_post(http, vllm_url))
        await asyncio.sleep(0.2)
        assert not pending.done()
        await http.delete(vllm_url + "/sim/faults")
        assert await asyncio.wait_for(pending, 5) == 200


async def test_extra_latency_delays_each_request(vllm_url: str) -> None:
    async with aiohttp.ClientSession() as http:
        await http.post(vllm_url + "/sim/faults", json={"extra_latency_s": 0.3})
        began = time.monotonic()
        assert await _post(http, vllm_url) == 200
        assert time.monotonic() - began >= 0.3


async def test_failing_health_answers_503(vllm_url: str) -> None:
    async with aiohttp.ClientSession() as http:
        await http.post(vllm_url + "/sim/faults", json={"fail_health": True})
        async with http.get(vllm_url + "/health") as response:
            assert response.status == 503


@pytest.mark.parametrize(
    "faults",
    [{"error_rate": 2.0}, {"error_status": 200}, {"hang": "yes"}, {"bogus": 1}, [1]],
)
async def test_invalid_fault_configs_are_rejected(faults: object, vllm_url: str) -> None:
    async with aiohttp.ClientSession() as http:
        async with http.post(vllm_url + "/sim/faults", json=faults) as response:
            assert response.status == 400
        async with http.get(vllm_url + "/sim/faults") as response:
            assert await response.json() == dataclasses.asdict(FaultConfig())
