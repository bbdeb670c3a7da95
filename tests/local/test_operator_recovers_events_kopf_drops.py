"""The operator converges even when kopf drops an event because its own patch failed.

kopf adds its finalizer with a PATCH before any handler runs. kopf's client retries a
429 or 5xx itself, but when that PATCH gets another error (409, 422) — or its retries run
out — kopf logs it and waits for the next event of the object, which may never come
(checked: with ``resync_s = 0`` both cases below stay without status). The reconciler's
resync loop must find such objects and bring them to ``Ready``. Wall time about 4 s.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tierwise.controller.kube import load_config
from tierwise.controller.runner import OperatorOptions, OperatorThread
from tierwise.local.cluster import EmulatedCluster
from tierwise.local.testing import wait_for
from tierwise.local.workloads import FakeBackend

CRDS = sorted((Path(__file__).parents[2] / "crds").glob("*.yaml"))
PATH = "/apis/tierwise.dev/v1alpha1/namespaces/default/modeldeployments"


def md(name: str) -> dict[str, Any]:
    return {"apiVersion": "tierwise.dev/v1alpha1", "kind": "ModelDeployment",
            "metadata": {"name": name},
            "spec": {"model": {"uri": "hf://org/model"}, "engine": {"name": "vllm"}}}


class FailFirstPatch:
    """Answer the first PATCH of one object's main resource with a given status."""

    def __init__(self, name: str, status: int) -> None:
        self.name, self.status = name, status
        self.injected = 0
        self._lock = threading.Lock()

    def __call__(self, request: Any) -> int | None:
        is_target = (str(request.method.value).upper() == "PATCH"
                     and request.name == self.name and request.subresource is None)
        with self._lock:
            if is_target and self.injected == 0:
                self.injected += 1
                return self.status
        return None


@pytest.fixture
def cluster() -> Iterator[EmulatedCluster]:
    with EmulatedCluster(workloads=FakeBackend()) as running:
        running.install_crd_files(CRDS)
        yield running


def _phase(client: httpx.Client, name: str) -> str | None:
    phase: str | None = (client.get(f"{PATH}/{name}").json().get("status") or {}).get("phase")
    return phase


@pytest.mark.parametrize("status", [409, 422])
def test_an_object_whose_finalizer_patch_failed_still_becomes_ready(
    cluster: EmulatedCluster, status: int
) -> None:
    options = OperatorOptions(kube=load_config(str(cluster.kubeconfig_path)),
                              debounce_s=0.05, autoscaler=None)
    fault = FailFirstPatch("lost", status)
    with OperatorThread(options) as operator, httpx.Client(base_url=cluster.url) as client:
        assert operator.reconciler is not None
        operator.reconciler.resync_s = 0.3
        client.post(PATH, json=md("first"))  # its reconcile starts the resync loop
        wait_for(lambda: _phase(client, "first") == "Ready", message="first Ready")
        cluster.server.fault = fault
        client.post(PATH, json=md("lost"))
        wait_for(lambda: _phase(client, "lost") == "Ready", timeout=15,
                 message="the object kopf dropped to be reconciled")
    assert fault.injected == 1
