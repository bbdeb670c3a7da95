"""One embedded cluster for the folder: two ModelDeployments as simulator pods, a fake
frontier API that checks its key, the real operator, and the three-tier RoutingPolicy's
router, which the operator deploys and the cluster runs as a real ``tierwise router``
process behind its Service.

The frontier is a small OpenAI-compatible server in this process that answers only with
the key it currently expects, and records which key each request carried, so a test can
rotate the Secret and see which key the router sent.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import kubernetes.client
import pytest
from policy_harness import NS, Frontier

from tierwise.controller.autoscaling import AutoscalerSettings
from tierwise.controller.kube import load_config
from tierwise.controller.pods import PodAddress
from tierwise.controller.runner import OperatorOptions, OperatorThread
from tierwise.local.cluster import EmulatedCluster
from tierwise.local.sim_workloads import SimWorkloadBackend

CRDS = sorted((Path(__file__).parents[2] / "crds").glob("*.yaml"))


@pytest.fixture(scope="module")
def frontier() -> Iterator[Frontier]:
    running = Frontier()
    yield running
    running.close()


@pytest.fixture(scope="module")
def backend() -> SimWorkloadBackend:
    return SimWorkloadBackend({"small-llm": "small", "mid-llm": "mid"})


@pytest.fixture(scope="module")
def cluster(backend: SimWorkloadBackend) -> Iterator[EmulatedCluster]:
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
        tick_s=0.5, pod_address=PodAddress.LOCAL_PORT, scrape_timeout_s=1.0
    )
    options = OperatorOptions(
        kube=load_config(str(cluster.kubeconfig_path)), debounce_s=0.05, autoscaler=settings
    )
    with OperatorThread(options) as running:
        yield running
