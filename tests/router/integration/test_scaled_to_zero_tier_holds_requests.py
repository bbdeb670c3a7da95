"""A tier whose ModelDeployment has no replicas (scaled to zero) holds requests, counted in
``pending_requests`` (the scale-from-zero demand signal), and serves them once the table
gives it replicas; after ``--pending-wait`` it escalates or answers 503 + Retry-After."""

from __future__ import annotations

import asyncio
import time

import httpx
import pytest
from router_harness import RouterProcess, Sims, StartRouter, policy, tier

BODY = {"model": "auto", "messages": [{"role": "user", "content": "wake up"}]}


def _document(on_error: str) -> dict[str, object]:
    return policy(
        [tier("small", "small-md", 0.1, 0.2), tier("large", "large-md", 2, 8)],
        fallback={"onError": on_error, "retryAfterSeconds": 5},
    )


async def _pending(router: RouterProcess, count: int) -> None:
    deadline = time.monotonic() + 5
    while router.metric("tierwise_router_pending_requests") != count:
        assert time.monotonic() < deadline, router.log()
        await asyncio.sleep(0.05)


async def test_held_request_is_served_when_replicas_appear(
    sims: Sims, start_router: StartRouter
) -> None:
    router = start_router(
        _document("escalate"),
        {"large-md": [sims.large.url]},
        "--pending-wait",
        "20",
        "--watch-interval",
        "0.05",
    )
    async with httpx.AsyncClient(timeout=30) as client:
        held = [
            asyncio.create_task(client.post(router.base_url + "/chat/completions", json=BODY))
            for _ in range(3)
        ]
        await _pending(router, 3)
        assert not any(task.done() for task in held)
        router.write_endpoints(sims.endpoints())
        responses = await asyncio.gather(*held)
    assert [r.status_code for r in responses] == [200, 200, 200]
    assert {r.headers["x-tierwise-tier"] for r in responses} == {"small"}
    assert router.metric("tierwise_router_pending_requests") == 0
    # the counter keeps what the gauge forgets once the holds end
    assert router.metric("tierwise_router_held_requests_total", model_deployment="small-md") == 3


@pytest.mark.parametrize(
    ("on_error", "status", "tier_name"), [("escalate", 200, "large"), ("reject", 503, "small")]
)
def test_wait_runs_out(
    sims: Sims, start_router: StartRouter, on_error: str, status: int, tier_name: str
) -> None:
    router = start_router(
        _document(on_error), {"large-md": [sims.large.url]}, "--pending-wait", "0.3"
    )
    began = time.monotonic()
    response = httpx.post(router.base_url + "/chat/completions", json=BODY, timeout=10)
    assert time.monotonic() - began >= 0.3
    assert response.status_code == status
    assert response.headers["x-tierwise-tier"] == tier_name
    if status == 503:
        assert response.headers["retry-after"] == "5"
        assert response.json()["error"]["code"] == "service_unavailable"
    else:
        assert response.headers["x-tierwise-fallback"] == "no_replicas"
