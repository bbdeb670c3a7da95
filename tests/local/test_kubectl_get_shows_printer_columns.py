"""``kubectl get`` on the embedded cluster shows the columns a real API server would: a
ModelDeployment's and a RoutingPolicy's printer columns (evaluated with their JSONPath),
pods' READY and STATUS, Deployments' READY, NAME and AGE for the rest. The Table is asked
for with kubectl's own Accept header, and once with kubectl itself where it is installed
(CI installs Debian's ``kubernetes-client`` and sets ``TIERWISE_REQUIRE_KUBECTL=1``)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import urllib.error
import urllib.request
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import kubernetes.client
import pytest

from tierwise.local.cluster import EmulatedCluster
from tierwise.local.tables import human_duration, json_path, table_version
from tierwise.local.testing import deployment, wait_for
from tierwise.local.workloads import FakeBackend

CRDS = sorted((Path(__file__).parents[2] / "crds").glob("*.yaml"))
NS = "printing"
KUBECTL_ACCEPT = (
    "application/json;as=Table;v=v1;g=meta.k8s.io,"
    "application/json;as=Table;v=v1beta1;g=meta.k8s.io,application/json"
)
MD = {
    "apiVersion": "tierwise.dev/v1alpha1",
    "kind": "ModelDeployment",
    "metadata": {"name": "small-llm"},
    "spec": {"model": {"uri": "hf://Qwen/Qwen2.5-1.5B-Instruct"}, "engine": {"name": "vllm"}},
}
RP = {
    "apiVersion": "tierwise.dev/v1alpha1",
    "kind": "RoutingPolicy",
    "metadata": {"name": "tiers"},
    "spec": {"tiers": [{"name": "small", "backends": [{"modelDeployment": "small-llm"}]}]},
}


@pytest.fixture(scope="module")
def cluster() -> Iterator[EmulatedCluster]:
    with EmulatedCluster(workloads=FakeBackend(), namespaces=(NS,)) as running:
        running.install_crd_files(CRDS)
        with running.api_client() as api:
            custom = kubernetes.client.CustomObjectsApi(api)
            custom.create_namespaced_custom_object("tierwise.dev", "v1alpha1", NS,
                                                   "modeldeployments", MD)
            custom.patch_namespaced_custom_object_status(
                "tierwise.dev", "v1alpha1", NS, "modeldeployments", "small-llm",
                {"status": {"readyReplicas": 2, "desiredReplicas": 3, "phase": "Ready"}})
            custom.create_namespaced_custom_object("tierwise.dev", "v1alpha1", NS,
                                                   "routingpolicies", RP)
            custom.patch_namespaced_custom_object_status(
                "tierwise.dev", "v1alpha1", NS, "routingpolicies", "tiers",
                {"status": {"readyTiers": "1/1", "readyRouters": "1/1",
                            "tableVersion": "v-9f2c"}})
            apps = kubernetes.client.AppsV1Api(api)
            apps.create_namespaced_deployment(NS, deployment("web", replicas=2))
            wait_for(lambda: ready(apps.read_namespaced_deployment("web", NS)) == 2,
                     timeout=10, message="web ready")
        yield running


def ready(body: Any) -> int:
    return int(body.status.ready_replicas or 0) if body.status is not None else 0


def get(cluster: EmulatedCluster, path: str, accept: str = KUBECTL_ACCEPT) -> Any:
    request = urllib.request.Request(cluster.url + path, headers={"Accept": accept})
    with urllib.request.urlopen(request, timeout=5) as response:
        return json.loads(response.read())


def columns(table: dict[str, Any]) -> list[str]:
    return [c["name"] for c in table["columnDefinitions"]]


def cells(table: dict[str, Any]) -> dict[str, dict[str, Any]]:
    names = columns(table)
    return {row["cells"][0]: dict(zip(names, row["cells"], strict=True))
            for row in table["rows"]}


def test_model_deployments_list_with_their_printer_columns(cluster: EmulatedCluster) -> None:
    table = get(cluster, f"/apis/tierwise.dev/v1alpha1/namespaces/{NS}/modeldeployments")
    assert table["kind"] == "Table"
    assert table["apiVersion"] == "meta.k8s.io/v1"
    assert columns(table) == ["Name", "Engine", "Model", "Ready", "Desired", "Phase", "Age"]
    row = cells(table)["small-llm"]
    assert row["Engine"] == "vllm"
    assert row["Model"] == "hf://Qwen/Qwen2.5-1.5B-Instruct"
    assert (row["Ready"], row["Desired"], row["Phase"]) == (2, 3, "Ready")
    assert row["Age"].endswith(("s", "m"))
    (raw,) = table["rows"]
    assert raw["object"]["kind"] == "PartialObjectMetadata"
    assert raw["object"]["metadata"]["namespace"] == NS
    assert table["metadata"]["resourceVersion"]


def test_routing_policy_shows_tiers_router_and_table(cluster: EmulatedCluster) -> None:
    table = get(cluster, f"/apis/tierwise.dev/v1alpha1/namespaces/{NS}/routingpolicies/tiers")
    assert columns(table) == ["Name", "Mode", "Tiers", "Router", "Table", "Age"]
    row = cells(table)["tiers"]
    assert (row["Tiers"], row["Router"], row["Table"]) == ("1/1", "1/1", "v-9f2c")
    assert row["Mode"] is None  # spec.router.mode is not set: the server leaves it empty


def test_pods_and_deployments_get_their_usual_columns(cluster: EmulatedCluster) -> None:
    pods = get(cluster, f"/api/v1/namespaces/{NS}/pods")
    assert columns(pods)[:5] == ["Name", "Ready", "Status", "Restarts", "Age"]
    assert [c["priority"] for c in pods["columnDefinitions"]][-2:] == [1, 1]  # -o wide
    assert sorted((r["Ready"], r["Status"]) for r in cells(pods).values()) == [
        ("1/1", "Running"), ("1/1", "Running")]
    deployments = cells(get(cluster, f"/apis/apps/v1/namespaces/{NS}/deployments"))
    assert deployments["web"]["Ready"] == "2/2"
    secrets = get(cluster, f"/api/v1/namespaces/{NS}/configmaps")
    assert columns(secrets) == ["Name", "Age"]


@pytest.mark.parametrize(("include", "kind"), [("Object", "ModelDeployment"), ("None", None)])
def test_include_object_chooses_what_each_row_carries(
    cluster: EmulatedCluster, include: str, kind: str | None
) -> None:
    path = f"/apis/tierwise.dev/v1alpha1/namespaces/{NS}/modeldeployments?includeObject={include}"
    (row,) = get(cluster, path)["rows"]
    assert (row.get("object") or {}).get("kind") == kind


def test_plain_json_clients_still_get_objects(cluster: EmulatedCluster) -> None:
    body = get(cluster, f"/apis/tierwise.dev/v1alpha1/namespaces/{NS}/modeldeployments",
               accept="application/json")
    assert body["kind"] == "ModelDeploymentList"
    assert body["items"][0]["status"]["phase"] == "Ready"


def test_an_unknown_include_object_is_a_bad_request(cluster: EmulatedCluster) -> None:
    with pytest.raises(urllib.error.HTTPError) as caught:
        get(cluster, f"/api/v1/namespaces/{NS}/pods?includeObject=Everything")
    assert caught.value.code == 400
    assert "includeObject must be one of" in caught.value.read().decode()


@pytest.mark.parametrize(
    ("accept", "version"),
    [
        (KUBECTL_ACCEPT, "v1"),
        ("application/json;as=Table;v=v1beta1;g=meta.k8s.io", "v1beta1"),
        ("application/json", None),
        ("application/json;as=Table;v=v2;g=meta.k8s.io", None),
        ("", None),
    ],
)
def test_table_version_follows_the_accept_header(accept: str, version: str | None) -> None:
    assert table_version(accept) == version


@pytest.mark.parametrize(
    ("path", "found"),
    [
        (".status.readyReplicas", [2]),
        (".spec.model.uri", ["hf://ü/模型"]),
        (".status.conditions[?(@.type==\"Ready\")].status", ["True"]),
        (".status.conditions[*].type", ["Ready", "Degraded"]),
        (".status.conditions[-1].reason", ["AsExpected"]),
        ("{.metadata['name']}", ["x"]),
        (".status.missing", []),
        (".status.conditions[7]", []),
    ],
)
def test_json_path_finds_what_printer_columns_name(path: str, found: list[Any]) -> None:
    obj = {"metadata": {"name": "x"}, "spec": {"model": {"uri": "hf://ü/模型"}},
           "status": {"readyReplicas": 2, "conditions": [
               {"type": "Ready", "status": "True"},
               {"type": "Degraded", "status": "False", "reason": "AsExpected"}]}}
    assert json_path(obj, path) == found


def test_json_path_refuses_what_it_cannot_evaluate() -> None:
    with pytest.raises(ValueError, match="unsupported JSONPath"):
        json_path({}, ".items[?(@.a > 1)]")


@pytest.mark.parametrize(
    ("seconds", "text"),
    [(-5, "<invalid>"), (-1, "0s"), (0, "0s"), (119, "119s"), (125, "2m5s"), (600, "10m"),
     (3 * 3600 + 60, "3h1m"), (30 * 3600, "30h"), (3 * 86400 + 3600, "3d1h"),
     (400 * 86400, "400d"), (3 * 365 * 86400, "3y")],
)
def test_ages_read_like_kubectl(seconds: int, text: str) -> None:
    assert human_duration(seconds) == text


def test_date_cells_are_ages_from_now() -> None:
    from tierwise.local.tables import printer_columns, to_table

    now = datetime(2025, 1, 1, tzinfo=UTC)
    created = (now - timedelta(minutes=3, seconds=12)).strftime("%Y-%m-%dT%H:%M:%SZ")
    cols = printer_columns([{"name": "Age", "type": "date", "jsonPath": ".metadata.created"}])
    table = to_table(cols, [{"metadata": {"name": "a", "created": created}}], now=now)
    assert table["rows"][0]["cells"] == ["a", "3m12s"]


def test_kubectl_prints_the_columns(cluster: EmulatedCluster) -> None:
    kubectl = shutil.which("kubectl")
    if kubectl is None:
        if os.environ.get("TIERWISE_REQUIRE_KUBECTL") == "1":
            pytest.fail("TIERWISE_REQUIRE_KUBECTL=1 but kubectl is not installed", pytrace=False)
        pytest.skip("kubectl is not installed (Debian: apt-get install kubernetes-client)")
    base = [kubectl, "--kubeconfig", str(cluster.kubeconfig_path), "-n", NS, "get"]
    md = subprocess.run([*base, "md"], capture_output=True, text=True, timeout=60, check=True)
    header, row = md.stdout.splitlines()
    assert header.split() == ["NAME", "ENGINE", "MODEL", "READY", "DESIRED", "PHASE", "AGE"]
    assert row.split()[:6] == ["small-llm", "vllm", "hf://Qwen/Qwen2.5-1.5B-Instruct", "2", "3",
                               "Ready"]
    rp = subprocess.run([*base, "rp"], capture_output=True, text=True, timeout=60, check=True)
    assert rp.stdout.splitlines()[0].split() == ["NAME", "MODE", "TIERS", "ROUTER", "TABLE", "AGE"]
    pods = subprocess.run([*base, "pods"], capture_output=True, text=True, timeout=60,
                          check=True)
    assert pods.stdout.splitlines()[0].split() == ["NAME", "READY", "STATUS", "RESTARTS", "AGE"]
