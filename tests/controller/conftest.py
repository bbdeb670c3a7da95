"""Fixtures for integration tests: an emulated cluster with the real CRDs, the Deployment
harness (fake pods), kubernetes clients bound to it, and the real operator in a thread."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import kubernetes.client
import pytest
from controller_helpers import operator_options

from tierwise.controller.runner import OperatorThread
from tierwise.local.cluster import EmulatedCluster
from tierwise.local.workloads import FakeBackend

CRDS = sorted((Path(__file__).parents[2] / "crds").glob("*.yaml"))


@pytest.fixture
def backend() -> FakeBackend:
    return FakeBackend()


@pytest.fixture
def cluster(backend: FakeBackend) -> Iterator[EmulatedCluster]:
    with EmulatedCluster(workloads=backend, namespaces=("default", "models")) as running:
        running.install_crd_files(CRDS)
        yield running


@pytest.fixture
def api(cluster: EmulatedCluster) -> Iterator[kubernetes.client.ApiClient]:
    with cluster.api_client() as client:
        yield client


@pytest.fixture
def custom(api: kubernetes.client.ApiClient) -> kubernetes.client.CustomObjectsApi:
    return kubernetes.client.CustomObjectsApi(api)


@pytest.fixture
def apps(api: kubernetes.client.ApiClient) -> kubernetes.client.AppsV1Api:
    return kubernetes.client.AppsV1Api(api)


@pytest.fixture
def core(api: kubernetes.client.ApiClient) -> kubernetes.client.CoreV1Api:
    return kubernetes.client.CoreV1Api(api)


@pytest.fixture
def operator(cluster: EmulatedCluster) -> Iterator[OperatorThread]:
    with OperatorThread(operator_options(cluster)) as running:
        yield running
