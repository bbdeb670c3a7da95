"""Discovery answers like an API server, and a POSTed CRD makes its kind servable."""

from __future__ import annotations

from typing import Any

import httpx
import kubernetes.client
import pytest
from kubernetes.client.exceptions import ApiException

from tierwise.local.cluster import EmulatedCluster
from tierwise.local.testing import model_deployment_crd


@pytest.fixture
def http(cluster: EmulatedCluster) -> Any:
    with httpx.Client(base_url=cluster.url) as client:
        yield client


def test_core_group_version_is_v1(http: httpx.Client) -> None:
    body = http.get("/api/v1").json()
    assert body["groupVersion"] == "v1"
    names = {r["name"]: r for r in body["resources"]}
    assert {"namespaces", "pods", "services", "endpoints", "events", "configmaps",
            "secrets", "pods/status"} <= set(names)
    assert names["namespaces"]["namespaced"] is False
    assert {"list", "watch", "patch"} <= set(names["pods"]["verbs"])


def test_apis_lists_the_groups(http: httpx.Client) -> None:
    groups = {g["name"] for g in http.get("/apis").json()["groups"]}
    assert {"apps", "policy", "coordination.k8s.io", "monitoring.coreos.com",
            "apiextensions.k8s.io", "events.k8s.io"} <= groups


def test_deployments_have_status_and_scale(http: httpx.Client) -> None:
    body = http.get("/apis/apps/v1").json()
    kinds = {r["name"]: r["kind"] for r in body["resources"]}
    assert kinds["deployments/status"] == "Deployment"
    assert kinds["deployments/scale"] == "Scale"


def test_namespaces_are_listable_objects(core: kubernetes.client.CoreV1Api) -> None:
    core.create_namespace({"metadata": {"name": "team-a"}})
    names = {ns.metadata.name for ns in core.list_namespace().items}
    assert names == {"default", "team-a"}
    assert core.read_namespace("team-a").status.phase == "Active"


def test_posting_a_crd_registers_its_kind(
    cluster: EmulatedCluster, http: httpx.Client, api: kubernetes.client.ApiClient,
) -> None:
    assert http.get("/apis/tierwise.dev/v1alpha1").status_code == 404
    created = kubernetes.client.ApiextensionsV1Api(api).create_custom_resource_definition(
        model_deployment_crd())
    assert {c.type for c in created.status.conditions} >= {"Established"}
    resources = {r["name"]: r for r in http.get("/apis/tierwise.dev/v1alpha1").json()["resources"]}
    assert resources["modeldeployments"]["kind"] == "ModelDeployment"
    assert resources["modeldeployments"]["shortNames"] == ["md"]
    assert {"modeldeployments/status", "modeldeployments/scale"} <= set(resources)
    custom = kubernetes.client.CustomObjectsApi(api)
    custom.create_namespaced_custom_object("tierwise.dev", "v1alpha1", "default",
                                           "modeldeployments", {"metadata": {"name": "m"}})
    assert http.get("/apis/tierwise.dev/v1alpha1/namespaces/default/modeldeployments/m").is_success


def test_deleting_a_crd_unregisters_its_kind(
    http: httpx.Client, api: kubernetes.client.ApiClient, crd: dict[str, Any],
) -> None:
    kubernetes.client.ApiextensionsV1Api(api).delete_custom_resource_definition(
        crd["metadata"]["name"])
    assert http.get("/apis/tierwise.dev/v1alpha1").status_code == 404
    with pytest.raises(ApiException) as e:
        kubernetes.client.CustomObjectsApi(api).list_namespaced_custom_object(
            "tierwise.dev", "v1alpha1", "default", "modeldeployments")
    assert e.value.status == 404


def test_crd_files_install_through_the_cluster(cluster: EmulatedCluster, tmp_path: Any) -> None:
    import yaml

    path = tmp_path / "crd.yaml"
    path.write_text(yaml.safe_dump(model_deployment_crd()))
    installed = cluster.install_crd_files([path])
    assert [crd["metadata"]["name"] for crd in installed] == ["modeldeployments.tierwise.dev"]
