"""``spec.router.auth``: the model endpoints answer only callers with an accepted key.

The accepted keys come from the mounted Secret file ``{secrets_dir}/{name}/{key}``; a
missing or wrong ``Authorization: Bearer`` key gets the OpenAI 401 ``invalid_api_key``
error (which the official client raises as ``AuthenticationError``), counted in
``tierwise_router_auth_failures_total``; health, readiness and metrics stay open; a key
file change is picked up with the table; a key never appears in an answer or a log line.
"""

from __future__ import annotations

import asyncio
import logging
import os
import urllib.error
import urllib.request
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import openai
import orjson
import pytest
from router_harness import StartRouter, policy, sim, tier

from tierwise.api.routing_policy import RoutingPolicy
from tierwise.router.auth import AuthConfigError
from tierwise.router.server import RouterApp, Settings, TableSource, create_app
from tierwise.router.table import RoutingTable, build_table
from tierwise.sim.app import serve_engine

GOOD = "sk-good-0123456789"
OTHER = "sk-other-ünïcødé-键"
AUTH = {"auth": {"apiKeysSecretRef": {"name": "router-clients", "key": "keys"}}}
CHAT = b'{"model":"auto","messages":[{"role":"user","content":"hi"}],"max_tokens":2}'


def _table(url: str, *, auth: bool = True) -> RoutingTable:
    document = policy([tier("small", "small-md", 0.1, 0.2)], **({"router": AUTH} if auth else {}))
    return build_table(RoutingPolicy.model_validate(document), {"small-md": [url]})


def _write_keys(secrets: Path, text: str) -> Path:
    path = secrets / "router-clients" / "keys"
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)  # a new inode, as a Secret volume update makes
    return path


@dataclass
class Guarded:
    app: RouterApp
    secrets: Path
    url: str


@pytest.fixture
async def guarded(tmp_path: Path) -> AsyncIterator[Guarded]:
    _write_keys(tmp_path, f"\n  {GOOD}  \n{OTHER}\n\n")
    async with serve_engine(sim("small-md")) as url:
        settings = Settings(port=0, shutdown_grace_s=2, secrets_dir=str(tmp_path))
        app = create_app(_table(url), settings)
        async with app.running():
            yield Guarded(app, tmp_path, url)


