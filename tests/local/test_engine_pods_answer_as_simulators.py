"""On the embedded cluster, the Deployment the operator would render for a ModelDeployment
runs as simulator processes that answer OpenAI requests under the served name and expose
the engine's own metric names; the endpoint map follows a replaced pod. Wall time about 5 s."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from collections.abc import Iterator
from typing import Any

import kubernetes.client
import pytest

from tierwise.api.model_deployment import ModelDeployment
from tierwise.local.cluster import EmulatedCluster
from tierwise.local.sim_workloads import SimWorkloadBackend
from tierwise.local.testing import deployment, wait_for
from tierwise.local.workloads import PORT_ANNOTATION
from tierwise.manifests.render import render_model_deployment

NS = "default"


def rendered_deployment(name: str, engine: str, served: str, replicas: int) -> dict[str, Any]:
    md = ModelDeployment.model_validate({
        "apiVersion": "tierwise.dev/v1alpha1", "kind": "ModelDeployment",
        "metadata": {"name": name, "namespace": NS},
        "spec": {"model": {"uri": "hf://Qwen/Qwen2.5-0.5B-Instruct", "servedName": served},
                 "engine": {"name": engine}},
    })
    objects = render_model_deployment(md, replicas=replicas)
    found: dict[str, Any] = next(o for o in objects if o["kind"] == "Deployment")
    return found


@pytest.fixture
def backend() -> SimWorkloadBackend:
    return SimWorkloadBackend({"small-llm": "zero", "mid-llm": "zero"})


@pytest.fixture
def api(backend: SimWorkloadBackend) -> Iterator[kubernetes.client.ApiClient]:
    with EmulatedCluster(workloads=backend) as cluster, cluster.api_client() as client:
        yield client


def get_json(url: str) -> Any:
    with urllib.request.urlopen(url, timeout=5) as response:
        return json.loads(response.read())


def get_text(url: str) -> str:
    with urllib.request.urlopen(url, timeout=5) as response:
        text: str = response.read().decode()
        return text


def read_endpoints(api: kubernetes.client.ApiClient, names: list[str]) -> dict[str, list[str]]:
    """Local URLs of each Deployment's Ready pods that are not being deleted, sorted."""
    out: dict[str, list[str]] = {name: [] for name in names}
    for pod in kubernetes.client.CoreV1Api(api).list_namespaced_pod(NS).items:
        labels = pod.metadata.labels or {}
        owner = labels.get("tierwise.dev/model-deployment") or labels.get("app")
        ready = any(c.type == "Ready" and c.status == "True"
                    for c in (pod.status.conditions or []))
        port = (pod.metadata.annotations or {}).get(PORT_ANNOTATION)
        if owner in out and ready and port and pod.metadata.deletion_timestamp is None:
            out[owner].append(f"http://{pod.status.pod_ip}:{port}")
    return {name: sorted(urls) for name, urls in out.items()}


def ready_replicas(apps: kubernetes.client.AppsV1Api, name: str) -> int:
    status = apps.read_namespaced_deployment_status(name, NS).status
    return int(status.ready_replicas or 0) if status is not None else 0


def test_engine_pods_serve_and_endpoints_follow_scale(
    api: kubernetes.client.ApiClient, backend: SimWorkloadBackend
) -> None:
    apps = kubernetes.client.AppsV1Api(api)
    apps.create_namespaced_deployment(NS, rendered_deployment("small-llm", "vllm", "small", 2))
    apps.create_namespaced_deployment(NS, rendered_deployment("mid-llm", "sglang", "mid", 1))
    apps.create_namespaced_deployment(NS, deployment("web"))  # not an engine: a fake pod
    for name, count in (("small-llm", 2), ("mid-llm", 1), ("web", 1)):
        wait_for(lambda n=name, c=count: ready_replicas(apps, n) == c, timeout=20,
                 message=f"{name} ready")

    endpoints = read_endpoints(api, ["small-llm", "mid-llm", "web"])
    assert len(endpoints["small-llm"]) == 2
    assert len(endpoints["mid-llm"]) == 1
    assert endpoints["web"] == []
    assert len(backend.specs) == 3  # three processes, none for the web pod

    for name, served, metric in (("small-llm", "small", "vllm:num_requests_waiting"),
                                 ("mid-llm", "mid", "sglang:num_queue_reqs")):
        for url in endpoints[name]:
            models = get_json(url + "/v1/models")
            assert [m["id"] for m in models["data"]] == [served]
            assert metric in get_text(url + "/metrics")

    # A deleted pod's process stops and its replacement takes its place in the map.
    # (Not scaling here: the local Deployment controller stops on a 409 when a Deployment
    # changes while it reconciles it; see docs/demo.md.)
    core = kubernetes.client.CoreV1Api(api)
    pods = core.list_namespaced_pod(NS, label_selector="tierwise.dev/model-deployment=small-llm")
    victim = pods.items[0]
    gone = f"http://127.0.0.1:{victim.metadata.annotations['local.tierwise.dev/port']}"
    assert gone in endpoints["small-llm"]
    core.delete_namespaced_pod(victim.metadata.name, NS)

    def replaced() -> list[str] | None:
        urls = read_endpoints(api, ["small-llm"])["small-llm"]
        return urls if len(urls) == 2 and gone not in urls else None

    now = wait_for(replaced, timeout=15, message="pod replaced")
    assert len(set(now) & set(endpoints["small-llm"])) == 1


    def stopped() -> bool:
        try:
            get_text(gone + "/health")
        except urllib.error.URLError as e:
            return "refused" in str(e)
        return False

    # The deleted pod terminates gracefully: its preStop sleep (capped by the cluster's
    # max_termination_grace) keeps the process serving a while, then it is stopped.
    wait_for(stopped, timeout=20, message="the deleted pod's process stopped")
