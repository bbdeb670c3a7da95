"""A killed replica, a killed tier, failing and overloaded engines are survived per the
fallback policy: no failed request where a fallback exists, 429/503 with Retry-After
where the policy rejects, and every fallback counted by reason."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Sequence
from typing import Any

import httpx
import openai
import pytest
from router_harness import RouterProcess, StartRouter, policy, sim, tier

from tierwise.sim.config import SimConfig
from tierwise.sim.process import EngineProcess

StartSims = Callable[[Sequence[SimConfig]], list[EngineProcess]]


def _policy(**fallback: Any) -> dict[str, Any]:
    return policy(
        [tier("small", "small-md", 0.1, 0.2), tier("large", "large-md", 2, 8)], fallback=fallback
    )


def _endpoints(
    small: Sequence[EngineProcess], large: Sequence[EngineProcess]
) -> dict[str, list[str]]:
    return {"small-md": [e.url for e in small], "large-md": [e.url for e in large]}


def _send(router: RouterProcess, n: int) -> list[tuple[str, str]]:
    """``n`` requests, alternating streaming and not; (tier, fallback header) of each."""
    seen = []
    with openai.OpenAI(base_url=router.base_url, api_key="k", max_retries=0) as client:
        for i in range(n):
            messages = [{"role": "user", "content": f"request {i}"}]
            if i % 2:
                with client.chat.completions.with_streaming_response.create(
                    model="auto",
                    messages=messages,
                    max_tokens=4,
                    stream=True,  # type: ignore[arg-type]
                ) as response:
                    assert "".join(
                        c.choices[0].delta.content or "" for c in response.parse() if c.choices
                    )
                    headers = response.headers
            else:
                raw = client.chat.completions.with_raw_response.create(
                    model="auto",
                    messages=messages,
                    max_tokens=4,  # type: ignore[arg-type]
                )
                assert raw.parse().choices[0].message.content
                headers = raw.headers
            seen.append((headers["x-tierwise-tier"], headers.get("x-tierwise-fallback", "")))
    return seen


@pytest.mark.parametrize("killed", [0, 1])
def test_killed_replica_is_retried_on_another(
    start_sims: StartSims, start_router: StartRouter, killed: int
) -> None:
    engines = start_sims([sim("small-md"), sim("small-md"), sim("large-md")])
    # scrape rarely, so the requests (not the scraper) discover the dead replica
    router = start_router(_policy(), _endpoints(engines[:2], engines[2:]), "--scrape-interval", "5")
    engines[killed].stop()
    seen = _send(router, 12)
    assert {t for t, _ in seen} == {"small"}
    assert router.metric("tierwise_router_fallbacks_total", reason="connect_error") >= 1
    assert router.metric_reaches("tierwise_router_requests_total", 12, code="200") == 12


def test_killed_tier_escalates_to_the_next(
    start_sims: StartSims, start_router: StartRouter
) -> None:
    engines = start_sims([sim("small-md"), sim("small-md"), sim("large-md")])
    router = start_router(_policy(), _endpoints(engines[:2], engines[2:]))
    engines[0].stop()
    engines[1].stop()
    seen = _send(router, 8)
    assert {t for t, _ in seen} == {"large"}
    assert any("connect_error" in f for _, f in seen)


def test_killed_tier_with_on_error_reject_answers_503(
    start_sims: StartSims, start_router: StartRouter
) -> None:
    engines = start_sims([sim("small-md"), sim("large-md")])
    router = start_router(
        _policy(onError="reject", retryAfterSeconds=7), _endpoints(engines[:1], engines[1:])
    )
    engines[0].stop()
    with (
        openai.OpenAI(base_url=router.base_url, api_key="k", max_retries=0) as client,
        pytest.raises(openai.APIStatusError) as caught,
    ):
        client.chat.completions.create(model="auto", messages=[{"role": "user", "content": "x"}])
    assert caught.value.status_code == 503
    assert caught.value.response.headers["retry-after"] == "7"
    assert caught.value.response.headers["x-tierwise-tier"] == "small"


@pytest.mark.parametrize("stream", [False, True])
def test_upstream_5xx_is_retried_before_the_first_byte(
    start_sims: StartSims, start_router: StartRouter, stream: bool
) -> None:
    engines = start_sims([sim("small-md"), sim("small-md"), sim("large-md")])
    router = start_router(_policy(), _endpoints(engines[:2], engines[2:]))
    httpx.post(engines[0].url + "/sim/faults", json={"error_rate": 1.0, "error_status": 500})
    httpx.post(engines[1].url + "/sim/faults", json={"error_rate": 1.0, "error_status": 503})
    with openai.OpenAI(base_url=router.base_url, api_key="k", max_retries=0) as client:
        raw = client.chat.completions.with_raw_response.create(
            model="auto", messages=[{"role": "user", "content": "x"}], stream=stream
        )
        raw.parse()
    assert raw.headers["x-tierwise-tier"] == "large"
    assert raw.headers["x-tierwise-fallback"] == "upstream_5xx,upstream_5xx"
    assert router.metric("tierwise_router_fallbacks_total", reason="upstream_5xx") == 2


def _wait_for_queue(engine: EngineProcess, depth: int) -> None:
    deadline = time.monotonic() + 10
    while httpx.get(engine.url + "/sim/state").json()["waiting"] < depth:
        assert time.monotonic() < deadline, "the simulator never queued"
        time.sleep(0.05)
    time.sleep(0.6)  # three scrape intervals: the router has seen it


def _fill_queue(engine: EngineProcess, n: int) -> asyncio.Task[None]:
    """``n`` slow requests straight to ``engine``, so its queue fills."""
    body = {
        "model": "small-md",
        "messages": [{"role": "user", "content": "slow"}],
        "max_tokens": 20,
        "ignore_eos": True,
    }

    async def run() -> None:
        async with httpx.AsyncClient(timeout=30) as client:
            await asyncio.gather(
                *(client.post(engine.url + "/v1/chat/completions", json=body) for _ in range(n))
            )

    return asyncio.create_task(run())


@pytest.mark.parametrize(
    ("on_overload", "status", "tier_name"), [("reject", 429, "small"), ("escalate", 200, "large")]
)
async def test_overloaded_tier_rejects_or_escalates(
    start_sims: StartSims,
    start_router: StartRouter,
    on_overload: str,
    status: int,
    tier_name: str,
) -> None:
    slow = sim("small-md", max_running=1, decode_ms_per_token=40.0)
    engines = start_sims([slow, sim("large-md")])
    router = start_router(
        _policy(onOverload=on_overload, overloadQueueDepth=2), _endpoints(engines[:1], engines[1:])
    )
    filling = _fill_queue(engines[0], 4)
    await asyncio.to_thread(_wait_for_queue, engines[0], 2)
    async with httpx.AsyncClient(timeout=30) as client:
        response = await client.post(
            router.base_url + "/chat/completions",
            json={"model": "auto", "messages": [{"role": "user", "content": "now"}]},
        )
    await filling
    assert response.status_code == status, response.text
    assert response.headers["x-tierwise-tier"] == tier_name
    if status == 429:
        assert response.headers["retry-after"] == "2"
        assert response.json()["error"]["code"] == "overloaded"
    assert router.metric("tierwise_router_fallbacks_total", reason="overload") == (
        1 if on_overload == "escalate" else 0
    )
