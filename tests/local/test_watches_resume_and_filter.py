"""Watches honour resourceVersion, lose nothing, filter by selectors and bookmark."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import aiohttp
import kubernetes.client
import pytest

from tierwise.local.cluster import EmulatedCluster

CONFIGMAPS = "/api/v1/namespaces/default/configmaps"


async def collect(cluster: EmulatedCluster, path: str, *, count: int,
                  within: float = 5.0, **params: str) -> list[dict[str, Any]]:
    """Read ``count`` events from a watch (or fewer, if the stream ends)."""
    events: list[dict[str, Any]] = []
    async with aiohttp.ClientSession() as session:
        query = {"watch": "true", **params}
        async with session.get(cluster.url + path, params=query) as response:
            assert response.content_type == "application/json"
            async with asyncio.timeout(within):
                async for line in response.content:
                    if line.strip():
                        events.append(json.loads(line))
                    if len(events) >= count:
                        break
    return events


def names(events: list[dict[str, Any]]) -> list[tuple[str, str]]:
    return [(e["type"], e["object"]["metadata"].get("name", "")) for e in events]


async def test_watch_from_a_version_sends_only_later_events(
    cluster: EmulatedCluster, core: kubernetes.client.CoreV1Api,
) -> None:
    core.create_namespaced_config_map("default", {"metadata": {"name": "old"}})
    version = core.list_namespaced_config_map("default").metadata.resource_version
    core.create_namespaced_config_map("default", {"metadata": {"name": "new"}})
    core.delete_namespaced_config_map("old", "default")
    events = await collect(cluster, CONFIGMAPS, count=2, resourceVersion=version)
    assert names(events) == [("ADDED", "new"), ("DELETED", "old")]


async def test_watch_without_a_version_starts_with_the_current_state(
    cluster: EmulatedCluster, core: kubernetes.client.CoreV1Api,
) -> None:
    core.create_namespaced_config_map("default", {"metadata": {"name": "a"}})
    events = await collect(cluster, CONFIGMAPS, count=1)
    assert names(events) == [("ADDED", "a")]


async def test_no_event_is_lost_right_after_a_watch_starts(
    cluster: EmulatedCluster, api: kubernetes.client.ApiClient,
) -> None:
    core = kubernetes.client.CoreV1Api(api)
    watching = asyncio.create_task(collect(cluster, CONFIGMAPS, count=20))
    await asyncio.sleep(0)  # the watch connects while the objects are being created
    for index in range(20):
        await asyncio.to_thread(core.create_namespaced_config_map, "default",
                                {"metadata": {"name": f"cm{index}"}})
    events = await watching
    assert sorted(n for _, n in names(events)) == sorted(f"cm{i}" for i in range(20))
    assert len({n for _, n in names(events)}) == 20  # and none twice


async def test_label_and_field_selectors_filter_lists_and_watches(
    cluster: EmulatedCluster, core: kubernetes.client.CoreV1Api,
) -> None:
    for name, tier in [("a", "small"), ("b", "large"), ("c", "small")]:
        core.create_namespaced_config_map(
            "default", {"metadata": {"name": name, "labels": {"tier": tier}}})
    listed = core.list_namespaced_config_map("default", label_selector="tier=small")
    assert [cm.metadata.name for cm in listed.items] == ["a", "c"]
    listed = core.list_namespaced_config_map("default", label_selector="tier in (large),!x")
    assert [cm.metadata.name for cm in listed.items] == ["b"]
    listed = core.list_config_map_for_all_namespaces(field_selector="metadata.name=c")
    assert [cm.metadata.name for cm in listed.items] == ["c"]
    listed = core.list_config_map_for_all_namespaces(field_selector="metadata.namespace!=default")
    assert listed.items == []
    events = await collect(cluster, CONFIGMAPS, count=2, labelSelector="tier=small")
    assert names(events) == [("ADDED", "a"), ("ADDED", "c")]
    events = await collect(cluster, CONFIGMAPS, count=1, fieldSelector="metadata.name=b")
    assert names(events) == [("ADDED", "b")]


async def test_an_object_leaving_a_selector_is_deleted_for_the_watcher(
    cluster: EmulatedCluster, core: kubernetes.client.CoreV1Api,
) -> None:
    created = core.create_namespaced_config_map(
        "default", {"metadata": {"name": "a", "labels": {"tier": "small"}}})
    core.patch_namespaced_config_map("a", "default", {"metadata": {"labels": {"tier": "big"}}},
                                     _content_type="application/merge-patch+json")
    events = await collect(cluster, CONFIGMAPS, count=1, labelSelector="tier=small",
                           resourceVersion=created.metadata.resource_version)
    assert names(events) == [("DELETED", "a")]


async def test_bookmarks_and_initial_events_end(cluster: EmulatedCluster) -> None:
    events = await collect(cluster, CONFIGMAPS, count=2, allowWatchBookmarks="true",
                           sendInitialEvents="true", resourceVersionMatch="NotOlderThan")
    assert [e["type"] for e in events] == ["BOOKMARK", "BOOKMARK"]
    annotations = events[0]["object"]["metadata"]["annotations"]
    assert annotations == {"k8s.io/initial-events-end": "true"}


async def test_server_side_timeout_ends_the_stream(cluster: EmulatedCluster) -> None:
    events = await collect(cluster, CONFIGMAPS, count=100, timeoutSeconds="1")
    assert events == []


async def test_a_too_old_version_is_410(cluster: EmulatedCluster) -> None:
    cluster.server.log.limit = 4
    await asyncio.to_thread(_create_many, cluster, 10)
    events = await collect(cluster, CONFIGMAPS, count=1, resourceVersion="1")
    assert events[0]["type"] == "ERROR"
    assert events[0]["object"]["code"] == 410


def _create_many(cluster: EmulatedCluster, count: int) -> None:
    with cluster.api_client() as api:
        core = kubernetes.client.CoreV1Api(api)
        for index in range(count):
            core.create_namespaced_config_map("default", {"metadata": {"name": f"cm{index}"}})


@pytest.mark.parametrize("selector", ["a b", "tier in (a", "==x"])
def test_malformed_selectors_are_400(core: kubernetes.client.CoreV1Api, selector: str) -> None:
    with pytest.raises(kubernetes.client.exceptions.ApiException) as e:
        core.list_namespaced_config_map("default", label_selector=selector)
    assert e.value.status == 400


async def test_namespaces_can_be_watched(
    cluster: EmulatedCluster, core: kubernetes.client.CoreV1Api,
) -> None:
    version = core.list_namespace().metadata.resource_version
    core.create_namespace({"metadata": {"name": "team"}})
    events = await collect(cluster, "/api/v1/namespaces", count=1, resourceVersion=version)
    assert names(events) == [("ADDED", "team")]
