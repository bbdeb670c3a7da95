"""The embedded cluster's EndpointSlice controller keeps slices in step with pods and Services."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import kubernetes.client
import pytest

from tierwise.local.cluster import EmulatedCluster
from tierwise.local.endpointslices import (
    CONTROLLER_NAME,
    ENDPOINTSLICES,
    MANAGED_BY_LABEL,
    SERVICE_NAME_LABEL,
    SERVICES,
)
from tierwise.local.testing import deployment, wait_for
from tierwise.local.workloads import PODS, FakeBackend, PodHealth

MERGE = "application/merge-patch+json"


@pytest.fixture
def api(running: EmulatedCluster) -> Iterator[kubernetes.client.ApiClient]:
    with running.api_client() as client:
        yield client


def service_body(name: str = "engine", selector: dict[str, str] | None = None) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Service",
            "metadata": {"name": name, "labels": {"tierwise.dev/model-deployment": name}},
            "spec": {"selector": selector or {"app": name},
                     "ports": [{"name": "http", "port": 80, "targetPort": "http"}]}}


def slices(cluster: EmulatedCluster, service: str = "engine") -> list[dict[str, Any]]:
    def read() -> list[dict[str, Any]]:
        items, _ = cluster.server.store.list(
            ENDPOINTSLICES, "default",
            lambda o: (o["metadata"].get("labels") or {}).get(SERVICE_NAME_LABEL) == service)
        return items
    return cluster.call(_now(read))


async def _now(fn: Any) -> Any:
    return fn()


def conditions(cluster: EmulatedCluster) -> dict[str, dict[str, bool]]:
    return {ep["targetRef"]["name"]: ep["conditions"]
            for s in slices(cluster) for ep in s["endpoints"]}


def test_ready_pods_become_endpoints_with_their_port(
    api: kubernetes.client.ApiClient, running: EmulatedCluster,
) -> None:
    core = kubernetes.client.CoreV1Api(api)
    core.create_namespaced_service("default", service_body())
    kubernetes.client.AppsV1Api(api).create_namespaced_deployment(
        "default", deployment("engine", replicas=2, port=8000))
    wait_for(lambda: [c["ready"] for c in conditions(running).values()] == [True, True],
             message="two ready endpoints")
    listed = kubernetes.client.DiscoveryV1Api(api).list_namespaced_endpoint_slice(
        "default", label_selector=f"{SERVICE_NAME_LABEL}=engine").items
    assert len(listed) == 1
    (sl,) = listed
    assert sl.address_type == "IPv4"
    assert [(p.name, p.port, p.protocol) for p in sl.ports] == [("http", 8000, "TCP")]
    assert sl.metadata.labels == {"tierwise.dev/model-deployment": "engine",
                                  SERVICE_NAME_LABEL: "engine",
                                  MANAGED_BY_LABEL: CONTROLLER_NAME}
    owner = sl.metadata.owner_references[0]
    service = core.read_namespaced_service("engine", "default")
    assert (owner.kind, owner.name, owner.uid) == ("Service", "engine", service.metadata.uid)
    pods = {p.metadata.name: p for p in core.list_namespaced_pod("default").items}
    for ep in sl.endpoints:
        pod = pods[ep.target_ref.name]
        assert ep.addresses == [pod.status.pod_ip]
        assert (ep.target_ref.kind, ep.target_ref.uid) == ("Pod", pod.metadata.uid)
        assert ep.node_name == pod.spec.node_name


def test_endpoints_follow_readiness_and_removal(
    api: kubernetes.client.ApiClient, running: EmulatedCluster, fake: FakeBackend,
) -> None:
    kubernetes.client.CoreV1Api(api).create_namespaced_service("default", service_body())
    apps = kubernetes.client.AppsV1Api(api)
    apps.create_namespaced_deployment("default", deployment("engine", replicas=2))
    wait_for(lambda: len(conditions(running)) == 2, message="two endpoints")
    fake.mark("default", "engine", PodHealth.STARTING)
    wait_for(lambda: [c["ready"] or c["serving"] for c in conditions(running).values()]
             == [False, False], message="unready endpoints")
    fake.mark("default", "engine", PodHealth.READY)
    apps.patch_namespaced_deployment_scale("engine", "default", {"spec": {"replicas": 0}},
                                           _content_type=MERGE)
    wait_for(lambda: conditions(running) == {}, message="no endpoints")
    assert [(s["endpoints"], s["ports"]) for s in slices(running)] == [([], [])]


def test_deleting_the_service_deletes_its_slices(
    api: kubernetes.client.ApiClient, running: EmulatedCluster,
) -> None:
    core = kubernetes.client.CoreV1Api(api)
    core.create_namespaced_service("default", service_body())
    wait_for(lambda: slices(running), message="a placeholder slice")
    core.delete_namespaced_service("engine", "default")
    wait_for(lambda: not slices(running), message="slices gone")


def test_a_settled_cluster_gets_no_slice_writes(
    api: kubernetes.client.ApiClient, running: EmulatedCluster,
) -> None:
    kubernetes.client.CoreV1Api(api).create_namespaced_service("default", service_body())
    kubernetes.client.AppsV1Api(api).create_namespaced_deployment(
        "default", deployment("engine", replicas=3))
    wait_for(lambda: [c["ready"] for c in conditions(running).values()] == [True] * 3)
    controller = running.endpoint_slices
    assert controller is not None

    def two_passes() -> tuple[int, int, int]:
        first = controller.reconcile_all()
        version = running.server.log.resource_version
        second = controller.reconcile_all()
        return first, second, running.server.log.resource_version - version

    assert running.call(_now(two_passes)) == (0, 0, 0)


def test_the_controller_runs_without_a_workload_backend() -> None:
    """Pods written by a test (status included) are enough: no Deployment controller needed."""
    with EmulatedCluster(endpoint_slices=True) as cluster:
        assert cluster.controller is None

        async def create() -> None:
            store = cluster.server.store
            store.create(SERVICES, "default", service_body())
            pod = store.create(PODS, "default", {
                "metadata": {"name": "p", "labels": {"app": "engine"}},
                "spec": {"nodeName": "n", "containers": [
                    {"name": "c", "ports": [{"name": "http", "containerPort": 9000}]}]}})
            store.write(PODS, "default", "p", dict(pod, status={
                "podIP": "10.9.9.9", "conditions": [{"type": "Ready", "status": "True"}]}),
                subresource="status")

        cluster.call(create())
        wait_for(lambda: conditions(cluster).get("p", {}).get("ready"), message="endpoint")
        assert slices(cluster)[0]["ports"][0]["port"] == 9000

