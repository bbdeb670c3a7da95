"""Objects get what a real API server assigns: namespace from the URL, uid, versions."""

from __future__ import annotations

from typing import Any

import httpx
import kubernetes.client
import pytest
from kubernetes.client.exceptions import ApiException

from tierwise.local.cluster import EmulatedCluster

MERGE = "application/merge-patch+json"


def test_create_without_namespace_in_body_lands_in_the_url_namespace(
    core: kubernetes.client.CoreV1Api,
) -> None:
    core.create_namespaced_config_map("default", {"metadata": {"name": "cm"}, "data": {"a": "1"}})
    listed = core.list_namespaced_config_map("default").items
    assert [cm.metadata.name for cm in listed] == ["cm"]
    assert listed[0].metadata.namespace == "default"


def test_server_assigns_uid_version_generation_and_timestamp(
    core: kubernetes.client.CoreV1Api,
) -> None:
    first = core.create_namespaced_config_map("default", {"metadata": {"name": "a"}})
    second = core.create_namespaced_config_map("default", {"metadata": {"name": "b"}})
    assert first.metadata.uid
    assert second.metadata.uid != first.metadata.uid
    assert int(second.metadata.resource_version) > int(first.metadata.resource_version)
    assert first.metadata.generation == 1
    assert first.metadata.creation_timestamp is not None


def test_generation_bumps_on_spec_changes_only(
    custom: kubernetes.client.CustomObjectsApi, crd: dict[str, Any],
) -> None:
    args = ("tierwise.dev", "v1alpha1", "default", "modeldeployments")
    custom.create_namespaced_custom_object(*args, {
        "apiVersion": "tierwise.dev/v1alpha1", "kind": "ModelDeployment",
        "metadata": {"name": "m"}, "spec": {"replicas": 1}})
    labelled = custom.patch_namespaced_custom_object(
        *args, "m", {"metadata": {"labels": {"x": "y"}}}, _content_type=MERGE)
    assert labelled["metadata"]["generation"] == 1
    status = custom.patch_namespaced_custom_object_status(
        *args, "m", {"status": {"phase": "Ready"}}, _content_type=MERGE)
    assert status["metadata"]["generation"] == 1
    assert status["status"] == {"phase": "Ready"}
    spec = custom.patch_namespaced_custom_object(
        *args, "m", {"spec": {"replicas": 2}}, _content_type=MERGE)
    assert spec["metadata"]["generation"] == 2
    assert spec["status"] == {"phase": "Ready"}  # the main resource cannot drop status


def test_status_in_the_main_resource_is_ignored(
    custom: kubernetes.client.CustomObjectsApi, crd: dict[str, Any],
) -> None:
    args = ("tierwise.dev", "v1alpha1", "default", "modeldeployments")
    created = custom.create_namespaced_custom_object(*args, {
        "metadata": {"name": "m"}, "spec": {}, "status": {"phase": "Fake"}})
    assert "status" not in created
    patched = custom.patch_namespaced_custom_object(
        *args, "m", {"status": {"phase": "Fake"}}, _content_type=MERGE)
    assert "status" not in patched


def test_generate_name_makes_unique_names(core: kubernetes.client.CoreV1Api) -> None:
    body = {"metadata": {"generateName": "ev-"}, "involvedObject": {"name": "x"}, "reason": "R"}
    names = {core.create_namespaced_event("default", body).metadata.name for _ in range(5)}
    assert len(names) == 5
    assert all(name.startswith("ev-") and len(name) == len("ev-") + 5 for name in names)


def test_duplicate_create_is_409(core: kubernetes.client.CoreV1Api) -> None:
    core.create_namespaced_config_map("default", {"metadata": {"name": "cm"}})
    with pytest.raises(ApiException) as e:
        core.create_namespaced_config_map("default", {"metadata": {"name": "cm"}})
    assert e.value.status == 409


def test_create_in_a_missing_namespace_is_404(core: kubernetes.client.CoreV1Api) -> None:
    with pytest.raises(ApiException) as e:
        core.create_namespaced_config_map("nowhere", {"metadata": {"name": "cm"}})
    assert e.value.status == 404


def test_put_replaces_the_whole_object(core: kubernetes.client.CoreV1Api) -> None:
    core.create_namespaced_config_map("default", {"metadata": {"name": "cm"},
                                                  "data": {"a": "1", "b": "2"}})
    replaced = core.replace_namespaced_config_map("cm", "default", {
        "metadata": {"name": "cm"}, "data": {"c": "3"}})
    assert replaced.data == {"c": "3"}
    assert core.read_namespaced_config_map("cm", "default").data == {"c": "3"}


def test_put_with_a_stale_resource_version_is_409(core: kubernetes.client.CoreV1Api) -> None:
    created = core.create_namespaced_config_map("default", {"metadata": {"name": "cm"}})
    core.patch_namespaced_config_map("cm", "default", {"data": {"a": "1"}}, _content_type=MERGE)
    stale = {"metadata": {"name": "cm", "resourceVersion": created.metadata.resource_version}}
    with pytest.raises(ApiException) as e:
        core.replace_namespaced_config_map("cm", "default", stale)
    assert e.value.status == 409


def test_dry_run_changes_nothing(core: kubernetes.client.CoreV1Api) -> None:
    core.create_namespaced_config_map("default", {"metadata": {"name": "cm"}}, dry_run="All")
    assert core.list_namespaced_config_map("default").items == []


def test_a_noop_update_keeps_the_resource_version(core: kubernetes.client.CoreV1Api) -> None:
    created = core.create_namespaced_config_map("default", {"metadata": {"name": "cm"},
                                                            "data": {"a": "1"}})
    patched = core.patch_namespaced_config_map("cm", "default", {"data": {"a": "1"}},
                                               _content_type=MERGE)
    assert patched.metadata.resource_version == created.metadata.resource_version


def test_unknown_resources_and_objects_are_404(cluster: EmulatedCluster) -> None:
    with httpx.Client(base_url=cluster.url) as client:
        assert client.get("/apis/nope.dev/v1/things").status_code == 404
        missing = client.get("/api/v1/namespaces/default/pods/missing")
        assert missing.status_code == 404
        assert missing.json()["reason"] == "NotFound"
