"""What the chart renders, applied to the embedded cluster as Argo CD would apply it (helm
template, then server-side apply), gives a working operator: the cluster's kubelet runs the
chart's own operator pod as a real ``tierwise operator`` process (its args, its env from the
chart's ConfigMap, its webhook certificate from the chart's Secret, the peering object the
chart creates), and that operator reconciles the first example with the chart's default
engine image, answers its liveness probe and metrics, and refuses a bad spec at admission
over the chart's certificate. Then a cluster-aware render for an upgrade (Helm's ``lookup``
against the cluster) keeps the webhook certificate the first install generated."""

from __future__ import annotations

import base64
import json
import ssl
import urllib.request
from collections.abc import Iterator
from typing import Any

import helm_python as helm
import kubernetes.client
import pytest
import yaml

from chart_support import CHART, NAMESPACE, RELEASE, REPO, chart_crds, find, render
from operator_scenario import post_tls
from tierwise.local.cluster import EmulatedCluster
from tierwise.local.processes import free_port
from tierwise.local.sim_workloads import SimWorkloadBackend
from tierwise.local.testing import wait_for

EXAMPLE = REPO / "examples" / "01-small-vllm" / "modeldeployment.yaml"
ENGINE_IMAGE = "mirror.example/vllm/vllm-openai:v0.10.2"
_CLUSTER_SCOPED = {
    "ClusterRole", "ClusterRoleBinding", "CustomResourceDefinition", "ClusterKopfPeering",
    "ValidatingWebhookConfiguration", "MutatingWebhookConfiguration", "Namespace",
}  # fmt: skip


def _path(obj: dict[str, Any]) -> str:
    group_version = obj["apiVersion"]
    root = f"/api/{group_version}" if "/" not in group_version else f"/apis/{group_version}"
    plural = obj["kind"].lower()
    plural = plural[:-1] + "ies" if plural.endswith("y") else plural + "s"
    meta = obj["metadata"]
    if obj["kind"] in _CLUSTER_SCOPED:
        return f"{root}/{plural}/{meta['name']}"
    return f"{root}/namespaces/{meta.get('namespace', NAMESPACE)}/{plural}/{meta['name']}"


def _apply(cluster: EmulatedCluster, obj: dict[str, Any]) -> None:
    request = urllib.request.Request(
        f"{cluster.url}{_path(obj)}?fieldManager=argocd-controller&force=true",
        data=json.dumps(obj).encode(),
        headers={"Content-Type": "application/apply-patch+yaml"},
        method="PATCH",
    )
    with urllib.request.urlopen(request, timeout=10) as answer:
        assert answer.status in (200, 201)


@pytest.fixture(scope="module")
def installed() -> Iterator[tuple[EmulatedCluster, dict[str, int], list[dict[str, Any]]]]:
    ports = {"health": free_port(), "metrics": free_port(), "webhook": free_port()}
    values = {
        "operator": {
            "replicas": 1,
            "ports": ports,
            "engineImages": {"vllm": ENGINE_IMAGE},
            "logFormat": "text",
        }
    }
    objects = render(values)
    with EmulatedCluster(workloads=SimWorkloadBackend(), namespaces=(NAMESPACE, "apps")) as cluster:
        cluster.install_crds(chart_crds())
        cluster.install_crds([o for o in objects if o["kind"] == "CustomResourceDefinition"])
        for obj in objects:
            if obj["kind"] != "CustomResourceDefinition":
                _apply(cluster, obj)
        yield cluster, ports, objects


def _deployment(api: kubernetes.client.ApiClient, namespace: str, name: str) -> Any:
    found = kubernetes.client.AppsV1Api(api).list_namespaced_deployment(
        namespace, field_selector=f"metadata.name={name}"
    )
    return found.items[0] if found.items else None


def _get(url: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, timeout=2) as answer:
            return int(answer.status), answer.read().decode()
    except OSError:
        return 0, ""


