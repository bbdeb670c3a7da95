"""The router's read-only watch client against the embedded API server: it lists then
watches with selectors, follows bookmarks, relists after 410 Gone (as an HTTP status and as
an ERROR event), backs off through errors (401, 403, 503, an unreachable server) and sends
a rotated token as soon as its file changes."""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import aiohttp
import kmock
import pytest
from router_harness import until

from tierwise.local.cluster import EmulatedCluster
from tierwise.router.discovery.reflector import Backoff, Reflector, WatchTiming
from tierwise.router.discovery.stats import DiscoveryStats
from tierwise.router.kubeapi import KubeApi, KubeConfig
from tierwise.sim.process import free_port

SLICES = "/apis/discovery.k8s.io/v1/namespaces/default/endpointslices"
CONFIGMAPS = "/api/v1/namespaces/default/configmaps"
LABEL = "tierwise.dev/model-deployment"
FAST = WatchTiming(backoff=Backoff(0.01, 0.05), watch_timeout_s=1, read_silence_s=5)


@pytest.fixture
async def cluster() -> AsyncIterator[EmulatedCluster]:
    async with EmulatedCluster(bookmark_interval=0.1) as running:
        yield running


async def create(cluster: EmulatedCluster, path: str, body: dict[str, Any]) -> None:
    async with (
        aiohttp.ClientSession() as session,
        session.post(cluster.url + path, json=body) as response,
    ):
        assert response.status == 201, await response.text()


async def delete(cluster: EmulatedCluster, path: str) -> None:
    async with aiohttp.ClientSession() as session, session.delete(cluster.url + path) as response:
        assert response.status == 200, await response.text()


def endpoint_slice(name: str, *, labelled: bool = True) -> dict[str, Any]:
    labels = {"kubernetes.io/service-name": "svc"}
    if labelled:
        labels[LABEL] = "md"
    return {
        "apiVersion": "discovery.k8s.io/v1",
        "kind": "EndpointSlice",
        "metadata": {"name": name, "labels": labels},
        "addressType": "IPv4",
        "ports": [{"name": "http", "port": 8000}],
        "endpoints": [],
    }


Running = Callable[..., Awaitable[tuple[Reflector, DiscoveryStats]]]


@pytest.fixture
async def reflector() -> AsyncIterator[Running]:
    tasks: list[asyncio.Task[None]] = []
    apis: list[KubeApi] = []

    async def start(
        config: KubeConfig, path: str = SLICES, params: dict[str, str] | None = None
    ) -> tuple[Reflector, DiscoveryStats]:
        stats = DiscoveryStats()
        api = KubeApi(config)
        apis.append(api)
        found = Reflector(
            api,
            path,
            params=params if params is not None else {"labelSelector": LABEL},
            stats=stats.watch("test"),
            on_change=lambda: None,
            timing=FAST,
        )
        tasks.append(asyncio.get_running_loop().create_task(found.run()))
        return found, stats

    try:
        yield start
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        for api in apis:
            await api.close()


async def test_lists_then_follows_changes_through_the_label_selector(
    cluster: EmulatedCluster, reflector: Running
) -> None:
    await create(cluster, SLICES, endpoint_slice("a"))
    await create(cluster, SLICES, endpoint_slice("ignored", labelled=False))
    found, stats = await reflector(KubeConfig(server=cluster.url, token="t"))
    await until(lambda: found.synced, "first list")
    assert set(found.objects) == {"a"}
    await create(cluster, SLICES, endpoint_slice("b"))
    await create(cluster, SLICES, endpoint_slice("also-ignored", labelled=False))
    await until(lambda: set(found.objects) == {"a", "b"}, "b added")
    await delete(cluster, f"{SLICES}/a")
    await until(lambda: set(found.objects) == {"b"}, "a deleted")
    await until(lambda: stats.watch("test").events.get("BOOKMARK"), "a bookmark")
    watch = stats.watch("test")
    assert watch.up
    assert watch.lists == 1
    assert watch.events["ADDED"] == 1
    assert watch.events["DELETED"] == 1


async def test_field_selector_keeps_one_config_map(
    cluster: EmulatedCluster, reflector: Running
) -> None:
    await create(cluster, CONFIGMAPS, {"metadata": {"name": "other"}, "data": {"k": "v"}})
    params = {"fieldSelector": "metadata.name=mine"}
    found, _ = await reflector(KubeConfig(server=cluster.url), CONFIGMAPS, params)
    await until(lambda: found.synced, "first list")
    assert found.objects == {}
    await create(cluster, CONFIGMAPS, {"metadata": {"name": "mine"}, "data": {"k": "1"}})
    await until(lambda: "mine" in found.objects, "mine added")
    assert set(found.objects) == {"mine"}


def _is_watch(request: kmock.Request) -> bool:
    return request.params.get("watch") == "true"


