"""One embedded cluster for the folder: simulator engine pods, the real operator with a
fast autoscaler, and the real router in front of the ``chat`` ModelDeployment.

Engine pods are ``tierwise sim engine`` processes with two batch slots (``--max-running
2``) so a burst builds a queue. The RoutingPolicy reconciler that writes the router's
table in-cluster is not built yet, so :class:`EndpointSync` stands in for it here, as
in ``tierwise demo``: it rewrites the router's EP.yaml from the ready pods, and the router
reloads it. The operator reads the router's ``/metrics`` (``--router-metrics-url``).
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import kubernetes.client
import pytest
import yaml

from tierwise.controller.autoscaling import AutoscalerSettings
from tierwise.controller.kube import load_config
from tierwise.controller.pods import PodAddress
from tierwise.controller.runner import OperatorOptions, OperatorThread
from tierwise.local.cluster import EmulatedCluster
from tierwise.local.endpoints import endpoints_yaml, read_endpoints
from tierwise.local.processes import free_port
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
    },
}


class FewSlotsBackend(SimWorkloadBackend):
    """Simulator pods with two batch slots, so queues build under a burst."""

    def _command(self, pod: PodInfo, port: int) -> list[str]:
        return [*super()._command(pod, port), "--max-running", "2"]


class EndpointSync:
    """Keeps EP.yaml equal to the ready pods of ``names`` (the routing-table stand-in)."""

    def __init__(self, api: kubernetes.client.ApiClient, path: Path, names: list[str]) -> None:
        self.api, self.path, self.names = api, path, names
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="endpoint-sync", daemon=True)
        self.write()

    def write(self) -> None:
        text = endpoints_yaml(read_endpoints(self.api, NS, self.names))
        if not self.path.exists() or self.path.read_text() != text:
            tmp = self.path.with_suffix(".tmp")
            tmp.write_text(text)
            os.replace(tmp, self.path)

    def _run(self) -> None:
        while not self._stop.wait(0.2):
            try:
                self.write()
            except Exception:  # the cluster is going away; the next round retries
                continue

    def __enter__(self) -> EndpointSync:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join(5)


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
def router(
    tmp_path_factory: pytest.TempPathFactory, api: kubernetes.client.ApiClient
) -> Iterator[str]:
    """The router's base URL; its EP.yaml follows the ready pods of ``chat``."""
    folder = tmp_path_factory.mktemp("router")
    policy, endpoints = folder / "rp.yaml", folder / "ep.yaml"
    policy.write_text(yaml.safe_dump(POLICY))
    port = free_port()
    argv = [
        sys.executable, "-m", "tierwise.cli", "router", "--policy", str(policy),
        "--endpoints", str(endpoints), "--port", str(port), "--pending-wait", "25",
        "--scrape-interval", "0.5", "--classifier", "hashing", "--namespace", NS,
    ]  # fmt: skip
    with EndpointSync(api, endpoints, [ROUTED]), (folder / "router.log").open("wb") as log:
        process = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT)
        url = f"http://127.0.0.1:{port}"
        try:
            wait_for(lambda: _answers(url + "/healthz"), timeout=30, message="router ready")
            yield url
        finally:
            process.terminate()
            process.wait(10)


def _answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=1) as response:
            return bool(response.status == 200)
    except OSError:
        return False


@pytest.fixture(scope="module")
def operator(cluster: EmulatedCluster, router: str) -> Iterator[OperatorThread]:
    settings = AutoscalerSettings(
        tick_s=0.25,
        router_metrics_urls=(router + "/metrics",),
        discover_routers=False,
        pod_address=PodAddress.LOCAL_PORT,
        scrape_timeout_s=1.0,
        status_refresh_s=2.0,
    )
    options = OperatorOptions(
        kube=load_config(str(cluster.kubeconfig_path)), debounce_s=0.05, autoscaler=settings
    )
    with OperatorThread(options) as running:
        yield running