def test_the_charts_operator_pod_reconciles_the_first_example(
    installed: tuple[EmulatedCluster, dict[str, int], list[dict[str, Any]]],
) -> None:
    cluster, ports, _ = installed
    with cluster.api_client() as api:
        def operator_ready() -> bool:
            deployment = _deployment(api, NAMESPACE, "tierwise-operator")
            status = deployment.status if deployment is not None else None
            return bool(status and (status.ready_replicas or 0) == 1)

        wait_for(operator_ready, timeout=60, message="the chart's operator pod runs")
        wait_for(lambda: _get(f"http://127.0.0.1:{ports['health']}/healthz")[0] == 200,
                 timeout=60, message="kopf's liveness endpoint answers")  # fmt: skip
        example = yaml.safe_load(EXAMPLE.read_text())
        custom = kubernetes.client.CustomObjectsApi(api)
        custom.create_namespaced_custom_object(
            "tierwise.dev", "v1alpha1", "apps", "modeldeployments", example
        )
        name = example["metadata"]["name"]
        wait_for(lambda: _deployment(api, "apps", name), timeout=60,
                 message="the operator made the example's Deployment")  # fmt: skip
        container = _deployment(api, "apps", name).spec.template.spec.containers[0]
        assert container.image == ENGINE_IMAGE

        def status() -> dict[str, Any]:
            body = custom.get_namespaced_custom_object(
                "tierwise.dev", "v1alpha1", "apps", "modeldeployments", name
            )
            return dict(body.get("status") or {})

        wait_for(lambda: status().get("observedGeneration") == 1, timeout=30,
                 message="the example's status")  # fmt: skip
        kinds = {c["type"] for c in status()["conditions"]}
        assert kinds == {"Ready", "Progressing", "Degraded", "Reconciling", "Stalled"}
    code, metrics = _get(f"http://127.0.0.1:{ports['metrics']}/metrics")
    assert code == 200
    assert "tierwise_operator_reconciles_total" in metrics


def test_the_chart_certificate_serves_the_validating_webhook(
    installed: tuple[EmulatedCluster, dict[str, int], list[dict[str, Any]]],
) -> None:
    _, ports, objects = installed
    config = find(objects, "ValidatingWebhookConfiguration")
    webhook = next(w for w in config["webhooks"] if w["name"].startswith("validate-model"))
    ca = base64.b64decode(webhook["clientConfig"]["caBundle"]).decode()
    service = webhook["clientConfig"]["service"]
    bad = yaml.safe_load((REPO / "examples" / "invalid" / "27-managed-engine-arg.yaml").read_text())
    review = {"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "request": {
        "uid": "00000000-0000-4000-8000-000000000027", "operation": "CREATE",
        "kind": {"group": "tierwise.dev", "version": "v1alpha1", "kind": "ModelDeployment"},
        "resource": {"group": "tierwise.dev", "version": "v1alpha1",
                     "resource": "modeldeployments"},
        "namespace": "apps", "object": bad, "oldObject": None, "userInfo": {},
        "dryRun": False}}  # fmt: skip
    host = f"{service['name']}.{service['namespace']}.svc"
    answer = wait_for(
        lambda: _review(ports["webhook"], host, ca, service["path"], review),
        timeout=30,
        message="the webhook answers over the chart's certificate",
    )
    assert answer["response"]["allowed"] is False
    expected = (REPO / "examples" / "invalid" / "27-managed-engine-arg.expected").read_text()
    assert expected.strip().split(": ", 1)[-1] in answer["response"]["status"]["message"]


def _review(port: int, host: str, ca: str, path: str, review: dict[str, Any]) -> Any:
    try:
        return post_tls(port, host, ssl.create_default_context(cadata=ca), path,
                        json.dumps(review).encode())  # fmt: skip
    except (OSError, ssl.SSLError):
        return None


def test_an_upgrade_keeps_the_webhook_certificate_the_install_generated(
    installed: tuple[EmulatedCluster, dict[str, int], list[dict[str, Any]]],
) -> None:
    cluster, _, objects = installed
    installed_secret = find(objects, "Secret", "tierwise-webhook-tls")["data"]
    config = helm.Config(kubeconfig_path=str(cluster.kubeconfig_path), namespace=NAMESPACE)
    with config, helm.Chart.load(str(CHART)) as chart:
        upgrade = config.render(chart, {}, name=RELEASE, namespace=NAMESPACE, is_upgrade=True)
    secret = next(
        d for d in yaml.safe_load_all(upgrade["tierwise/templates/webhooks.yaml"])
        if d and d["kind"] == "Secret"
    )  # fmt: skip
    assert secret["data"] == installed_secret
    offline = find(render(), "Secret", "tierwise-webhook-tls")["data"]
    assert offline["ca.crt"] != installed_secret["ca.crt"], "lookup must be what keeps it"
