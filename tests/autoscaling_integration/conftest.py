"""One embedded cluster for the folder: simulator engine pods, the real operator with a
fast autoscaler, and the router the operator deploys for a RoutingPolicy in front of the
``chat`` ModelDeployment, reached through its Service.

Engine pods are ``tierwise sim engine`` processes with two batch slots (``--max-running
2``) so a burst builds a queue. The router is the real one end to end: the operator
renders the policy's Deployment, the embedded cluster runs its pod as a ``tierwise
router`` process (cluster mode: the policy document from its ConfigMap, replicas from the
EndpointSlices that the cluster's EndpointSlice controller keeps), and the operator finds
the router pod by its labels to read the demand that wakes ``chat`` from zero. Nothing
stands in for the RoutingPolicy reconciler.
"""

from __future__ import annotations

import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import kubernetes.client
import pytest

from tierwise.controller.autoscaling import AutoscalerSettings
from tierwise.controller.kube import load_config
from tierwise.controller.pods import PodAddress
from tierwise.controller.runner import OperatorOptions, OperatorThread
from tierwise.local.cluster import EmulatedCluster
from tierwise.local.sim_workloads import SimWorkloadBackend
from tierwise.local.testing import wait_for
from tierwise.local.workloads import PodInfo

CRDS = sorted((Path(__file__).parents[2] / "crds").glob("*.yaml"))
NS = "models"
ROUTED = "chat"
"""The ModelDeployment behind the router's only tier."""

POLICY = {
    "apiVersion": "tierwise.dev/v1alpha1",
    "kind": "RoutingPolicy",
    "metadata": {"name": "scale", "namespace": NS},
    "spec": {
        "models": [ROUTED],
        "tiers": [{"name": "only", "backends": [{"modelDeployment": ROUTED}]}],
        "fallback": {"overloadQueueDepth": 100000},
        "balancing": {"policy": "least-load"},
        "router": {"replicas": 1},
    },
}


class FewSlotsBackend(SimWorkloadBackend):
    """Simulator pods with two batch slots, so queues build under a burst."""

    def _command(self, pod: PodInfo, port: int) -> list[str]:
        return [*super()._command(pod, port), "--max-running", "2"]


@pytest.fixture(scope="module")
def cluster() -> Iterator[EmulatedCluster]:
    backend = FewSlotsBackend(default_profile="mid")
    with EmulatedCluster(workloads=backend, namespaces=(NS,)) as running:
        running.install_crd_files(CRDS)
        yield running


@pytest.fixture(scope="module")
def api(cluster: EmulatedCluster) -> Iterator[kubernetes.client.ApiClient]:
    with cluster.api_client() as client:
        yield client


@pytest.fixture(scope="module")
def operator(cluster: EmulatedCluster) -> Iterator[OperatorThread]:
    settings = AutoscalerSettings(
        tick_s=0.25,
        discover_routers=True,
        pod_address=PodAddress.LOCAL_PORT,
        scrape_timeout_s=1.0,
        status_refresh_s=2.0,
    )
    options = OperatorOptions(
        kube=load_config(str(cluster.kubeconfig_path)), debounce_s=0.05, autoscaler=settings
    )
    with OperatorThread(options) as running:
        yield running


@pytest.fixture(scope="module")
def router(
    cluster: EmulatedCluster, api: kubernetes.client.ApiClient, operator: OperatorThread
) -> str:
    """The router's base URL, through its Service (the operator deploys it for POLICY)."""
    custom = kubernetes.client.CustomObjectsApi(api)
    custom.create_namespaced_custom_object(
        "tierwise.dev", "v1alpha1", NS, "routingpolicies", POLICY
    )

    def router_ready() -> Any:
        body = custom.get_namespaced_custom_object(
            "tierwise.dev", "v1alpha1", NS, "routingpolicies", "scale"
        )
        return (body.get("status") or {}).get("routerReadyReplicas") == 1

    wait_for(router_ready, timeout=60, message="the policy's router pod is ready")
    url = cluster.service_url(NS, "scale-router")
    wait_for(lambda: _answers(url + "/readyz"), timeout=30, message="router behind its Service")
    return url


def _answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=1) as response:
            return bool(response.status == 200)
    except OSError:
        return False
