"""Fixtures: an emulated cluster per test, and kubernetes clients bound to it."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import kubernetes.client
import pytest

from tierwise.local.cluster import EmulatedCluster
from tierwise.local.testing import model_deployment_crd
from tierwise.local.workloads import FakeBackend


@pytest.fixture
def cluster() -> Iterator[EmulatedCluster]:
    with EmulatedCluster(bookmark_interval=0.2) as running:
        yield running


@pytest.fixture
def fake() -> FakeBackend:
    return FakeBackend()


@pytest.fixture
def running(fake: FakeBackend) -> Iterator[EmulatedCluster]:
    """A cluster whose Deployments get instant fake pods (and EndpointSlices)."""
    with EmulatedCluster(workloads=fake) as cluster:
        yield cluster


@pytest.fixture
def api(cluster: EmulatedCluster) -> Iterator[kubernetes.client.ApiClient]:
    with cluster.api_client() as client:
        yield client


@pytest.fixture
def core(api: kubernetes.client.ApiClient) -> kubernetes.client.CoreV1Api:
    return kubernetes.client.CoreV1Api(api)


@pytest.fixture
def apps(api: kubernetes.client.ApiClient) -> kubernetes.client.AppsV1Api:
    return kubernetes.client.AppsV1Api(api)


@pytest.fixture
def custom(api: kubernetes.client.ApiClient) -> kubernetes.client.CustomObjectsApi:
    return kubernetes.client.CustomObjectsApi(api)


@pytest.fixture
def crd(api: kubernetes.client.ApiClient) -> dict[str, Any]:
    """The test ModelDeployment CRD, POSTed as a client would."""
    body = model_deployment_crd()
    kubernetes.client.ApiextensionsV1Api(api).create_custom_resource_definition(body)
    return body
