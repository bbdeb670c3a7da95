"""Each PATCH content type has its own semantics; apply creates or merges."""

from __future__ import annotations

from typing import Any

import httpx
import kubernetes.client
import pytest
from kubernetes.client.exceptions import ApiException

from tierwise.local.cluster import EmulatedCluster
from tierwise.local.testing import deployment

JSON_PATCH = "application/json-patch+json"
MERGE = "application/merge-patch+json"
STRATEGIC = "application/strategic-merge-patch+json"
APPLY = "application/apply-patch+yaml"
MD = ("tierwise.dev", "v1alpha1", "default", "modeldeployments")


def test_json_patch_test_failure_is_422(core: kubernetes.client.CoreV1Api) -> None:
    created = core.create_namespaced_config_map("default", {"metadata": {"name": "cm"}})
    version = created.metadata.resource_version
    ok = [{"op": "test", "path": "/metadata/resourceVersion", "value": version},
          {"op": "add", "path": "/metadata/finalizers", "value": ["tierwise.dev/finalizer"]}]
    patched = core.patch_namespaced_config_map("cm", "default", ok, _content_type=JSON_PATCH)
    assert patched.metadata.finalizers == ["tierwise.dev/finalizer"]
    with pytest.raises(ApiException) as e:  # the same test again: the version has moved on
        core.patch_namespaced_config_map("cm", "default", ok, _content_type=JSON_PATCH)
    assert e.value.status == 422


def test_merge_patch_with_a_stale_resource_version_is_409(
    core: kubernetes.client.CoreV1Api,
) -> None:
    created = core.create_namespaced_config_map("default", {"metadata": {"name": "cm"}})
    core.patch_namespaced_config_map("cm", "default", {"data": {"a": "1"}}, _content_type=MERGE)
    stale = {"metadata": {"resourceVersion": created.metadata.resource_version},
             "data": {"b": "2"}}
    with pytest.raises(ApiException) as e:
        core.patch_namespaced_config_map("cm", "default", stale, _content_type=MERGE)
    assert e.value.status == 409


def test_merge_patch_null_deletes_a_key(core: kubernetes.client.CoreV1Api) -> None:
    core.create_namespaced_config_map("default", {"metadata": {"name": "cm"},
                                                  "data": {"a": "1", "b": "2"}})
    patched = core.patch_namespaced_config_map("cm", "default", {"data": {"a": None}},
                                               _content_type=MERGE)
    assert patched.data == {"b": "2"}


def test_strategic_merge_merges_containers_by_name(apps: kubernetes.client.AppsV1Api) -> None:
    body = deployment("web")
    body["spec"]["template"]["spec"]["containers"].append({"name": "sidecar", "image": "s:1"})
    apps.create_namespaced_deployment("default", body)
    patch = {"spec": {"template": {"spec": {"containers": [{"name": "engine", "image": "e:2"}]}}}}
    patched = apps.patch_namespaced_deployment("web", "default", patch, _content_type=STRATEGIC)
    images = {c.name: c.image for c in patched.spec.template.spec.containers}
    assert images == {"engine": "e:2", "sidecar": "s:1"}


def test_strategic_merge_on_a_custom_resource_is_415(
    custom: kubernetes.client.CustomObjectsApi, crd: dict[str, Any], cluster: EmulatedCluster,
) -> None:
    custom.create_namespaced_custom_object(*MD, {"metadata": {"name": "m"}, "spec": {}})
    with httpx.Client(base_url=cluster.url) as client:
        response = client.patch(
            "/apis/tierwise.dev/v1alpha1/namespaces/default/modeldeployments/m",
            json={"spec": {"a": 1}}, headers={"Content-Type": STRATEGIC})
    assert response.status_code == 415


def test_server_side_apply_creates_then_merges_then_is_idempotent(
    apps: kubernetes.client.AppsV1Api,
) -> None:
    body = deployment("engine", replicas=2)
    created = apps.patch_namespaced_deployment("engine", "default", body,
                                               field_manager="tierwise", _content_type=APPLY)
    assert created.spec.replicas == 2
    assert created.metadata.generation == 1
    again = apps.patch_namespaced_deployment("engine", "default", body,
                                             field_manager="tierwise", _content_type=APPLY)
    assert again.metadata.resource_version == created.metadata.resource_version
    apps.patch_namespaced_deployment("engine", "default", {"metadata": {"labels": {"x": "y"}}},
                                     _content_type=MERGE)
    body["spec"]["replicas"] = 3
    merged = apps.patch_namespaced_deployment("engine", "default", body,
                                              field_manager="tierwise", _content_type=APPLY)
    assert merged.spec.replicas == 3
    assert merged.metadata.labels == {"app": "engine", "x": "y"}  # fields it does not apply stay
    assert merged.metadata.generation == 2


def test_apply_without_field_manager_is_400(cluster: EmulatedCluster) -> None:
    with httpx.Client(base_url=cluster.url) as client:
        response = client.patch("/api/v1/namespaces/default/configmaps/cm",
                                content="metadata:\n  name: cm\n",
                                headers={"Content-Type": APPLY})
    assert response.status_code == 400


def test_apply_accepts_yaml_bodies(cluster: EmulatedCluster) -> None:
    with httpx.Client(base_url=cluster.url) as client:
        response = client.patch(
            "/api/v1/namespaces/default/configmaps/cm?fieldManager=tierwise",
            content="apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: cm\ndata:\n  a: '1'\n",
            headers={"Content-Type": APPLY})
        assert response.status_code in (200, 201)
        assert client.get("/api/v1/namespaces/default/configmaps/cm").json()["data"] == {"a": "1"}


def test_scale_subresource_reads_and_writes_replicas(apps: kubernetes.client.AppsV1Api) -> None:
    apps.create_namespaced_deployment("default", deployment("web", replicas=1))
    scale = apps.read_namespaced_deployment_scale("web", "default")
    assert scale.spec.replicas == 1
    assert scale.status.selector == "app=web"
    apps.patch_namespaced_deployment_scale("web", "default", {"spec": {"replicas": 4}},
                                           _content_type=MERGE)
    assert apps.read_namespaced_deployment("web", "default").spec.replicas == 4
    apps.replace_namespaced_deployment_scale("web", "default", {
        "metadata": {"name": "web", "namespace": "default"}, "spec": {"replicas": 2}})
    assert apps.read_namespaced_deployment("web", "default").spec.replicas == 2


def test_custom_resource_scale_uses_the_crd_paths(
    custom: kubernetes.client.CustomObjectsApi, crd: dict[str, Any],
) -> None:
    custom.create_namespaced_custom_object(*MD, {"metadata": {"name": "m"},
                                                 "spec": {"replicas": 1}})
    custom.patch_namespaced_custom_object_scale(*MD, "m", {"spec": {"replicas": 3}},
                                                _content_type=MERGE)
    obj = custom.get_namespaced_custom_object(*MD, "m")
    assert obj["spec"]["replicas"] == 3
    assert obj["metadata"]["generation"] == 2
