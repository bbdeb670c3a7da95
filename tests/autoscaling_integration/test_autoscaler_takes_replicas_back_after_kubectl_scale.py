"""Mode ``tierwise``: a ``kubectl scale`` of the engine Deployment stands until the
autoscaler's next decision differs from it; that decision's forced apply takes
``spec.replicas`` back for ``tierwise-autoscaler`` (docs/operations.md, "Replicas")."""

from __future__ import annotations

import httpx
import kubernetes.client
from scaling_helpers import GVP, NS, md, ready_urls, spec_replicas

from tierwise.controller.runner import OperatorThread
from tierwise.local.cluster import EmulatedCluster
from tierwise.local.testing import wait_for


def replicas_owners(cluster: EmulatedCluster, name: str) -> set[str]:
    found = httpx.get(f"{cluster.url}/apis/apps/v1/namespaces/{NS}/deployments/{name}").json()
    return {
        e["manager"] + (f"/{e['subresource']}" if e.get("subresource") else "")
        for e in found["metadata"].get("managedFields") or []
        if "f:replicas" in (e.get("fieldsV1") or {}).get("f:spec", {})
    }


def test_an_idle_model_scaled_by_hand_is_scaled_back_by_the_autoscaler(
    cluster: EmulatedCluster, api: kubernetes.client.ApiClient, operator: OperatorThread
) -> None:
    name = "by-hand"
    custom = kubernetes.client.CustomObjectsApi(api)
    custom.create_namespaced_custom_object(*GVP, md(name, min=1, max=3))
    wait_for(lambda: ready_urls(api, name), timeout=30, message="a ready replica")
    response = httpx.patch(  # what `kubectl scale deployment/by-hand --replicas=2` sends
        f"{cluster.url}/apis/apps/v1/namespaces/{NS}/deployments/{name}/scale",
        json={"spec": {"replicas": 2}},
        headers={"Content-Type": "application/merge-patch+json", "User-Agent": "kubectl/v1.33"},
    )
    response.raise_for_status()
    assert "kubectl/scale" in replicas_owners(cluster, name)
    wait_for(lambda: spec_replicas(api, name) == 1, timeout=40, message="scaled back to min")
    assert replicas_owners(cluster, name) == {"tierwise-autoscaler"}
