"""The policy document: the watched ConfigMap's while the API is there, the mounted file
before the API delivered one or while the API is down (unless the file lags behind what the
API said), and a document that does not parse is counted and the last good one stays."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import kmock
import pytest
from router_harness import until

from tierwise.api.router_config import CONFIG_KEY, RouterConfig, dump_config
from tierwise.api.routing_policy import RoutingPolicy
from tierwise.local.cluster import EmulatedCluster
from tierwise.manifests.router_config import router_config
from tierwise.router.discovery.files import ConfigFile
from tierwise.router.discovery.kubernetes import ConfigMapConfig
from tierwise.router.discovery.reflector import Backoff, WatchTiming
from tierwise.router.discovery.stats import DiscoveryStats
from tierwise.router.kubeapi import KubeApi, KubeConfig

CONFIGMAPS = "/api/v1/namespaces/default/configmaps"
NAME = "rp-router"
FAST = WatchTiming(backoff=Backoff(0.01, 0.05), watch_timeout_s=1, read_silence_s=5)


def document(alias: str) -> RouterConfig:
    policy = RoutingPolicy.model_validate(
        {
            "metadata": {"name": "rp", "namespace": "default"},
            "spec": {
                "models": [alias],
                "tiers": [{"name": "t", "backends": [{"modelDeployment": "m"}]}],
            },
        }
    )
    return router_config(policy, {})


def write_file(path: Path, text: str) -> None:
    tmp = path.with_name(path.name + ".new")
    tmp.write_text(text)
    os.replace(tmp, path)


class Api:
    """The test's hand on the ConfigMap and on the API's availability to the router."""

    def __init__(self, cluster: EmulatedCluster) -> None:
        self.cluster = cluster
        self.down = False
        cluster.server.fault = self._fault

    def _fault(self, request: kmock.Request) -> int | None:
        reading = str(request.method.value).upper() == "GET"
        return 503 if self.down and reading else None

    async def put(self, text: str) -> None:
        """Create or replace the ConfigMap holding ``text``."""
        body = {"metadata": {"name": NAME}, "data": {CONFIG_KEY: text}}
        url = self.cluster.url + CONFIGMAPS
        async with aiohttp.ClientSession() as session:
            async with session.put(f"{url}/{NAME}", json=body) as response:
                status = response.status
            if status == 404:
                async with session.post(url, json=body) as response:
                    status = response.status
        assert status in (200, 201)


@pytest.fixture
async def setup(tmp_path: Path) -> AsyncIterator[tuple[Api, ConfigMapConfig, Path, DiscoveryStats]]:
    path = tmp_path / "policy.json"
    write_file(path, dump_config(document("from-file")))
    stats = DiscoveryStats()
    async with EmulatedCluster(bookmark_interval=0.1) as cluster:
        api = KubeApi(KubeConfig(server=cluster.url))
        source = ConfigMapConfig(
            api,
            "default",
            NAME,
            fallback=ConfigFile(path, on_error=lambda exc: stats.count_config_error("file")),
            stats=stats,
            timing=FAST,
        )
        try:
            async with source.running(lambda: None):
                yield Api(cluster), source, path, stats
        finally:
            await api.close()


def alias(source: ConfigMapConfig) -> str:
    return source.current().spec.models[0]


async def test_file_first_then_the_config_map(
    setup: tuple[Api, ConfigMapConfig, Path, DiscoveryStats],
) -> None:
    api, source, path, _ = setup
    assert (alias(source), source.source) == ("from-file", "file")
    await until(lambda: source.api_up, "the watch")
    assert alias(source) == "from-file"  # the ConfigMap does not exist yet
    await api.put(dump_config(document("from-api")))
    await until(lambda: alias(source) == "from-api", "the ConfigMap's document")
    assert source.source == "api"
    write_file(path, dump_config(document("file-lags")))  # never said by the API: newer...
    assert alias(source) == "from-api"  # ...but the API is up, and it wins


async def test_api_down_uses_a_newer_file_never_a_lagging_one(
    setup: tuple[Api, ConfigMapConfig, Path, DiscoveryStats],
) -> None:
    api, source, path, _ = setup
    await api.put(dump_config(document("v1")))
    await until(lambda: alias(source) == "v1", "v1 from the API")
    await api.put(dump_config(document("v2")))
    await until(lambda: alias(source) == "v2", "v2 from the API")
    api.down = True
    await until(lambda: not source.api_up, "the watch to fail")
    write_file(path, dump_config(document("v1")))  # kubelet's copy, behind the API
    assert alias(source) == "v2"
    write_file(path, dump_config(document("v3")))  # changed while the API is unreachable
    assert (alias(source), source.source) == ("v3", "file")
    api.down = False
    await api.put(dump_config(document("v4")))
    await until(lambda: alias(source) == "v4", "the API again")


async def test_a_bad_document_is_counted_and_the_last_good_one_stays(
    setup: tuple[Api, ConfigMapConfig, Path, DiscoveryStats],
) -> None:
    api, source, path, stats = setup
    await api.put(dump_config(document("good")))
    await until(lambda: alias(source) == "good", "the good document")
    await api.put('{"kind": "RouterConfig", "spec": ')
    await until(lambda: stats.config_errors.get("api") == 1, "the error counted")
    assert alias(source) == "good"
    write_file(path, "not: [a, document")
    api.down = True
    await until(lambda: not source.api_up, "the watch to fail")
    assert alias(source) == "good"
    assert stats.config_errors == {"api": 1, "file": 1}
