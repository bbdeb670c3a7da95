"""An external tier gets ``Authorization: Bearer <key>`` from its mounted Secret file; the
key never reaches the client (headers, bodies, errors — also when the provider echoes it),
the metrics, or the router's log at debug level."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import orjson
import pytest
from aiohttp import web
from router_harness import StartRouter, completion, fake_provider, policy

KEY = "sk-test-S3CRET-0123456789abcdefXYZ"


@pytest.fixture
async def provider() -> AsyncIterator[tuple[str, list[str], dict[str, int]]]:
    """A fake provider at ``BASE/v1``; ``mode["status"]`` picks its answer's status."""
    seen: list[str] = []
    mode = {"status": 200}

    async def chat(request: web.Request) -> web.Response:
        seen.append(request.headers.get("Authorization", ""))
        body = await request.json()
        status = mode["status"]
        if status != 200:  # providers echo (masked or not) keys in errors
            error = {"error": {"message": f"key {KEY} (…{KEY[-8:]}) refused", "code": status}}
            return web.json_response(error, status=status)
        return web.json_response(completion(body["model"]))

    async with fake_provider(chat) as base:
        yield base, seen, mode


@pytest.mark.parametrize(
    ("upstream_status", "client_status"),
    [(200, 200), (400, 400), (401, 502), (403, 502), (500, 502), (503, 503)],
)
async def test_key_is_sent_upstream_and_nowhere_else(
    provider: tuple[str, list[str], dict[str, int]],
    start_router: StartRouter,
    tmp_path: Path,
    upstream_status: int,
    client_status: int,
) -> None:
    base, seen, mode = provider
    secrets = tmp_path / "secrets"
    (secrets / "frontier-key").mkdir(parents=True)
    (secrets / "frontier-key" / "api-key").write_text(KEY + "\n")
    external = {
        "baseURL": base + "/v1",
        "model": "gpt-x",
        "apiKeySecretRef": {"name": "frontier-key", "key": "api-key"},
    }
    document = policy(
        [
            {
                "name": "frontier",
                "backends": [{"external": external}],
                "price": {"inputPerMillionTokens": 5, "outputPerMillionTokens": 15},
            }
        ],
        fallback={"maxAttempts": 1},
    )
    router = start_router(document, {}, "--secrets-dir", str(secrets), "--log-level", "debug")
    mode["status"] = upstream_status
    async with httpx.AsyncClient() as client:
        response = await client.post(
            router.base_url + "/chat/completions",
            json={"model": "auto", "messages": [{"role": "user", "content": "hello"}]},
        )
        metrics = (await client.get(router.url + "/metrics")).text
    assert seen == [f"Bearer {KEY}"]
    assert response.status_code == client_status
    assert response.headers["x-tierwise-backend"] == "external:gpt-x"
    if client_status == 200:
        assert orjson.loads(response.content)["model"] == "gpt-x"
    else:
        assert "error" in response.json()
    exposed = [response.text, str(response.headers), metrics, router.log()]
    for text in exposed:
        assert KEY not in text
        assert KEY[-8:] not in text


def test_unreadable_key_file_stops_the_start(start_router: StartRouter, tmp_path: Path) -> None:
    external = {
        "baseURL": "http://127.0.0.1:9/v1",
        "model": "gpt-x",
        "apiKeySecretRef": {"name": "missing", "key": "api-key"},
    }
    document = policy([{"name": "frontier", "backends": [{"external": external}]}])
    with pytest.raises(RuntimeError, match="cannot read API key file") as caught:
        start_router(document, {}, "--secrets-dir", str(tmp_path))
    assert "Traceback" not in str(caught.value)
