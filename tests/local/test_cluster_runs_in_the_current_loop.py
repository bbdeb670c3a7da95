"""``async with EmulatedCluster()`` serves async clients from the test's own loop."""

from __future__ import annotations

import aiohttp
import yaml

from tierwise.local.cluster import EmulatedCluster


async def test_async_mode_serves_requests_and_writes_a_kubeconfig() -> None:
    async with EmulatedCluster() as cluster, aiohttp.ClientSession(cluster.url) as session:
        config = yaml.safe_load(cluster.kubeconfig_path.read_text())
        assert config["clusters"][0]["cluster"]["server"] == cluster.url
        async with session.post("/api/v1/namespaces/default/configmaps",
                                json={"metadata": {"name": "cm"}}) as response:
            assert response.status == 201
        async with session.get("/api/v1/namespaces/default/configmaps/cm") as response:
            assert (await response.json())["metadata"]["namespace"] == "default"
    assert not cluster.server.active
