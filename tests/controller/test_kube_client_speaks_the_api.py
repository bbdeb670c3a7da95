"""The async client sends what a real API server expects and counts every write."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import aiohttp.web
import kopf
import pytest
import yaml

from tierwise.controller.errors import to_kopf
from tierwise.controller.kube import ApiError, KubeClient, KubeConfig, load_config
from tierwise.controller.resources import DEPLOYMENT, MODEL_DEPLOYMENT, POD_MONITOR, SERVICE


class FakeApi:
    """Records requests; answers from a table of (method, path) → (status, body)."""

    def __init__(self) -> None:
        self.requests: list[dict[str, Any]] = []
        self.answers: dict[tuple[str, str], tuple[int, dict[str, Any]]] = {}

    async def handle(self, request: aiohttp.web.Request) -> aiohttp.web.Response:
        raw = await request.read()
        self.requests.append(
            {
                "method": request.method,
                "path": request.path,
                "query": dict(request.query),
                "content_type": request.headers.get("Content-Type"),
                "auth": request.headers.get("Authorization"),
                "body": json.loads(raw) if raw else None,
            }
        )
        status, body = self.answers.get((request.method, request.path), (200, {"kind": "Ok"}))
        return aiohttp.web.json_response(body, status=status)


@pytest.fixture
async def api() -> AsyncIterator[tuple[FakeApi, str]]:
    fake = FakeApi()
    app = aiohttp.web.Application()
    app.router.add_route("*", "/{tail:.*}", fake.handle)
    runner = aiohttp.web.AppRunner(app)
    await runner.setup()
    site = aiohttp.web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    yield fake, f"http://127.0.0.1:{port}"
    await runner.cleanup()


async def test_apply_is_a_forced_server_side_apply_by_the_field_manager(
    api: tuple[FakeApi, str],
) -> None:
    fake, url = api
    obj = {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": "qwen-ü", "namespace": "m"},
        "spec": {"ports": [{"port": 8000}]},
    }
    async with KubeClient(KubeConfig(server=url, token="t0k")) as kube:
        await kube.apply(obj, manager="tierwise")
        assert kube.writes[("apply", "Service")] == 1
    (req,) = fake.requests
    assert (req["method"], req["path"]) == ("PATCH", "/api/v1/namespaces/m/services/qwen-ü")
    assert req["query"] == {"fieldManager": "tierwise", "force": "true"}
    assert req["content_type"] == "application/apply-patch+yaml"
    assert req["auth"] == "Bearer t0k"
    assert req["body"] == obj


async def test_status_is_a_merge_patch_on_the_subresource(api: tuple[FakeApi, str]) -> None:
    fake, url = api
    async with KubeClient(KubeConfig(server=url)) as kube:
        await kube.patch_status(MODEL_DEPLOYMENT, "m", "qwen", {"phase": "Ready"})
    (req,) = fake.requests
    assert req["path"] == "/apis/tierwise.dev/v1alpha1/namespaces/m/modeldeployments/qwen/status"
    assert req["content_type"] == "application/merge-patch+json"
    assert req["body"] == {"status": {"phase": "Ready"}}
    assert req["auth"] is None


async def test_reads_write_nothing_and_absence_is_not_an_error(api: tuple[FakeApi, str]) -> None:
    fake, url = api
    fake.answers[("GET", "/apis/apps/v1/namespaces/m/deployments/gone")] = (404, {"message": "nf"})
    fake.answers[("GET", "/apis/monitoring.coreos.com/v1/namespaces/m/podmonitors")] = (404, {})
    fake.answers[("GET", "/api/v1/namespaces/m/services")] = (
        200,
        {"items": [{"metadata": {"name": "a"}}]},
    )
    async with KubeClient(KubeConfig(server=url)) as kube:
        assert await kube.get(DEPLOYMENT, "m", "gone") is None
        assert await kube.list(POD_MONITOR, "m", label_selector="a=b") == []
        (svc,) = await kube.list(SERVICE, "m", label_selector="tierwise.dev/model-deployment=q")
        assert (svc["apiVersion"], svc["kind"]) == ("v1", "Service")
        assert kube.total_writes == 0
    assert fake.requests[-1]["query"] == {"labelSelector": "tierwise.dev/model-deployment=q"}


async def test_delete_propagates_in_the_background_and_tolerates_absence(
    api: tuple[FakeApi, str],
) -> None:
    fake, url = api
    fake.answers[("DELETE", "/apis/apps/v1/namespaces/m/deployments/gone")] = (404, {})
    async with KubeClient(KubeConfig(server=url)) as kube:
        assert await kube.delete(DEPLOYMENT, "m", "here") is True
        assert await kube.delete(DEPLOYMENT, "m", "gone") is False
        assert kube.writes[("delete", "Deployment")] == 2
    assert fake.requests[0]["body"]["propagationPolicy"] == "Background"


async def test_events_name_the_object_and_truncate_long_messages(api: tuple[FakeApi, str]) -> None:
    fake, url = api
    owner = {
        "apiVersion": "tierwise.dev/v1alpha1",
        "kind": "ModelDeployment",
        "metadata": {"name": "qwen", "namespace": "m", "uid": "u-1"},
    }
    async with KubeClient(KubeConfig(server=url)) as kube:
        await kube.post_event(owner, type="Warning", reason="InvalidSpec", message="é" * 5000)
    (req,) = fake.requests
    assert req["path"] == "/api/v1/namespaces/m/events"
    assert req["body"]["involvedObject"]["uid"] == "u-1"
    assert req["body"]["reason"] == "InvalidSpec"
    assert len(req["body"]["message"]) == 1024


@pytest.mark.parametrize(
    ("status", "kind"),
    [
        (409, kopf.TemporaryError),
        (429, kopf.TemporaryError),
        (500, kopf.TemporaryError),
        (503, kopf.TemporaryError),
        (422, kopf.PermanentError),
        (403, kopf.PermanentError),
    ],
)
async def test_api_errors_map_to_kopf_kinds(
    api: tuple[FakeApi, str], status: int, kind: type
) -> None:
    fake, url = api
    fake.answers[("PATCH", "/api/v1/namespaces/m/services/s")] = (status, {"message": "nope"})
    obj = {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "s", "namespace": "m"}}
    async with KubeClient(KubeConfig(server=url)) as kube:
        with pytest.raises(ApiError) as caught:
            await kube.apply(obj, manager="tierwise")
    assert caught.value.status == status
    assert "nope" in str(caught.value)
    assert isinstance(to_kopf(caught.value), kind)


def test_unreachable_api_server_is_temporary() -> None:
    assert isinstance(to_kopf(aiohttp.ClientConnectionError("refused")), kopf.TemporaryError)


def test_kubeconfig_is_read_when_called_not_at_import(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = {
        "apiVersion": "v1",
        "kind": "Config",
        "current-context": "c",
        "clusters": [{"name": "k", "cluster": {"server": "http://127.0.0.1:6443/"}}],
        "users": [{"name": "u", "user": {"token": "s3cr3t"}}],
        "contexts": [{"name": "c", "context": {"cluster": "k", "user": "u", "namespace": "ml"}}],
    }
    path = tmp_path / "kubeconfig"
    path.write_text(yaml.safe_dump(config))
    monkeypatch.setenv("KUBECONFIG", str(path))
    loaded = load_config()
    assert (loaded.server, loaded.token, loaded.namespace) == (
        "http://127.0.0.1:6443",
        "s3cr3t",
        "ml",
    )
