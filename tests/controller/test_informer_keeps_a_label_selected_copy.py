"""The informer holds exactly the labelled objects, follows changes, and recovers a watch
whose position the server no longer has (410 Gone) with one LIST.

Against the emulated API server (real LIST and WATCH semantics, selectors applied on the
server). Wall time about 3 s.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping
from typing import Any

import httpx

from tierwise.controller.cluster_view import watch_scope
from tierwise.controller.informer import Informer, newer_or_same
from tierwise.controller.kube import KubeClient, load_config
from tierwise.controller.resources import CONFIG_MAP
from tierwise.local.cluster import EmulatedCluster

LABEL = "tierwise.dev/model-deployment"
PATH = "/api/v1/namespaces/models/configmaps"


def _map(name: str, labelled: bool, value: str = "1") -> dict[str, Any]:
    labels = {LABEL: name} if labelled else {"team": "other"}
    return {"metadata": {"name": name, "labels": labels}, "data": {"v": value}}


async def _until(check: Callable[[], bool], within: float = 5.0) -> None:
    async with asyncio.timeout(within):
        for _ in iter(check, True):  # polls: the informer has no change notification
            await asyncio.sleep(0.02)


async def test_only_labelled_objects_are_held_and_changes_are_followed(
    cluster: EmulatedCluster,
) -> None:
    seen: list[tuple[str, str]] = []

    def changed(event: str, obj: Mapping[str, Any]) -> None:
        seen.append((event, obj["metadata"]["name"]))

    async with httpx.AsyncClient(base_url=cluster.url) as http:
        await http.post(PATH, json=_map("before", True))
        await http.post(PATH, json=_map("unrelated", False))
        async with KubeClient(load_config(str(cluster.kubeconfig_path))) as kube:
            informer = Informer(
                kube, CONFIG_MAP, selector=LABEL, namespaces=("models",), index=(LABEL,),
                on_change=changed,
            )  # fmt: skip
            informer.start()
            await asyncio.wait_for(informer.synced(), 5)
            assert set(informer.objects) == {("models", "before")}
            assert seen == [], "the first listing is the starting state, not changes"

            await http.post(PATH, json=_map("after", True))
            await http.post(PATH, json=_map("noise", False))
            patch = {"data": {"v": "2"}}
            headers = {"Content-Type": "application/merge-patch+json"}
            await http.patch(f"{PATH}/before", json=patch, headers=headers)
            await http.delete(f"{PATH}/after")
            await _until(lambda: ("DELETED", "after") in seen)
            assert seen == [("ADDED", "after"), ("MODIFIED", "before"), ("DELETED", "after")]
            held = informer.get("models", "before")
            assert held is not None
            assert held["data"] == {"v": "2"}
            assert [o["metadata"]["name"] for o in informer.select("models", {LABEL: "before"})]
            assert informer.select("models", {LABEL: "noise"}) == []
            assert (informer.lists, kube.reads[("get", "ConfigMap")]) == (1, 0)
            await informer.close()


async def test_a_watch_too_old_to_resume_lists_again_and_reports_what_it_missed(
    cluster: EmulatedCluster,
) -> None:
    seen: list[tuple[str, str]] = []
    away = {"on": False}

    def refuse_watches(request: Any) -> int | None:
        return 503 if away["on"] and request.params.get("watch") == "true" else None

    cluster.server.fault = refuse_watches
    cluster.server.log.limit = 4  # a tiny change log: resuming soon becomes impossible
    async with httpx.AsyncClient(base_url=cluster.url) as http:
        await http.post(PATH, json=_map("kept", True))
        await http.post(PATH, json=_map("dropped", True))
        async with KubeClient(load_config(str(cluster.kubeconfig_path))) as kube:
            informer = Informer(
                kube, CONFIG_MAP, selector=LABEL, namespaces=("models",), watch_timeout_s=1,
                on_change=lambda e, o: seen.append((e, o["metadata"]["name"])),
            )  # fmt: skip
            informer.start()
            await asyncio.wait_for(informer.synced(), 5)
            away["on"] = True
            await asyncio.sleep(1.5)  # the open watch ends; resuming it is refused ...
            await http.delete(f"{PATH}/dropped")
            for index in range(10):  # ... while the log moves on
                await http.post(PATH, json=_map(f"other-{index}", False))
            await http.post(PATH, json=_map("new", True))
            away["on"] = False
            await _until(lambda: ("models", "new") in informer.objects, within=10)
            assert set(informer.objects) == {("models", "kept"), ("models", "new")}
            assert sorted(seen) == [("ADDED", "new"), ("DELETED", "dropped")]
            assert informer.lists == 2, "one LIST at start, one after 410 Gone"
            await informer.close()


def test_an_older_resource_version_never_replaces_a_newer_one() -> None:
    def at(version: str) -> dict[str, Any]:
        return {"metadata": {"resourceVersion": version}}

    assert newer_or_same(at("12"), at("9"))
    assert not newer_or_same(at("9"), at("12"))
    assert newer_or_same(at("9"), None)
    assert newer_or_same(at("opaque"), at("12"))


def test_namespace_patterns_are_watched_cluster_wide() -> None:
    assert watch_scope(["models", "default"]) == ("models", "default")
    assert watch_scope(["team-*", "models"]) == ()
    assert watch_scope(["!kube-system"]) == ()
    assert watch_scope([]) == ()


async def test_managed_fields_are_held_only_where_asked(cluster: EmulatedCluster) -> None:
    """Ownership records are dropped from held copies unless a reader needs them; a
    re-listing of an unchanged object is then still no change."""
    seen: list[tuple[str, str]] = []
    async with httpx.AsyncClient(base_url=cluster.url) as http:
        await http.post(PATH, json=_map("owned", True))
        async with KubeClient(load_config(str(cluster.kubeconfig_path))) as kube:
            trimmed, full = (
                Informer(
                    kube,
                    CONFIG_MAP,
                    selector=LABEL,
                    namespaces=("models",),
                    on_change=lambda event, obj: seen.append((event, obj["metadata"]["name"])),
                    keep_managed_fields=keep,
                )
                for keep in (False, True)
            )
            for informer in (trimmed, full):
                informer.start()
                await asyncio.wait_for(informer.synced(), 5)
            held_full = full.get("models", "owned")
            held_trimmed = trimmed.get("models", "owned")
            assert held_full is not None
            assert held_trimmed is not None
            assert held_full["metadata"]["managedFields"], "the emulator records the create"
            assert "managedFields" not in held_trimmed["metadata"]
            assert {k: v for k, v in held_full["metadata"].items() if k != "managedFields"} == (
                held_trimmed["metadata"]
            )
            listed = await kube.list(CONFIG_MAP, "models", label_selector=LABEL)
            trimmed._replace("models", listed, initial=False)
            assert seen == []
            for informer in (trimmed, full):
                await informer.close()
