"""Fixtures for the scenarios on a real cluster: the kube-context check, the Helm release
of the chart (installed once from the built image, uninstalled at the end, with checks
that it left nothing behind but the CRDs), a namespace per module, and dumps on failure.

Everything is skipped without ``KUBECONFIG``. A kube-context not listed in
``TIERWISE_E2E_CONTEXT`` (comma-separated, default ``kind-tierwise``) fails the run: e2e
installs a chart and patches nodes, and must never touch a cluster by accident.

Environment:

- ``TIERWISE_E2E_IMAGE``: the Tierwise image to install (default ``tierwise:e2e``, what the
  workflow builds and loads into kind);
- ``TIERWISE_E2E_ENGINE_IMAGE``: the engine image the ModelDeployments run (default
  ``tierwise-engine-sim:e2e``, images/engine-sim: the simulator behind vLLM's and SGLang's
  command lines, CPU only);
- ``TIERWISE_E2E_FAKE_GPUS``: GPUs to advertise on every node (default 8 on a kind-* context,
  0 elsewhere): the engine pods request ``nvidia.com/gpu`` like on a GPU cluster;
- ``TIERWISE_E2E_RELEASE_NAMESPACE``: where the chart goes (default ``tierwise-system``).
"""

from __future__ import annotations

import os
import subprocess
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from e2e_support import (
    ALLOWED,
    CHART,
    ENGINE_IMAGE,
    IMAGE,
    KUBECONFIG,
    RELEASE,
    RELEASE_NAMESPACE,
    wait,
)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: Any, call: Any) -> Iterator[None]:
    """Marks a failed test so fixtures can dump cluster state in their teardown."""
    outcome = yield
    report = outcome.get_result()
    if report.when == "call" and report.failed:
        item.failed = True
        item.session.tierwise_failed = True


@pytest.fixture(scope="session")
def context() -> str:
    if not KUBECONFIG:
        pytest.skip("e2e needs KUBECONFIG (a real cluster)")
    import kubernetes

    _, active = kubernetes.config.list_kube_config_contexts(config_file=KUBECONFIG)
    name = str(active["name"])
    if name not in ALLOWED:
        pytest.fail(
            f"refusing to run e2e against kube-context {name!r}; allowed: {sorted(ALLOWED)} "
            "(set TIERWISE_E2E_CONTEXT)"
        )
    return name


@pytest.fixture(scope="session")
def api(context: str) -> Iterator[Any]:
    import kubernetes

    client = kubernetes.config.new_client_from_config(config_file=KUBECONFIG, context=context)
    with client:
        yield client


def _split(image: str) -> tuple[str, str]:
    repository, _, tag = image.rpartition(":")
    if not repository or "/" in tag:
        return image, "latest"
    return repository, tag


@pytest.fixture(scope="session")
def fake_gpus(api: Any, context: str) -> int:
    """Advertise ``nvidia.com/gpu`` on every node (an extended resource in the node status,
    as the device plugin would), so engine pods schedule on a cluster without GPUs."""
    import kubernetes

    default = "8" if context.startswith("kind-") else "0"
    count = int(os.environ.get("TIERWISE_E2E_FAKE_GPUS", default))
    if count:
        core = kubernetes.client.CoreV1Api(api)
        patch = {"status": {"capacity": {"nvidia.com/gpu": str(count)}}}
        for node in core.list_node().items:
            core.patch_node_status(node.metadata.name, patch)
    return count


@pytest.fixture(scope="session")
def release(api: Any, fake_gpus: int, request: pytest.FixtureRequest) -> Iterator[dict[str, Any]]:
    """The chart installed from the built image; uninstalled (and checked) at the end."""
    import helm_python as helm
    import kubernetes

    repository, tag = _split(IMAGE)
    values = {
        "image": {"repository": repository, "tag": tag, "pullPolicy": "IfNotPresent"},
        "operator": {
            "replicas": 2,
            "logFormat": "text",
            "engineImages": {"vllm": ENGINE_IMAGE, "sglang": ENGINE_IMAGE},
            "autoscaling": {"tickSeconds": 2},
            "resources": {"requests": {"cpu": "50m", "memory": "128Mi"}},
        },
    }
    config = helm.Config(kubeconfig_path=KUBECONFIG, namespace=RELEASE_NAMESPACE)
    with config:
        config.install(str(CHART), RELEASE, values, namespace=RELEASE_NAMESPACE,
                       create_namespace=True, wait="watcher", timeout=300)  # fmt: skip
        try:
            yield values
        finally:
            if getattr(request.session, "tierwise_failed", False):
                _dump_operator()
            config.uninstall(RELEASE, wait="watcher", timeout=180)
    apps = kubernetes.client.AppsV1Api(api)
    left = apps.list_namespaced_deployment(
        RELEASE_NAMESPACE, label_selector=f"app.kubernetes.io/instance={RELEASE}"
    ).items
    assert left == [], "the release left its Deployment behind"
    rbac = kubernetes.client.RbacAuthorizationV1Api(api)
    assert not [r for r in rbac.list_cluster_role().items if r.metadata.name.startswith(RELEASE)]
    ext = kubernetes.client.ApiextensionsV1Api(api)
    crds = {c.metadata.name for c in ext.list_custom_resource_definition().items}
    assert {"modeldeployments.tierwise.dev", "routingpolicies.tierwise.dev"} <= crds, (
        "the CRDs are kept on uninstall (helm.sh/resource-policy: keep)"
    )


@pytest.fixture(scope="module")
def namespace(api: Any, release: dict[str, Any], request: pytest.FixtureRequest) -> Iterator[str]:
    import kubernetes

    core = kubernetes.client.CoreV1Api(api)
    name = f"tierwise-e2e-{uuid.uuid4().hex[:6]}"
    core.create_namespace({"metadata": {"name": name}})
    yield name
    if getattr(request.session, "tierwise_failed", False):
        _dump(name)
    core.delete_namespace(name)
    wait(
        lambda: not core.list_namespace(field_selector=f"metadata.name={name}").items,
        timeout=300,
        what=f"namespace {name} deleted (finalizers removed by the operator)",
    )


def _dump(namespace: str) -> None:
    for args in (
        ["get", "pods,deployments,services,pdb,endpointslices,modeldeployments,routingpolicies",
         "-o", "wide"],
        ["get", "events", "--sort-by=.lastTimestamp"],
        ["get", "modeldeployments,routingpolicies", "-o", "yaml"],
        ["logs", "-l", "app.kubernetes.io/component=router", "--tail=100", "--prefix"],
    ):  # fmt: skip
        subprocess.run(["kubectl", "-n", namespace, *args], check=False)


def _dump_operator() -> None:
    subprocess.run(["kubectl", "-n", RELEASE_NAMESPACE, "get", "pods", "-o", "wide"], check=False)
    selector = "app.kubernetes.io/name=tierwise-operator"
    subprocess.run(
        ["kubectl", "-n", RELEASE_NAMESPACE, "logs", "-l", selector, "--tail=300", "--prefix"],
        check=False,
    )
