"""cluster.service_url: one stable address per Service port that follows its endpoints."""

from __future__ import annotations

import sys
from typing import Any

import aiohttp
import aiohttp.web
import httpx
import kubernetes.client
import pytest

from tierwise.local.cluster import EmulatedCluster
from tierwise.local.endpointslices import SERVICES
from tierwise.local.processes import ProcessBackend, free_port
from tierwise.local.serviceproxy import endpoint_targets, service_port_name
from tierwise.local.testing import deployment, wait_for
from tierwise.local.workloads import PODS, PORT_ANNOTATION

MERGE = "application/merge-patch+json"
# A server that answers every GET with the port it listens on (so a test sees who answered).
WHOAMI = """
import http.server, sys
port = int(sys.argv[1])
class Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        body = str(port).encode()
        self.send_response(200)
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
    def log_message(self, *args):
        pass
http.server.HTTPServer(("127.0.0.1", port), Handler).serve_forever()
"""


def endpoint(address: str, *, ready: bool, serving: bool, terminating: bool) -> dict[str, Any]:
    return {"addresses": [address],
            "conditions": {"ready": ready, "serving": serving, "terminating": terminating}}


def test_ready_endpoints_are_preferred_then_serving_terminating_ones() -> None:
    slices = [{"ports": [{"name": "http", "port": 8000}, {"name": "metrics", "port": 9000}],
               "endpoints": [endpoint("10.0.0.2", ready=True, serving=True, terminating=False),
                             endpoint("10.0.0.1", ready=False, serving=True, terminating=True)]},
              {"ports": [{"name": "http", "port": 8001}],
               "endpoints": [endpoint("10.0.0.3", ready=False, serving=False,
                                      terminating=False)]}]
    assert endpoint_targets(slices, "http") == [("10.0.0.2", 8000)]
    assert endpoint_targets(slices, "metrics") == [("10.0.0.2", 9000)]
    slices[0]["endpoints"].pop(0)
    assert endpoint_targets(slices, "http") == [("10.0.0.1", 8000)]  # kube-proxy's fallback
    assert endpoint_targets(slices, "grpc") == []
    assert endpoint_targets([{"ports": [], "endpoints": []}], "") == []


@pytest.mark.parametrize(("port", "name"), [(None, "http"), (80, "http"), (9090, "metrics"),
                                             ("metrics", "metrics")])
def test_a_service_port_is_found_by_number_or_name(port: int | str | None, name: str) -> None:
    svc = {"metadata": {"name": "s", "namespace": "ns"}, "spec": {"ports": [
        {"name": "http", "port": 80}, {"name": "metrics", "port": 9090}]}}
    assert service_port_name(svc, port) == name


def test_an_unknown_service_port_names_the_ports_it_has() -> None:
    svc = {"metadata": {"name": "s", "namespace": "ns"}, "spec": {"ports": [
        {"name": "http", "port": 80}]}}
    with pytest.raises(LookupError, match=r"ns/s has no port 81 \(its ports: http=80\)"):
        service_port_name(svc, 81)


def whoami(url: str) -> str | None:
    try:
        response = httpx.get(url, timeout=2)
    except httpx.TransportError:
        return None
    return response.text if response.status_code == 200 else None


def test_the_service_url_follows_pods_through_rollout_and_scale() -> None:
    backend = ProcessBackend([sys.executable, "-c", WHOAMI, "{port}"], health_path="/")
    with EmulatedCluster(workloads=backend, max_termination_grace=1) as cluster, \
            cluster.api_client() as client:
        apps, core = kubernetes.client.AppsV1Api(client), kubernetes.client.CoreV1Api(client)
        with pytest.raises(LookupError, match="does not exist"):
            cluster.service_url("default", "web")
        core.create_namespaced_service("default", {
            "metadata": {"name": "web"},
            "spec": {"selector": {"app": "web"},
                     "ports": [{"name": "http", "port": 80, "targetPort": "http"}]}})
        url = cluster.service_url("default", "web")
        assert cluster.service_url("default", "web", 80) == url
        apps.create_namespaced_deployment("default", deployment("web", replicas=2))

        def ports() -> set[str]:
            return {p.metadata.annotations[PORT_ANNOTATION]
                    for p in core.list_namespaced_pod("default").items
                    if not p.metadata.deletion_timestamp}

        # Round robin: once both pods are ready, four connections reach both of them.
        wait_for(lambda: len(now := ports()) == 2 and {whoami(url) for _ in range(4)} == now,
                 timeout=20, message="both pods answer")
        first = ports()

        patch = {"spec": {"template": {"metadata": {"labels": {"app": "web", "v": "2"}}}}}
        apps.patch_namespaced_deployment("web", "default", patch, _content_type=MERGE)
        wait_for(lambda: (now := ports()) and not now & first and len(now) == 2
                 and {whoami(url) for _ in range(4)} == now, timeout=20, message="rolled")

        apps.patch_namespaced_deployment_scale("web", "default", {"spec": {"replicas": 0}},
                                               _content_type=MERGE)
        wait_for(lambda: whoami(url) is None, timeout=10, message="no endpoint, no answer")
        apps.patch_namespaced_deployment_scale("web", "default", {"spec": {"replicas": 1}},
                                               _content_type=MERGE)
        wait_for(lambda: whoami(url) in ports(), timeout=20, message="the same URL serves again")


async def test_the_proxy_works_in_the_current_loop() -> None:
    """``async with`` mode: service_url is called on the cluster's own loop."""
    async def hello(_: aiohttp.web.Request) -> aiohttp.web.Response:
        return aiohttp.web.Response(text="hello")

    app = aiohttp.web.Application()
    app.router.add_get("/", hello)
    runner = aiohttp.web.AppRunner(app)
    await runner.setup()
    port = free_port()
    await aiohttp.web.TCPSite(runner, "127.0.0.1", port).start()
    try:
        async with EmulatedCluster(endpoint_slices=True) as cluster:
            url = cluster.service_url("default", "hello", "http")  # by name: before the Service
            store = cluster.server.store
            store.create(SERVICES, "default", {"metadata": {"name": "hello"}, "spec": {
                "selector": {"app": "hello"}, "ports": [{"name": "http", "port": 80,
                                                         "targetPort": "http"}]}})
            pod = store.create(PODS, "default", {
                "metadata": {"name": "hello-1", "labels": {"app": "hello"},
                             "annotations": {PORT_ANNOTATION: str(port)}},
                "spec": {"nodeName": "local", "containers": [
                    {"name": "c", "ports": [{"name": "http", "containerPort": 8080}]}]}})
            store.write(PODS, "default", "hello-1", dict(pod, status={
                "podIP": "127.0.0.1", "conditions": [{"type": "Ready", "status": "True"}]}),
                subresource="status")
            async with aiohttp.ClientSession() as session:
                for _ in range(50):
                    try:
                        async with session.get(url) as response:
                            assert await response.text() == "hello"
                            break
                    except aiohttp.ClientError:
                        await cluster.server.log.wait(0.1)
                else:
                    pytest.fail("the proxy never reached the pod")
    finally:
        await runner.cleanup()
