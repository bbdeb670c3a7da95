"""Routing-table changes (endpoint files, policy edits, SIGHUP) are swapped in while
requests flow, and no request fails; an invalid policy is rejected, counted, and the old
table keeps serving."""

from __future__ import annotations

import asyncio
import os
import signal
import time

import httpx
import openai
import pytest
from router_harness import RouterProcess, Sims, StartRouter, policy, tier

POLICY = policy([tier("small", "small-md", 0.1, 0.2), tier("large", "large-md", 2, 8)])


def _version(router: RouterProcess) -> str:
    version: str = httpx.get(router.url + "/readyz").json()["tableVersion"]
    return version


async def _drive(router: RouterProcess, stop: asyncio.Event, concurrency: int) -> list[int]:
    statuses: list[int] = []

    async def worker(client: openai.AsyncOpenAI, k: int) -> None:
        i = 0
        while not stop.is_set():
            i += 1
            messages = [{"role": "user", "content": f"worker {k} turn {i}"}]
            try:
                if i % 2:
                    stream = await client.chat.completions.create(
                        model="auto",
                        messages=messages,
                        max_tokens=4,
                        stream=True,  # type: ignore[arg-type]
                    )
                    async with stream:
                        assert [c async for c in stream]
                else:
                    await client.chat.completions.create(
                        model="auto",
                        messages=messages,
                        max_tokens=4,  # type: ignore[arg-type]
                    )
                statuses.append(200)
            except openai.APIStatusError as exc:
                statuses.append(exc.status_code)
            except openai.APIConnectionError:
                statuses.append(0)

    async with openai.AsyncOpenAI(base_url=router.base_url, api_key="k", max_retries=0) as client:
        await asyncio.gather(*(worker(client, k) for k in range(concurrency)))
    return statuses


async def test_endpoint_and_policy_changes_under_load(
    sims: Sims, start_router: StartRouter
) -> None:
    router = start_router(POLICY, sims.endpoints(), "--watch-interval", "0.05")
    first = await asyncio.to_thread(_version, router)
    a, b = (e.url for e in sims.small)
    large = [sims.large.url]
    changes = [
        lambda: router.write_endpoints({"small-md": [b], "large-md": large}),
        lambda: router.write_endpoints({"small-md": [a], "large-md": large}),
        lambda: router.write_policy(
            policy([tier("small", "small-md", 0.3, 0.6), tier("large", "large-md", 2, 8)])
        ),
        lambda: router.write_endpoints({"small-md": [a, b], "large-md": large}),
        lambda: router.write_policy("spec: {tiers: not-a-list"),  # invalid: rejected
        lambda: router.write_policy(POLICY),
    ]
    stop = asyncio.Event()
    driving = asyncio.create_task(_drive(router, stop, concurrency=6))
    for change in changes:
        await asyncio.sleep(0.3)
        change()
    await asyncio.sleep(0.4)
    stop.set()
    statuses = await driving
    assert len(statuses) > 30
    assert set(statuses) == {200}
    assert router.metric("tierwise_router_table_reloads_total", result="ok") >= 5
    assert router.metric("tierwise_router_table_reloads_total", result="error") == 1
    assert "routing table rejected" in router.log()
    last = await asyncio.to_thread(_version, router)
    assert last == first  # the same content hashes to the same version


def test_sighup_reloads_at_once(sims: Sims, start_router: StartRouter) -> None:
    router = start_router(POLICY, sims.endpoints(), "--watch-interval", "3600")
    before = httpx.get(router.url + "/readyz").json()["tableVersion"]
    router.write_endpoints({"small-md": [sims.small[0].url], "large-md": [sims.large.url]})
    os.kill(router.process.pid, signal.SIGHUP)
    deadline = time.monotonic() + 5
    while httpx.get(router.url + "/readyz").json()["tableVersion"] == before:
        assert time.monotonic() < deadline, router.log()
        time.sleep(0.05)
    info = router.metric("tierwise_router_table_version_info")
    assert info == 1


@pytest.mark.parametrize(
    "broken",
    ["", "spec: [", "kind: RoutingPolicy\napiVersion: tierwise.dev/v1alpha1\nspec: {}"],
)
def test_invalid_policy_keeps_the_old_table(
    sims: Sims, start_router: StartRouter, broken: str
) -> None:
    router = start_router(POLICY, sims.endpoints(), "--watch-interval", "0.05")
    version = httpx.get(router.url + "/readyz").json()["tableVersion"]
    router.write_policy(broken)
    deadline = time.monotonic() + 5
    while router.metric("tierwise_router_table_reloads_total", result="error") < 1:
        assert time.monotonic() < deadline, router.log()
        time.sleep(0.05)
    response = httpx.post(
        router.base_url + "/chat/completions",
        json={"model": "auto", "messages": [{"role": "user", "content": "still here?"}]},
    )
    assert response.status_code == 200
    assert httpx.get(router.url + "/readyz").json()["tableVersion"] == version
