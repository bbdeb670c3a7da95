"""``/openapi/v3`` publishes each CRD's schema, so ``kubectl explain md.spec`` works on the
embedded cluster (the kubectl check runs where kubectl is installed; CI sets
``TIERWISE_REQUIRE_KUBECTL=1``)."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import httpx
import kubernetes.client
import pytest
import yaml

from tierwise.local.cluster import EmulatedCluster

CRDS = sorted((Path(__file__).parents[2] / "crds").glob("*.yaml"))


def test_the_index_links_each_crd_group_version_to_its_schemas(cluster: EmulatedCluster) -> None:
    cluster.install_crd_files(CRDS)
    with httpx.Client(base_url=cluster.url) as http:
        index = http.get("/openapi/v3").json()["paths"]
        assert list(index) == ["apis/tierwise.dev/v1alpha1"]
        doc = http.get(index["apis/tierwise.dev/v1alpha1"]["serverRelativeURL"]).json()
        assert http.get("/openapi/v3/apis/nothing.dev/v1").status_code == 404
    schema = doc["components"]["schemas"]["dev.tierwise.v1alpha1.ModelDeployment"]
    assert schema["x-kubernetes-group-version-kind"] == [
        {"group": "tierwise.dev", "version": "v1alpha1", "kind": "ModelDeployment"}
    ]
    crd = yaml.safe_load((CRDS[0].parent / "modeldeployments.tierwise.dev.yaml").read_text())
    served = crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
    assert schema["properties"]["spec"] == served["properties"]["spec"]
    get = doc["paths"]["/apis/tierwise.dev/v1alpha1/namespaces/{namespace}/modeldeployments/{name}"]
    assert get["get"]["x-kubernetes-group-version-kind"]["kind"] == "ModelDeployment"


def test_a_deleted_crd_leaves_the_index(cluster: EmulatedCluster) -> None:
    cluster.install_crd_files(CRDS)
    with cluster.api_client() as api:
        kubernetes.client.ApiextensionsV1Api(api).delete_custom_resource_definition(
            "routingpolicies.tierwise.dev"
        )
    doc = httpx.get(f"{cluster.url}/openapi/v3/apis/tierwise.dev/v1alpha1").json()
    assert set(doc["components"]["schemas"]) == {"dev.tierwise.v1alpha1.ModelDeployment"}


def test_kubectl_explain_describes_a_field_of_a_custom_resource(cluster: EmulatedCluster) -> None:
    kubectl = shutil.which("kubectl")
    if kubectl is None:
        if os.environ.get("TIERWISE_REQUIRE_KUBECTL") == "1":
            pytest.fail("TIERWISE_REQUIRE_KUBECTL=1 but kubectl is not installed", pytrace=False)
        pytest.skip("kubectl is not installed (Debian: apt-get install kubernetes-client)")
    cluster.install_crd_files(CRDS)
    explained = subprocess.run(
        [kubectl, "--kubeconfig", str(cluster.kubeconfig_path), "explain", "md.spec.replicas"],
        capture_output=True, text=True, timeout=60, check=True,
    ).stdout  # fmt: skip
    assert "KIND:       ModelDeployment" in explained
    assert "FIELD: replicas <Object>" in explained
    for field in ("min", "max", "target"):
        assert f"  {field}\t<integer>" in explained
