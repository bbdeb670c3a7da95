"""The operator keeps working when its token rotates: the emulated API server accepts only
the current token, and the operator (kopf's own requests and the operator's client alike)
re-resolves its credentials after the 401 instead of failing until it is restarted.

Two ways a token changes under a running operator, both resolved from a kubeconfig as a
pod's in-cluster configuration is: a token file rewritten in place (``tokenFile``, what the
kubelet does to a projected service account token) and an exec plugin that hands out a new
token (EKS, GKE).
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import kmock
import kubernetes.client
import pytest
import yaml
from controller_helpers import md_body

from tierwise.controller.kube import load_config
from tierwise.controller.runner import OperatorOptions, OperatorThread
from tierwise.local.cluster import EmulatedCluster
from tierwise.local.testing import wait_for
from tierwise.local.workloads import FakeBackend

CRDS = sorted((Path(__file__).parents[2] / "crds").glob("*.yaml"))
ADMIN = "admin-token-for-the-test-itself"
FIRST, SECOND = "operator-token-one", "operator-token-two"
PLUGIN = """\
import json, pathlib, sys
token = pathlib.Path(sys.argv[1]).read_text().strip()
print(json.dumps({"apiVersion": "client.authentication.k8s.io/v1beta1",
                  "kind": "ExecCredential",
                  "status": {"token": token, "expirationTimestamp": "2999-01-01T00:00:00Z"}}))
"""


class Gate:
    """The API server's authenticator: which operator token it accepts, and what it saw."""

    def __init__(self) -> None:
        self.accepted = FIRST
        self.seen: list[tuple[str, int | None]] = []

    def __call__(self, request: kmock.Request) -> int | None:
        auth = next((v for k, v in request.headers.items() if k.lower() == "authorization"), "")
        token = str(auth).removeprefix("Bearer ")
        verdict = None if token in (ADMIN, self.accepted) else 401
        if token != ADMIN:
            self.seen.append((token, verdict))
        return verdict


def _kubeconfig(cluster: EmulatedCluster, folder: Path, how: str) -> Path:
    token_file = folder / "token"
    token_file.write_text(FIRST)
    user: dict[str, Any] = {"tokenFile": str(token_file)}
    if how == "exec-plugin":
        plugin = folder / "plugin.py"
        plugin.write_text(PLUGIN)
        user = {
            "exec": {
                "apiVersion": "client.authentication.k8s.io/v1beta1",
                "command": sys.executable,
                "args": [str(plugin), str(token_file)],
                "interactiveMode": "Never",
            }
        }
    config = yaml.safe_load(cluster.kubeconfig_path.read_text())
    config["users"][0]["user"] = user
    path = folder / "kubeconfig"
    path.write_text(yaml.safe_dump(config))
    return path


@pytest.fixture
def cluster() -> Iterator[EmulatedCluster]:
    with EmulatedCluster(workloads=FakeBackend(), namespaces=("default", "models")) as running:
        running.install_crd_files(CRDS)
        yield running


@pytest.fixture
def admin(cluster: EmulatedCluster) -> Iterator[kubernetes.client.ApiClient]:
    configuration = kubernetes.client.Configuration(host=cluster.url)
    configuration.api_key["BearerToken"] = f"Bearer {ADMIN}"
    with kubernetes.client.ApiClient(configuration) as client:
        yield client


def _converged(admin: kubernetes.client.ApiClient, name: str) -> bool:
    custom = kubernetes.client.CustomObjectsApi(admin)
    body = custom.get_namespaced_custom_object(
        "tierwise.dev", "v1alpha1", "models", "modeldeployments", name
    )
    apps = kubernetes.client.AppsV1Api(admin)
    deployments = apps.list_namespaced_deployment("models").items
    return bool(
        (body.get("status") or {}).get("observedGeneration") == 1
        and "tierwise.dev/finalizer" in (body["metadata"].get("finalizers") or [])
        and any(d.metadata.name == name for d in deployments)
    )


@pytest.mark.parametrize("how", ["token-file", "exec-plugin"])
def test_operator_keeps_reconciling_after_its_token_rotates(
    cluster: EmulatedCluster, admin: kubernetes.client.ApiClient, tmp_path: Path, how: str
) -> None:
    gate = Gate()
    cluster.server.fault = gate
    kubeconfig = _kubeconfig(cluster, tmp_path, how)
    options = OperatorOptions(kube=load_config(str(kubeconfig)), debounce_s=0.05, autoscaler=None)
    custom = kubernetes.client.CustomObjectsApi(admin)
    create = custom.create_namespaced_custom_object
    with OperatorThread(options) as operator:
        create("tierwise.dev", "v1alpha1", "models", "modeldeployments", md_body("before"))
        wait_for(lambda: _converged(admin, "before"), timeout=20, message="first reconcile")

        (tmp_path / "token").write_text(SECOND)  # the kubelet (or the plugin) rotates it
        gate.accepted = SECOND  # and the old token stops working
        rotated_at = len(gate.seen)
        create("tierwise.dev", "v1alpha1", "models", "modeldeployments", md_body("after"))
        wait_for(lambda: _converged(admin, "after"), timeout=30, message="reconcile after")
        assert operator.error is None

    after = gate.seen[rotated_at:]
    assert (FIRST, 401) in after, "the old token was never refused: the test proves nothing"
    assert any(token == SECOND and verdict is None for token, verdict in after)
    refused = [i for i, (token, verdict) in enumerate(after) if verdict == 401]
    accepted = [i for i, (token, verdict) in enumerate(after) if verdict is None]
    assert max(refused) < max(accepted), "the last requests must succeed"
    assert json.dumps(gate.seen).count(SECOND) > 1
