"""The real operator serving its admission webhooks over HTTPS, on the emulated cluster.

The certificate is made here for 127.0.0.1 (a throwaway CA and a server certificate), as
the Helm chart or cert-manager would make one; the operator reads both files. Requests are
AdmissionReview documents POSTed the way the API server sends them.
"""

from __future__ import annotations

import socket
import ssl
from collections.abc import Iterator
from pathlib import Path

import kubernetes.client
import pytest
from webhook_harness import NS, Webhooks

from tierwise.controller.kube import load_config
from tierwise.controller.runner import OperatorOptions, OperatorThread
from tierwise.controller.webhooks import WebhookSettings
from tierwise.local.cluster import EmulatedCluster
from tierwise.local.processes import free_port
from tierwise.local.testing import wait_for
from tierwise.local.workloads import FakeBackend
from tls_support import ca_and_server_certificate

CRDS = sorted((Path(__file__).parents[2] / "crds").glob("*.yaml"))



@pytest.fixture(scope="module")
def cluster() -> Iterator[EmulatedCluster]:
    with EmulatedCluster(workloads=FakeBackend(), namespaces=("default", NS)) as running:
        running.install_crd_files(CRDS)
        yield running


@pytest.fixture(scope="module")
def api(cluster: EmulatedCluster) -> Iterator[kubernetes.client.ApiClient]:
    with cluster.api_client() as client:
        yield client


@pytest.fixture(scope="module")
def webhooks(
    cluster: EmulatedCluster, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Webhooks]:
    ca, cert, key = ca_and_server_certificate(tmp_path_factory.mktemp("tls"))
    port = free_port()
    options = OperatorOptions(
        kube=load_config(str(cluster.kubeconfig_path)),
        debounce_s=0.05,
        autoscaler=None,
        webhook=WebhookSettings(port=port, addr="127.0.0.1", certfile=str(cert), keyfile=str(key)),
    )
    context = ssl.create_default_context(cafile=str(ca))
    with OperatorThread(options):
        wait_for(lambda: _listening(port), timeout=20, message="the webhook server listens")
        yield Webhooks(f"https://127.0.0.1:{port}", context)


def _listening(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return True
    except OSError:
        return False
