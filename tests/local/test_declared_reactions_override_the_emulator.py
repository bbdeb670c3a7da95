"""A reaction a test declares (kmock's DSL) still answers before the emulated API server.

The emulator skips kmock's reaction search while no reaction has been declared (that search
re-filters every recorded request and made the emulator quadratic); these tests pin down
that a declared reaction still wins, and that the default answers come back afterwards.
"""

from __future__ import annotations

import httpx
import pytest

from tierwise.local.cluster import EmulatedCluster

CONFIGMAPS = "/api/v1/namespaces/default/configmaps"


@pytest.mark.parametrize("status", [409, 500, 503])
def test_a_declared_status_overrides_the_emulated_answer(
    cluster: EmulatedCluster, status: int
) -> None:
    cluster.server[f"get {CONFIGMAPS}"] << status
    with httpx.Client(base_url=cluster.url) as client:
        assert client.get(CONFIGMAPS).status_code == status
        assert client.get("/api/v1/namespaces/default/secrets").status_code == 200


@pytest.mark.parametrize("name", ["plain", "ünïcode-name-is-invalid-but-served"])
def test_resource_requests_are_served_without_declared_reactions(
    cluster: EmulatedCluster, name: str
) -> None:
    with httpx.Client(base_url=cluster.url) as client:
        created = client.post(CONFIGMAPS, json={"metadata": {"name": name}})
        listed = client.get(CONFIGMAPS).json()["items"]
    assert created.status_code == 201
    assert [item["metadata"]["name"] for item in listed] == [name]
    assert len(cluster.server) >= 2  # still recorded for assertions
