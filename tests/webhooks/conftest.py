"""The real operator serving its admission webhooks over HTTPS, on the emulated cluster.

The certificate is made here for 127.0.0.1 (a throwaway CA and a server certificate), as
the Helm chart or cert-manager would make one; the operator reads both files. Requests are
AdmissionReview documents POSTed the way the API server sends them.
"""

from __future__ import annotations

import datetime
import ipaddress
import socket
import ssl
from collections.abc import Iterator
from pathlib import Path

import kubernetes.client
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from webhook_harness import NS, Webhooks

from tierwise.controller.kube import load_config
from tierwise.controller.runner import OperatorOptions, OperatorThread
from tierwise.controller.webhooks import WebhookSettings
from tierwise.local.cluster import EmulatedCluster
from tierwise.local.processes import free_port
from tierwise.local.testing import wait_for
from tierwise.local.workloads import FakeBackend

CRDS = sorted((Path(__file__).parents[2] / "crds").glob("*.yaml"))


def _certificate(folder: Path) -> tuple[Path, Path, Path]:
    """A CA and a server certificate for 127.0.0.1/localhost, as PEM files."""
    now = datetime.datetime.now(datetime.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "tierwise-test-ca")])
    ca = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    sans = [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")]))
        .issuer_name(ca_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName(sans), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    paths = folder / "ca.pem", folder / "tls.crt", folder / "tls.key"
    paths[0].write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    paths[1].write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    paths[2].write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return paths


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
    ca, cert, key = _certificate(tmp_path_factory.mktemp("tls"))
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
