"""A pod running ``tierwise router`` runs for real, with its volumes kept in sync.

The router reads a RoutingPolicy and an endpoint map from a mounted ConfigMap
(``--policy``/``--endpoints``) and its external tier's API key from a mounted Secret under
``--secrets-dir``: the flags' paths are rewritten into the pod's folder, so the key path the
router derives from ``--secrets-dir`` resolves locally. (A key path written *inside* a
mounted file, such as a table's ``apiKeyFile``, is not rewritten.)
"""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from typing import Any

import httpx
import kubernetes.client
import pytest

from tierwise.api.routing_policy import RoutingPolicy
from tierwise.local.cluster import EmulatedCluster
from tierwise.local.kubelet import TierwisePodBackend
from tierwise.local.sim_workloads import SimWorkloadBackend
from tierwise.local.testing import wait_for
from tierwise.local.workloads import PORT_ANNOTATION
from tierwise.sim.config import SimConfig
from tierwise.sim.process import EngineProcess, start_engine

NS = "default"
KEYS = "/etc/tierwise/keys"
CONFIG = "/etc/tierwise/config"
MERGE = "application/merge-patch+json"


@pytest.fixture(scope="module")
def frontier() -> Iterator[EngineProcess]:
    """A simulator standing in for the external frontier API."""
    engine = start_engine(SimConfig(model="frontier-model"))
    try:
        yield engine
    finally:
        engine.stop()


def policy_yaml(engine_url: str, description: str) -> str:
    policy = {
        "apiVersion": "tierwise.dev/v1alpha1", "kind": "RoutingPolicy",
        "metadata": {"name": "local"},
        "spec": {"models": ["auto"], "tiers": [{
            "name": "frontier", "description": description,
            "backends": [{"external": {"baseURL": f"{engine_url}/v1", "model": "frontier-model",
                                       "apiKeySecretRef": {"name": "frontier-key",
                                                           "key": "api-key"}}}]}]},
    }
    RoutingPolicy.model_validate(policy)
    return json.dumps(policy)


def config(engine_url: str, description: str) -> dict[str, str]:
    return {"policy.yaml": policy_yaml(engine_url, description), "endpoints.yaml": "{}"}


def router_deployment() -> dict[str, Any]:
    labels = {"app": "router"}
    container = {
        "name": "router", "image": "tierwise:dev", "command": ["tierwise", "router"],
        "args": ["--policy", f"{CONFIG}/policy.yaml", "--endpoints", f"{CONFIG}/endpoints.yaml",
                 "--secrets-dir", KEYS, "--host", "0.0.0.0", "--port", "8080",
                 "--namespace", "$(POD_NAMESPACE)", "--classifier", "hashing",
                 "--watch-interval", "0.2"],
        "env": [{"name": "POD_NAMESPACE",
                 "valueFrom": {"fieldRef": {"fieldPath": "metadata.namespace"}}},
                {"name": "POD_NAME", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}}],
        "ports": [{"name": "http", "containerPort": 8080}],
        "readinessProbe": {"httpGet": {"path": "/readyz", "port": "http"}},
        "volumeMounts": [{"name": "config", "mountPath": CONFIG, "readOnly": True},
                         {"name": "frontier-key", "mountPath": f"{KEYS}/frontier-key",
                          "readOnly": True},
                         {"name": "tmp", "mountPath": "/tmp"}],
    }
    return {"apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": "router", "labels": labels},
            "spec": {"replicas": 1, "selector": {"matchLabels": labels},
                     "template": {"metadata": {"labels": labels}, "spec": {
                         "containers": [container],
                         "volumes": [{"name": "config", "configMap": {"name": "router-config"}},
                                     {"name": "frontier-key",
                                      "secret": {"secretName": "frontier-key"}},
                                     {"name": "tmp", "emptyDir": {}}]}}}}


def secret(key: str) -> dict[str, Any]:
    return {"metadata": {"name": "frontier-key"},
            "data": {"api-key": base64.b64encode(key.encode()).decode()}}


def waiting_reason(core: kubernetes.client.CoreV1Api) -> str | None:
    pods = core.list_namespaced_pod(NS, label_selector="app=router").items
    if not pods or pods[0].status is None or not pods[0].status.container_statuses:
        return None
    state = pods[0].status.container_statuses[0].state
    return state.waiting.message if state.waiting else None


