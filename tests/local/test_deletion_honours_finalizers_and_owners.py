"""Deletion waits for finalizers, cascades to dependents, and works on collections."""

from __future__ import annotations

from typing import Any

import kubernetes.client
import pytest
from kubernetes.client.exceptions import ApiException

MERGE = "application/merge-patch+json"


def owned_by(owner: Any, name: str) -> dict[str, Any]:
    return {"metadata": {"name": name, "ownerReferences": [{
        "apiVersion": "v1", "kind": "ConfigMap", "name": owner.metadata.name,
        "uid": owner.metadata.uid, "controller": True}]}}


def test_finalizers_hold_deletion_until_removed(core: kubernetes.client.CoreV1Api) -> None:
    core.create_namespaced_config_map("default", {"metadata": {
        "name": "cm", "finalizers": ["tierwise.dev/finalizer"]}})
    core.delete_namespaced_config_map("cm", "default")
    marked = core.read_namespaced_config_map("cm", "default")
    assert marked.metadata.deletion_timestamp is not None
    core.patch_namespaced_config_map("cm", "default", {"metadata": {"finalizers": None}},
                                     _content_type=MERGE)
    with pytest.raises(ApiException) as e:
        core.read_namespaced_config_map("cm", "default")
    assert e.value.status == 404


def test_deleting_an_owner_deletes_its_dependents(core: kubernetes.client.CoreV1Api) -> None:
    owner = core.create_namespaced_config_map("default", {"metadata": {"name": "owner"}})
    child = core.create_namespaced_config_map("default", owned_by(owner, "child"))
    core.create_namespaced_config_map("default", owned_by(child, "grandchild"))
    core.create_namespaced_config_map("default", {"metadata": {"name": "bystander"}})
    core.delete_namespaced_config_map("owner", "default")
    remaining = [cm.metadata.name for cm in core.list_namespaced_config_map("default").items]
    assert remaining == ["bystander"]


def test_orphan_propagation_keeps_dependents(core: kubernetes.client.CoreV1Api) -> None:
    owner = core.create_namespaced_config_map("default", {"metadata": {"name": "owner"}})
    core.create_namespaced_config_map("default", owned_by(owner, "child"))
    core.delete_namespaced_config_map("owner", "default", propagation_policy="Orphan")
    child = core.read_namespaced_config_map("child", "default")
    assert not child.metadata.owner_references


def test_delete_collection_honours_selectors(core: kubernetes.client.CoreV1Api) -> None:
    for name, app in [("a", "x"), ("b", "x"), ("c", "y")]:
        core.create_namespaced_config_map("default", {"metadata": {
            "name": name, "labels": {"app": app}}})
    core.delete_collection_namespaced_config_map("default", label_selector="app=x")
    remaining = [cm.metadata.name for cm in core.list_namespaced_config_map("default").items]
    assert remaining == ["c"]


def test_deleting_a_namespace_deletes_its_contents(core: kubernetes.client.CoreV1Api) -> None:
    core.create_namespace({"metadata": {"name": "team"}})
    core.create_namespaced_config_map("team", {"metadata": {"name": "cm"}})
    core.delete_namespace("team")
    assert core.list_config_map_for_all_namespaces().items == []
