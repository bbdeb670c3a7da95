"""The local Deployment controller runs pods, reports availability and failures."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from typing import Any

import httpx
import kubernetes.client
import pytest

from tierwise.local.cluster import EmulatedCluster
from tierwise.local.processes import ProcessBackend
from tierwise.local.testing import deployment, wait_for
from tierwise.local.workloads import HEALTH_ANNOTATION, PORT_ANNOTATION, FakeBackend, PodHealth

MERGE = "application/merge-patch+json"


@pytest.fixture
def apps(running: EmulatedCluster) -> Iterator[kubernetes.client.AppsV1Api]:
    with running.api_client() as client:
        yield kubernetes.client.AppsV1Api(client)


def conditions(apps: kubernetes.client.AppsV1Api, name: str) -> dict[str, str]:
    status = apps.read_namespaced_deployment_status(name, "default").status
    return {c.type: c.status for c in (status and status.conditions) or []}


def available(apps: kubernetes.client.AppsV1Api, name: str, replicas: int) -> Any:
    status = apps.read_namespaced_deployment_status(name, "default").status
    return status and status.available_replicas == replicas and status.ready_replicas == replicas


def test_a_deployment_gets_owned_pods_and_becomes_available(
    apps: kubernetes.client.AppsV1Api, running: EmulatedCluster,
) -> None:
    apps.create_namespaced_deployment("default", deployment("engine", replicas=2))
    wait_for(lambda: available(apps, "engine", 2), message="2 available replicas")
    status = apps.read_namespaced_deployment_status("engine", "default").status
    assert status.observed_generation == 1
    assert status.updated_replicas == 2
    assert conditions(apps, "engine") == {"Available": "True", "Progressing": "True"}
    with running.api_client() as client:
        pods = kubernetes.client.CoreV1Api(client).list_namespaced_pod(
            "default", label_selector="app=engine").items
    assert len(pods) == 2
    assert all(p.metadata.owner_references[0].kind == "Deployment" for p in pods)
    assert all(p.status.pod_ip and p.status.phase == "Running" for p in pods)
    assert len({p.status.pod_ip for p in pods}) == 2


def test_scaling_adds_and_removes_pods(
    apps: kubernetes.client.AppsV1Api, running: EmulatedCluster,
) -> None:
    apps.create_namespaced_deployment("default", deployment("engine", replicas=1))
    wait_for(lambda: available(apps, "engine", 1))
    apps.patch_namespaced_deployment_scale("engine", "default", {"spec": {"replicas": 3}},
                                           _content_type=MERGE)
    wait_for(lambda: available(apps, "engine", 3), message="scaled up")
    apps.patch_namespaced_deployment_scale("engine", "default", {"spec": {"replicas": 0}},
                                           _content_type=MERGE)
    wait_for(lambda: not running.server.store.list(
        kubernetes_pods(), "default", lambda _: True)[0], message="no pods")


def kubernetes_pods() -> Any:
    from tierwise.local.workloads import PODS
    return PODS


def test_a_failing_deployment_is_unavailable(
    apps: kubernetes.client.AppsV1Api, fake: FakeBackend,
) -> None:
    fake.mark("default", "engine", PodHealth.FAILING)
    apps.create_namespaced_deployment("default", deployment("engine", replicas=1))
    wait_for(lambda: conditions(apps, "engine").get("Available") == "False")
    assert conditions(apps, "engine")["Progressing"] == "False"
    fake.mark("default", "engine", PodHealth.READY)
    wait_for(lambda: available(apps, "engine", 1), message="recovery")


def test_the_health_annotation_forces_failure_from_any_client(
    apps: kubernetes.client.AppsV1Api, running: EmulatedCluster,
) -> None:
    apps.create_namespaced_deployment("default", deployment("engine", replicas=1))
    wait_for(lambda: available(apps, "engine", 1))
    patch = {"metadata": {"annotations": {HEALTH_ANNOTATION: "Failing"}}}
    apps.patch_namespaced_deployment("engine", "default", patch, _content_type=MERGE)
    wait_for(lambda: conditions(apps, "engine").get("Available") == "False")
    with running.api_client() as client:
        pod = kubernetes.client.CoreV1Api(client).list_namespaced_pod("default").items[0]
    assert pod.status.container_statuses[0].state.waiting.reason == "CrashLoopBackOff"


def test_a_template_change_replaces_the_pods(apps: kubernetes.client.AppsV1Api) -> None:
    apps.create_namespaced_deployment("default", deployment("engine", image="e:1"))
    wait_for(lambda: available(apps, "engine", 1))
    patch = {"spec": {"template": {"metadata": {"labels": {"app": "engine", "v": "2"}}}}}
    apps.patch_namespaced_deployment("engine", "default", patch, _content_type=MERGE)
    wait_for(lambda: apps.read_namespaced_deployment_status(
        "engine", "default").status.observed_generation == 2)
    wait_for(lambda: available(apps, "engine", 1))


def test_deleting_a_deployment_deletes_its_pods(
    apps: kubernetes.client.AppsV1Api, running: EmulatedCluster,
) -> None:
    apps.create_namespaced_deployment("default", deployment("engine", replicas=2))
    wait_for(lambda: available(apps, "engine", 2))
    apps.delete_namespaced_deployment("engine", "default")
    with running.api_client() as client:
        core = kubernetes.client.CoreV1Api(client)
        # Garbage collection deletes the pods gracefully: terminating first, then gone.
        wait_for(lambda: core.list_namespaced_pod("default").items == [], message="pods gone")


def test_process_backend_runs_one_process_per_pod() -> None:
    backend = ProcessBackend([sys.executable, "-m", "http.server", "{port}", "--bind", "{host}"],
                             health_path="/")
    with EmulatedCluster(workloads=backend) as cluster, cluster.api_client() as client:
        apps = kubernetes.client.AppsV1Api(client)
        apps.create_namespaced_deployment("default", deployment("web", replicas=2))
        wait_for(lambda: available(apps, "web", 2), timeout=20, message="processes ready")
        pods = kubernetes.client.CoreV1Api(client).list_namespaced_pod("default").items
        ports = {int(p.metadata.annotations[PORT_ANNOTATION]) for p in pods}
        assert len(ports) == 2
        for port in ports:
            assert httpx.get(f"http://127.0.0.1:{port}/").status_code == 200


def test_process_backend_reports_a_crashing_process() -> None:
    backend = ProcessBackend([sys.executable, "-c", "raise SystemExit(3)"])
    with EmulatedCluster(workloads=backend) as cluster, cluster.api_client() as client:
        apps = kubernetes.client.AppsV1Api(client)
        apps.create_namespaced_deployment("default", deployment("web", replicas=1))
        wait_for(lambda: conditions(apps, "web").get("Progressing") == "False", timeout=20)
        assert conditions(apps, "web")["Available"] == "False"