def _is_read(request: kmock.Request) -> bool:
    """The client's requests (the test's own writes pass unchecked)."""
    return str(request.method.value).upper() == "GET"


async def test_expired_version_in_the_stream_relists(
    cluster: EmulatedCluster, reflector: Running
) -> None:
    cluster.server.log.limit = 8  # a short history: resuming from an old version gets 410
    refused: list[int] = []
    blocked = {"on": False}

    def fault(request: kmock.Request) -> int | None:
        if blocked["on"] and _is_watch(request):
            refused.append(1)
            return 503
        return None

    cluster.server.fault = fault
    await create(cluster, SLICES, endpoint_slice("first"))
    found, stats = await reflector(KubeConfig(server=cluster.url))
    await until(lambda: found.synced, "first list")
    blocked["on"] = True
    await until(lambda: refused, "the open watch ended and a new one was refused")
    for i in range(20):
        await create(cluster, SLICES, endpoint_slice(f"s{i}"))
    await delete(cluster, f"{SLICES}/first")
    blocked["on"] = False
    expected = {f"s{i}" for i in range(20)}
    await until(lambda: set(found.objects) == expected, "the relisted state")
    watch = stats.watch("test")
    assert watch.errors.get("expired", 0) >= 1
    assert watch.lists >= 2


async def test_gone_status_on_a_watch_relists(cluster: EmulatedCluster, reflector: Running) -> None:
    answers = iter([410])
    cluster.server.fault = lambda request: next(answers, None) if _is_watch(request) else None
    await create(cluster, SLICES, endpoint_slice("a"))
    found, stats = await reflector(KubeConfig(server=cluster.url))
    await until(lambda: stats.watch("test").lists >= 2, "a relist after 410")
    await create(cluster, SLICES, endpoint_slice("b"))
    await until(lambda: set(found.objects) == {"a", "b"}, "b after the relist")
    assert stats.watch("test").errors == {"expired": 1}


def _write_token(path: Path, token: str) -> None:
    """As kubelet does: a new file swapped in (a new inode)."""
    tmp = path.with_name(path.name + ".new")
    tmp.write_text(token + "\n")
    os.replace(tmp, path)


async def test_rotated_token_is_used_from_the_next_request(
    cluster: EmulatedCluster, reflector: Running, tmp_path: Path
) -> None:
    token = tmp_path / "token"
    _write_token(token, "first-token")
    accepted = {"first-token"}
    sent: list[str] = []

    def check(request: kmock.Request) -> int | None:
        if not _is_read(request):
            return None
        header = request.headers.get("Authorization", "")
        sent.append(header)
        return None if header.removeprefix("Bearer ") in accepted else 401

    cluster.server.fault = check
    found, stats = await reflector(KubeConfig(server=cluster.url, token_file=str(token)))
    await until(lambda: found.synced, "first list")
    _write_token(token, "second-token")  # kubelet rotates; the old token stays valid a while
    accepted.add("second-token")
    await until(lambda: "Bearer second-token" in sent, "a request with the new token")
    accepted.discard("first-token")
    await create(cluster, SLICES, endpoint_slice("after-rotation"))
    await until(lambda: "after-rotation" in found.objects, "a change after the rotation")
    assert all(h == "Bearer second-token" for h in sent[sent.index("Bearer second-token") :])
    assert "unauthorized" not in stats.watch("test").errors
    assert not any("token" in str(v) for v in stats.watch("test").errors)


async def test_refused_token_is_read_again_after_401(
    cluster: EmulatedCluster, reflector: Running, tmp_path: Path
) -> None:
    token = tmp_path / "token"
    _write_token(token, "stale")
    cluster.server.fault = lambda r: None if r.headers.get("Authorization") == "Bearer new" else 401
    found, stats = await reflector(KubeConfig(server=cluster.url, token_file=str(token)))
    await until(lambda: stats.watch("test").errors.get("unauthorized"), "a 401")
    assert not found.synced
    _write_token(token, "new")
    await until(lambda: found.synced and stats.watch("test").up, "listed with the new token")


async def test_forbidden_then_allowed(cluster: EmulatedCluster, reflector: Running) -> None:
    allowed = {"yes": False}
    cluster.server.fault = lambda request: None if allowed["yes"] else 403
    found, stats = await reflector(KubeConfig(server=cluster.url))
    await until(lambda: stats.watch("test").errors.get("forbidden", 0) >= 2, "403s, retried")
    assert not stats.watch("test").up
    allowed["yes"] = True
    await until(lambda: found.synced and stats.watch("test").up, "listed once allowed")


async def test_unreachable_server_is_retried_with_backoff(reflector: Running) -> None:
    found, stats = await reflector(KubeConfig(server=f"http://127.0.0.1:{free_port()}"))
    await until(lambda: stats.watch("test").errors.get("connection", 0) >= 3, "retries")
    assert not found.synced
    assert not stats.watch("test").up
