"""An external tier's API key is a Secret volume file; when kubelet swaps in a rotated key
(a new ``..data`` symlink), the router uses it within a second, with default settings, and
no request fails on the way."""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from aiohttp import web
from router_harness import StartRouter, completion, fake_provider, policy

OLD, NEW = "sk-old-0123456789abcdef", "sk-new-fedcba9876543210"


@pytest.fixture
async def provider() -> AsyncIterator[tuple[str, list[tuple[float, str]]]]:
    """A provider that accepts both keys (the old one stays valid during a rotation) and
    records when each request came with which key."""
    seen: list[tuple[float, str]] = []

    async def chat(request: web.Request) -> web.Response:
        key = request.headers.get("Authorization", "").removeprefix("Bearer ")
        seen.append((time.monotonic(), key))
        if key not in (OLD, NEW):
            return web.json_response({"error": {"message": "bad key"}}, status=401)
        return web.json_response(completion("gpt-x"))

    async with fake_provider(chat) as base:
        yield base, seen


def mount_secret(folder: Path, version: str, key: str) -> None:
    """Kubelet's atomic writer: files live in a timestamped folder; ``..data`` points at it
    and is swapped in one rename; ``api-key`` is a symlink through ``..data``."""
    versioned = folder / f"..{version}"
    versioned.mkdir()
    (versioned / "api-key").write_text(key)
    link = folder / "..data_tmp"
    link.symlink_to(versioned.name)
    os.replace(link, folder / "..data")
    if not (folder / "api-key").is_symlink():
        (folder / "api-key").symlink_to("..data/api-key")


async def test_rotated_key_is_used_within_a_second_and_nothing_fails(
    provider: tuple[str, list[tuple[float, str]]], start_router: StartRouter, tmp_path: Path
) -> None:
    base, seen = provider
    secret = tmp_path / "secrets" / "frontier-key"
    secret.mkdir(parents=True)
    mount_secret(secret, "2026_01_01", OLD)
    external = {
        "baseURL": base + "/v1",
        "model": "gpt-x",
        "apiKeySecretRef": {"name": "frontier-key", "key": "api-key"},
    }
    document = policy([{"name": "frontier", "backends": [{"external": external}]}])
    router = start_router(document, {}, "--secrets-dir", str(tmp_path / "secrets"))
    statuses: list[int] = []
    body = {"model": "auto", "messages": [{"role": "user", "content": "hello"}]}
    async with httpx.AsyncClient(timeout=10) as client:

        async def traffic(until: float) -> None:
            while time.monotonic() < until:
                response = await client.post(router.base_url + "/chat/completions", json=body)
                statuses.append(response.status_code)
                await asyncio.sleep(0.01)

        await traffic(time.monotonic() + 0.3)
        rotated_at = time.monotonic()
        mount_secret(secret, "2026_01_02", NEW)
        await traffic(rotated_at + 2.0)
    assert statuses
    assert set(statuses) == {200}
    assert all(key == OLD for at, key in seen if at < rotated_at)
    first_new = next(at for at, key in seen if key == NEW)
    assert first_new - rotated_at < 1.0
    assert all(key == NEW for at, key in seen if at > first_new)
    assert OLD not in router.log()
    assert NEW not in router.log()
