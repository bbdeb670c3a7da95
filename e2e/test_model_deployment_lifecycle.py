"""The controller scenario on a real cluster: create, converge, update in place, no-op,
delete. Skipped without ``KUBECONFIG``; refuses any kube-context not allowed by
``TIERWISE_E2E_CONTEXT`` (comma-separated, default ``kind-tierwise``).

The operator must already run in the cluster (or beside it: ``tierwise operator``), with
the CRDs installed. Real clusters have no GPUs in CI, so the Deployment is checked for
shape and status for ``observedGeneration`` and conditions, not for Ready pods; on kind
the engine pods stay Pending (no nvidia.com/gpu), which the operator reports as Loading.
On failure the test dumps pods, events, the custom resources and the operator's logs.
"""

from __future__ import annotations

import json
import os
import subprocess
import time
import uuid
from collections.abc import Callable, Iterator
from typing import Any, TypeVar

import pytest

T = TypeVar("T")
KUBECONFIG = os.environ.get("KUBECONFIG")
ALLOWED = {c.strip() for c in os.environ.get("TIERWISE_E2E_CONTEXT", "kind-tierwise").split(",")}
GROUP, VERSION, PLURAL = "tierwise.dev", "v1alpha1", "modeldeployments"

pytestmark = pytest.mark.skipif(not KUBECONFIG, reason="e2e needs KUBECONFIG (a real cluster)")


def _wait(check: Callable[[], T | None], timeout: float = 120, what: str = "condition") -> T:
    deadline = time.monotonic() + timeout
    while True:
        result = check()
        if result:
            return result
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out waiting for {what}")
        time.sleep(1)


@pytest.fixture(scope="module")
def clients() -> Iterator[Any]:
    import kubernetes

    _, active = kubernetes.config.list_kube_config_contexts(config_file=KUBECONFIG)
    name = active["name"]
    if name not in ALLOWED:
        pytest.fail(
            f"refusing to run e2e against kube-context {name!r}; allowed: {sorted(ALLOWED)}"
        )
    api = kubernetes.config.new_client_from_config(config_file=KUBECONFIG)
    with api:
        yield kubernetes.client, api


@pytest.fixture
def namespace(clients: Any, request: pytest.FixtureRequest) -> Iterator[str]:
    client, api = clients
    core = client.CoreV1Api(api)
    name = f"tierwise-e2e-{uuid.uuid4().hex[:6]}"
    core.create_namespace({"metadata": {"name": name}})
    yield name
    if getattr(request.node, "failed", False):
        _dump(name)
    core.delete_namespace(name)


def _dump(namespace: str) -> None:
    for args in (
        ["get", "pods,deployments,services,pdb,modeldeployments", "-o", "wide"],
        ["get", "events", "--sort-by=.lastTimestamp"],
        ["get", "modeldeployments", "-o", "yaml"],
    ):
        subprocess.run(["kubectl", "-n", namespace, *args], check=False)
    subprocess.run(
        [
            "kubectl",
            "-n",
            os.environ.get("TIERWISE_OPERATOR_NAMESPACE", "tierwise-system"),
            "logs",
            "-l",
            "app.kubernetes.io/name=tierwise-operator",
            "--tail=200",
        ],
        check=False,
    )


def _md(name: str, context_length: int) -> dict[str, Any]:
    return {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": "ModelDeployment",
        "metadata": {"name": name},
        "spec": {
            "model": {"uri": "hf://Qwen/Qwen2.5-0.5B-Instruct"},
            "engine": {"name": "vllm", "contextLength": context_length},
            "replicas": {"min": 1, "max": 2},
        },
    }


def test_lifecycle(clients: Any, namespace: str) -> None:
    client, api = clients
    custom, apps = client.CustomObjectsApi(api), client.AppsV1Api(api)
    core = client.CoreV1Api(api)
    gvp = (GROUP, VERSION, namespace, PLURAL)
    created = custom.create_namespaced_custom_object(*gvp, _md("qwen", 4096))

    def status(generation: int) -> Any:
        st = custom.get_namespaced_custom_object(*gvp, "qwen").get("status") or {}
        return st if st.get("observedGeneration") == generation and st.get("conditions") else None

    _wait(lambda: status(1), what="status at generation 1")
    deployment = apps.read_namespaced_deployment("qwen", namespace)
    assert deployment.metadata.owner_references[0].uid == created["metadata"]["uid"]
    service = core.read_namespaced_service("qwen", namespace)
    custom.patch_namespaced_custom_object(
        *gvp, "qwen", {"spec": {"engine": {"name": "vllm", "contextLength": 2048}}}
    )
    _wait(lambda: status(2), what="status at generation 2")
    updated = apps.read_namespaced_deployment("qwen", namespace)
    assert updated.metadata.uid == deployment.metadata.uid
    assert "2048" in json.dumps(updated.spec.template.spec.containers[0].to_dict())
    assert core.read_namespaced_service("qwen", namespace).metadata.resource_version == (
        service.metadata.resource_version
    )
    custom.delete_namespaced_custom_object(*gvp, "qwen")
    _wait(
        lambda: (
            not apps.list_namespaced_deployment(
                namespace, label_selector="tierwise.dev/model-deployment=qwen"
            ).items
        ),
        what="children gone",
    )