def test_a_router_pod_serves_from_its_mounted_table_and_follows_rotations(
    frontier: EngineProcess,
) -> None:
    backend = SimWorkloadBackend()
    with EmulatedCluster(workloads=backend, max_termination_grace=2) as cluster, \
            cluster.api_client() as client:
        apps, core = kubernetes.client.AppsV1Api(client), kubernetes.client.CoreV1Api(client)
        core.create_namespaced_service(NS, {"metadata": {"name": "router"}, "spec": {
            "selector": {"app": "router"}, "ports": [{"name": "http", "port": 80,
                                                      "targetPort": "http"}]}})
        apps.create_namespaced_deployment(NS, router_deployment())
        # The ConfigMap and Secret do not exist yet: the pod waits for them, as on a cluster.
        message = wait_for(lambda: waiting_reason(core), message="ContainerCreating")
        assert 'configmap "router-config" not found' in message
        core.create_namespaced_config_map(NS, {"metadata": {"name": "router-config"},
                                               "data": config(frontier.url, "first")})
        core.create_namespaced_secret(NS, secret("sk-first"))

        def ready() -> Any:
            status = apps.read_namespaced_deployment_status("router", NS).status
            return status and status.ready_replicas == 1

        wait_for(ready, timeout=30, message="router pod ready")
        pod = core.list_namespaced_pod(NS, label_selector="app=router").items[0]
        port = int(pod.metadata.annotations[PORT_ANNOTATION])
        assert httpx.get(f"http://127.0.0.1:{port}/readyz").status_code == 200

        url = cluster.service_url(NS, "router")
        answer = httpx.post(f"{url}/v1/chat/completions", timeout=30, json={
            "model": "auto", "messages": [{"role": "user", "content": "hi"}], "max_tokens": 4})
        assert answer.status_code == 200
        assert answer.headers["x-tierwise-tier"] == "frontier"

        assert backend.tierwise is not None
        root = backend.tierwise.pod_folder(NS, pod.metadata.name) / "root"
        key_file = root / KEYS.strip("/") / "frontier-key" / "api-key"
        assert key_file.read_text() == "sk-first"
        core.patch_namespaced_secret("frontier-key", NS, secret("sk-second"), _content_type=MERGE)
        wait_for(lambda: key_file.read_text() == "sk-second", timeout=5, message="key rotated")

        policy_file = root / CONFIG.strip("/") / "policy.yaml"
        version = httpx.get(f"{url}/readyz").json()["tableVersion"]
        core.patch_namespaced_config_map("router-config", NS, {"data": config(
            frontier.url, "second")}, _content_type=MERGE)
        wait_for(lambda: "second" in policy_file.read_text(), timeout=5, message="policy updated")
        wait_for(lambda: httpx.get(f"{url}/readyz").json()["tableVersion"] != version,
                 timeout=10, message="the router reloaded its policy")
        argv = backend.tierwise.command_line(NS, pod.metadata.name)
        assert argv[argv.index("--namespace") + 1] == NS  # $(POD_NAMESPACE) expanded
        assert argv[argv.index("--port") + 1] == str(port)
        assert argv[argv.index("--host") + 1] == "127.0.0.1"
        assert argv[argv.index("--secrets-dir") + 1] == f"{root}{KEYS}"


def test_a_tierwise_pod_outside_a_cluster_fails_with_the_reason() -> None:
    """Without a cluster to read volumes from, the pod fails and says why."""
    import asyncio

    from tierwise.local.workloads import PodHealth, PodInfo

    async def run() -> tuple[PodHealth, str | None]:
        backend = TierwisePodBackend()
        info = PodInfo(namespace=NS, name="r", deployment="r",
                       template=router_deployment()["spec"]["template"])
        await backend.start(info)
        state = await backend.state(info)
        await backend.aclose()
        return state.health, state.message

    health, message = asyncio.run(run())
    assert health == PodHealth.FAILING
    assert message is not None
    assert "EmulatedCluster" in message


def test_the_pod_files_are_removed_with_the_cluster() -> None:
    backend = SimWorkloadBackend()
    with EmulatedCluster(workloads=backend):
        assert backend.tierwise is not None
        folder = backend.tierwise.folder
        assert folder is not None
        assert folder.is_dir()
    assert not folder.exists()
