"""Deleted pods terminate like kubelet does it: terminating, preStop, SIGTERM, SIGKILL, gone."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from typing import Any

import httpx
import kubernetes.client
import pytest

from tierwise.local.cluster import EmulatedCluster
from tierwise.local.endpointslices import ENDPOINTSLICES
from tierwise.local.processes import ProcessBackend
from tierwise.local.termination import deletion_grace, termination_times
from tierwise.local.testing import deployment, wait_for
from tierwise.local.workloads import PORT_ANNOTATION

MERGE = "application/merge-patch+json"
IGNORE_SIGTERM = ("import http.server, signal, sys; signal.signal(signal.SIGTERM, signal.SIG_IGN);"
                  "http.server.test(HandlerClass=http.server.SimpleHTTPRequestHandler, "
                  "port=int(sys.argv[1]), bind='127.0.0.1')")


def sleep_exec(seconds: int) -> dict[str, Any]:
    return {"exec": {"command": ["sleep", str(seconds)]}}


@pytest.mark.parametrize(("hook", "grace", "cap", "expected"), [
    (None, 30, 5.0, (0.0, 5.0)),
    (sleep_exec(2), 30, 5.0, (2.0, 3.0)),
    ({"sleep": {"seconds": 1}}, 30, 5.0, (1.0, 4.0)),
    ({"exec": {"command": ["/bin/sh", "-c", "sleep 3"]}}, 30, 5.0, (3.0, 2.0)),
    (sleep_exec(15), 120, 5.0, (5.0, 2.0)),  # the hook used the grace: kubelet's 2 s minimum
    (sleep_exec(15), 1, 5.0, (1.0, 1.0)),
    ({"exec": {"command": ["curl", "-X", "POST", "localhost/drain"]}}, 30, 5.0, (0.0, 5.0)),
    (sleep_exec(2), 0, 5.0, (0.0, 0.0)),
], ids=["no-hook", "exec-sleep", "sleep-action", "shell-sleep", "hook-over-cap",
        "hook-over-grace", "other-exec-skipped", "no-grace"])
def test_termination_times_follow_hooks_grace_and_cap(
    hook: dict[str, Any] | None, grace: int, cap: float, expected: tuple[float, float],
) -> None:
    container: dict[str, Any] = {"name": "c"}
    if hook is not None:
        container["lifecycle"] = {"preStop": hook}
    pod = {"metadata": {"deletionGracePeriodSeconds": grace}, "spec": {"containers": [container]}}
    times = termination_times(pod, cap)
    assert (times.pre_stop, times.kill_after) == expected


@pytest.mark.parametrize(("spec", "status", "requested", "expected"), [
    ({"nodeName": "n"}, {}, None, 30),
    ({"nodeName": "n", "terminationGracePeriodSeconds": 120}, {}, None, 120),
    ({"nodeName": "n", "terminationGracePeriodSeconds": 120}, {}, 0, 0),
    ({"nodeName": "n"}, {}, 7, 7),
    ({}, {}, None, 0),
    ({"nodeName": "n"}, {"phase": "Failed"}, None, 0),
], ids=["default", "pod-grace", "forced", "requested", "unscheduled", "finished"])
def test_the_api_server_picks_the_grace_period(
    spec: dict[str, Any], status: dict[str, Any], requested: int | None, expected: int,
) -> None:
    assert deletion_grace({"spec": spec, "status": status}, requested) == expected


def web(name: str, *, pre_stop: int | None = None, grace: int = 30) -> dict[str, Any]:
    body = deployment(name)
    spec = body["spec"]["template"]["spec"]
    spec["terminationGracePeriodSeconds"] = grace
    if pre_stop is not None:
        spec["containers"][0]["lifecycle"] = {"preStop": sleep_exec(pre_stop)}
    return body


def answers(port: int) -> bool:
    try:
        return httpx.get(f"http://127.0.0.1:{port}/", timeout=1).status_code == 200
    except httpx.TransportError:
        return False


def only_pod(core: kubernetes.client.CoreV1Api) -> Any:
    pods = core.list_namespaced_pod("default").items
    return pods[0] if len(pods) == 1 else None


@pytest.fixture
def http_server() -> Iterator[EmulatedCluster]:
    backend = ProcessBackend([sys.executable, "-m", "http.server", "{port}", "--bind", "{host}"],
                             health_path="/")
    with EmulatedCluster(workloads=backend, max_termination_grace=6) as cluster:
        yield cluster


def test_a_scaled_down_pod_keeps_serving_through_its_pre_stop_then_goes(
    http_server: EmulatedCluster,
) -> None:
    with http_server.api_client() as client:
        apps, core = kubernetes.client.AppsV1Api(client), kubernetes.client.CoreV1Api(client)
        core.create_namespaced_service("default", {
            "metadata": {"name": "web"},
            "spec": {"selector": {"app": "web"}, "ports": [{"name": "http", "port": 80,
                                                            "targetPort": "http"}]}})
        apps.create_namespaced_deployment("default", web("web", pre_stop=5))
        pod = wait_for(lambda: (p := only_pod(core)) and p.status and
                       any(c.type == "Ready" and c.status == "True"
                           for c in p.status.conditions or []) and p, timeout=20)
        port = int(pod.metadata.annotations[PORT_ANNOTATION])
        apps.patch_namespaced_deployment_scale("web", "default", {"spec": {"replicas": 0}},
                                               _content_type=MERGE)
        terminating = wait_for(lambda: (p := only_pod(core)) and p.metadata.deletion_timestamp
                               and p, message="terminating")
        assert terminating.metadata.deletion_grace_period_seconds == 30
        assert answers(port)  # the preStop hook keeps the process running
        endpoint = wait_for(lambda: _endpoints(http_server).get(pod.metadata.name),
                            message="terminating endpoint")
        assert endpoint["conditions"] == {"ready": False, "serving": True, "terminating": True}
        wait_for(lambda: not core.list_namespaced_pod("default").items, timeout=15,
                 message="pod removed")
        assert not answers(port)
        assert apps.read_namespaced_deployment_status("web", "default").status.replicas is None


def _endpoints(cluster: EmulatedCluster) -> dict[str, Any]:
    async def read() -> dict[str, Any]:
        return {ep["targetRef"]["name"]: ep
                for _, s in cluster.server.store.iter_objects(ENDPOINTSLICES, "default")
                for ep in s["endpoints"]}
    return cluster.call(read())


def test_a_process_ignoring_sigterm_is_killed_when_the_grace_ends() -> None:
    backend = ProcessBackend([sys.executable, "-c", IGNORE_SIGTERM, "{port}"], health_path="/")
    with EmulatedCluster(workloads=backend, max_termination_grace=5) as cluster, \
            cluster.api_client() as client:
        apps, core = kubernetes.client.AppsV1Api(client), kubernetes.client.CoreV1Api(client)
        apps.create_namespaced_deployment("default", web("stubborn", grace=1))
        pod = wait_for(lambda: (p := only_pod(core)) and p.metadata.annotations and
                       answers(int(p.metadata.annotations[PORT_ANNOTATION])) and p, timeout=20)
        port = int(pod.metadata.annotations[PORT_ANNOTATION])
        core.delete_namespaced_pod(pod.metadata.name, "default")  # kubectl delete pod
        wait_for(lambda: not answers(port), timeout=10, message="process killed")
        wait_for(lambda: pod.metadata.name not in
                 {p.metadata.name for p in core.list_namespaced_pod("default").items},
                 message="pod object removed")


def test_a_forced_delete_removes_the_pod_at_once(http_server: EmulatedCluster) -> None:
    with http_server.api_client() as client:
        apps, core = kubernetes.client.AppsV1Api(client), kubernetes.client.CoreV1Api(client)
        apps.create_namespaced_deployment("default", web("web", pre_stop=30))
        pod = wait_for(lambda: only_pod(core), timeout=20)
        core.delete_namespaced_pod(pod.metadata.name, "default", grace_period_seconds=0)
        names = {p.metadata.name for p in core.list_namespaced_pod("default").items}
        assert pod.metadata.name not in names


def test_zero_grace_keeps_deletion_instant() -> None:
    backend = ProcessBackend([sys.executable, "-m", "http.server", "{port}", "--bind", "{host}"],
                             health_path="/")
    with EmulatedCluster(workloads=backend, max_termination_grace=0) as cluster, \
            cluster.api_client() as client:
        apps, core = kubernetes.client.AppsV1Api(client), kubernetes.client.CoreV1Api(client)
        apps.create_namespaced_deployment("default", web("web", pre_stop=30))
        pod = wait_for(lambda: only_pod(core), timeout=20)
        core.delete_namespaced_pod(pod.metadata.name, "default")
        names = {p.metadata.name for p in core.list_namespaced_pod("default").items}
        assert pod.metadata.name not in names