async def _request(port: int, head: bytes, body: bytes = b"") -> tuple[bytes, bytes]:
    """One raw HTTP/1.1 exchange (header values as raw bytes, Unicode included)."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    length = b"content-length: %d\r\n" % len(body) if body else b""
    writer.write(head + b"\r\nhost: x\r\nconnection: close\r\n" + length + b"\r\n" + body)
    data = await asyncio.wait_for(reader.read(), 10)
    writer.close()
    await writer.wait_closed()
    status_head, _, payload = data.partition(b"\r\n\r\n")
    return status_head, payload


def _bearer(key: str) -> bytes:
    return b"\r\nauthorization: Bearer " + key.encode("utf-8")


@pytest.mark.parametrize("key", [GOOD, OTHER])
@pytest.mark.parametrize(
    ("path", "method", "body"),
    [
        (b"/v1/chat/completions", b"POST", CHAT),
        (b"/v1/completions", b"POST", b'{"model":"auto","prompt":"hi","max_tokens":2}'),
        (b"/v1/models", b"GET", b""),
    ],
)
async def test_an_accepted_key_is_served(
    guarded: Guarded, key: str, path: bytes, method: bytes, body: bytes
) -> None:
    head, _ = await _request(
        guarded.app.port, method + b" " + path + b" HTTP/1.1" + _bearer(key), body
    )
    assert head.startswith(b"HTTP/1.1 200"), head


@pytest.mark.parametrize(
    ("authorization", "reason"),
    [
        (b"", "missing"),
        (b"\r\nauthorization: ", "missing"),
        (b"\r\nauthorization: Bearer ", "invalid"),
        (b"\r\nauthorization: Bearer sk-wrong", "invalid"),
        (b"\r\nauthorization: Basic " + GOOD.encode(), "invalid"),
        (b"\r\nauthorization: Bearer " + GOOD.encode() + b"x", "invalid"),
        (b"\r\nauthorization: Bearer " + "sk-ünïcødé".encode(), "invalid"),
    ],
)
async def test_a_missing_or_wrong_key_gets_openai_401(
    guarded: Guarded, authorization: bytes, reason: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    before = dict(guarded.app.metrics.auth_failures)
    head, payload = await _request(
        guarded.app.port, b"POST /v1/chat/completions HTTP/1.1" + authorization, CHAT
    )
    assert head.startswith(b"HTTP/1.1 401 Unauthorized")
    assert b"www-authenticate: Bearer" in head
    error = orjson.loads(payload)["error"]
    assert (error["type"], error["code"]) == ("invalid_request_error", "invalid_api_key")
    after = guarded.app.metrics.auth_failures
    assert after[reason] == before[reason] + 1
    sent = authorization.partition(b": ")[2].split(b" ", 1)[-1]
    for text in (head + payload, caplog.text.encode(), str(guarded.app.access).encode()):
        assert GOOD.encode() not in text
        assert OTHER.encode() not in text
        assert not sent.strip() or sent not in text


@pytest.mark.parametrize("path", [b"/healthz", b"/readyz", b"/metrics"])
async def test_health_and_metrics_stay_open(guarded: Guarded, path: bytes) -> None:
    head, payload = await _request(guarded.app.port, b"GET " + path + b" HTTP/1.1")
    assert head.startswith(b"HTTP/1.1 200"), head
    if path == b"/metrics":
        assert b'tierwise_router_auth_failures_total{reason="missing"}' in payload


async def test_official_client_raises_authentication_error(guarded: Guarded) -> None:
    base = f"http://127.0.0.1:{guarded.app.port}/v1"
    async with openai.AsyncOpenAI(base_url=base, api_key="sk-nope", max_retries=0) as client:
        with pytest.raises(openai.AuthenticationError) as raised:
            await client.chat.completions.create(
                model="auto", messages=[{"role": "user", "content": "hi"}]
            )
        assert raised.value.code == "invalid_api_key"
        assert "sk-nope" not in str(raised.value)
    async with openai.AsyncOpenAI(base_url=base, api_key=GOOD, max_retries=0) as client:
        stream = await client.chat.completions.create(
            model="auto", messages=[{"role": "user", "content": "hi"}], stream=True
        )
        chunks = [chunk async for chunk in stream]
        assert chunks


async def test_keys_are_read_again_when_the_file_changes(tmp_path: Path) -> None:
    _write_keys(tmp_path, GOOD + "\n")
    async with serve_engine(sim("small-md")) as url:
        table = _table(url)
        source = TableSource(lambda: table, lambda: 0)  # the table itself never changes
        settings = Settings(
            port=0, shutdown_grace_s=2, secrets_dir=str(tmp_path), watch_interval_s=0.05
        )
        app = create_app(table, settings)
        async with app.running(source):
            _write_keys(tmp_path, OTHER + "\n")
            for _ in range(100):
                if app.metrics.reloads["ok"]:
                    break
                await asyncio.sleep(0.05)
            chat = b"POST /v1/chat/completions HTTP/1.1"
            new, _ = await _request(app.port, chat + _bearer(OTHER), CHAT)
            old, _ = await _request(app.port, chat + _bearer(GOOD), CHAT)
            assert new.startswith(b"HTTP/1.1 200")
            assert old.startswith(b"HTTP/1.1 401")
            # an emptied key file is rejected: the keys in use stay
            _write_keys(tmp_path, "\n \n")
            for _ in range(100):
                if app.metrics.reloads["error"]:
                    break
                await asyncio.sleep(0.05)
            kept, _ = await _request(app.port, chat + _bearer(OTHER), CHAT)
            assert kept.startswith(b"HTTP/1.1 200")


async def test_auth_is_off_without_spec_router_auth(tmp_path: Path) -> None:
    async with serve_engine(sim("small-md")) as url:
        app = create_app(_table(url, auth=False), Settings(port=0, shutdown_grace_s=2))
        async with app.running():
            head, _ = await _request(app.port, b"POST /v1/chat/completions HTTP/1.1", CHAT)
            assert head.startswith(b"HTTP/1.1 200")
            assert app.access is None


@pytest.mark.parametrize("secrets_dir", [None, "missing-folder"])
async def test_a_router_that_cannot_read_its_keys_does_not_start(
    tmp_path: Path, secrets_dir: str | None
) -> None:
    folder = None if secrets_dir is None else str(tmp_path / secrets_dir)
    async with serve_engine(sim("small-md")) as url:
        app = create_app(_table(url), Settings(port=0, secrets_dir=folder))
        with pytest.raises(AuthConfigError, match="router-clients"):
            async with app.running():
                pass


def test_router_process_reads_keys_from_secrets_dir(
    start_router: StartRouter, tmp_path: Path
) -> None:
    secrets = tmp_path / "secrets"
    _write_keys(secrets, GOOD + "\n")
    document = policy([tier("small", "small-md", 0.1, 0.2)], router=AUTH)
    router = start_router(document, {"small-md": []}, "--secrets-dir", str(secrets))
    request = urllib.request.Request(router.url + "/v1/models")
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(request, timeout=5)
    assert refused.value.code == 401
    refused.value.close()
    request.add_header("Authorization", f"Bearer {GOOD}")
    with urllib.request.urlopen(request, timeout=5) as response:
        assert response.status == 200
    assert router.metric("tierwise_router_auth_failures_total", reason="missing") == 1
    assert GOOD not in router.log()
