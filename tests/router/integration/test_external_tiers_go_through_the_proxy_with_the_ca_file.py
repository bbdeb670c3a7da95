"""An external tier is reached like a real client reaches it: through ``HTTPS_PROXY`` (a
CONNECT tunnel, TLS to the provider inside it, verified against the system bundle plus
``--ca-file``), through ``HTTP_PROXY`` for an ``http://`` API (absolute-form requests), and
directly for hosts in ``NO_PROXY``. Self-hosted replicas never go through the proxy. A
provider whose certificate no trusted CA signed is not reached."""

from __future__ import annotations

import asyncio
import contextlib
import ssl
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import pytest
import yaml
from aiohttp import web
from router_harness import RouterProcess, Sims, completion, policy, spawn_router, tier

from tls_support import ca_and_server_certificate

KEY = "sk-test-0123456789abcdef"
BODY = {"model": "auto", "messages": [{"role": "user", "content": "hello"}]}



@dataclass
class Proxy:
    """A tiny forward proxy: CONNECT tunnels, and absolute-form requests rewritten to
    origin-form. Records each request line and its Proxy-Authorization."""

    url: str = ""
    seen: list[tuple[str, str | None]] = field(default_factory=list)

    async def serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        upstream_writer = None
        try:
            head = await reader.readuntil(b"\r\n\r\n")
            lines = head.decode("latin-1").split("\r\n")
            method, target, version = lines[0].split(" ")
            auth = next(
                (
                    v.strip()
                    for n, _, v in (x.partition(":") for x in lines[1:])
                    if n.lower() == "proxy-authorization"
                ),
                None,
            )
            self.seen.append((f"{method} {target}", auth))
            if method == "CONNECT":
                host, _, port = target.rpartition(":")
                upstream_reader, upstream_writer = await asyncio.open_connection(host, int(port))
                writer.write(b"HTTP/1.1 200 Connection established\r\n\r\n")
            else:
                url = urlsplit(target)
                upstream_reader, upstream_writer = await asyncio.open_connection(
                    url.hostname, url.port or 80
                )
                kept = [x for x in lines[1:] if not x.lower().startswith("proxy-")]
                upstream_writer.write(
                    "\r\n".join([f"{method} {url.path} {version}", *kept]).encode("latin-1")
                )
            await asyncio.gather(_pipe(reader, upstream_writer), _pipe(upstream_reader, writer))
        except (OSError, asyncio.IncompleteReadError):
            pass
        finally:
            writer.close()
            if upstream_writer is not None:
                upstream_writer.close()


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    with contextlib.suppress(OSError):
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
    with contextlib.suppress(OSError):
        writer.close()


@contextlib.asynccontextmanager
async def _proxy() -> AsyncIterator[Proxy]:
    proxy = Proxy()
    server = await asyncio.start_server(proxy.serve, "127.0.0.1", 0)
    proxy.url = f"http://user:secret-pw@127.0.0.1:{server.sockets[0].getsockname()[1]}"
    try:
        yield proxy
    finally:
        server.close()


@contextlib.asynccontextmanager
async def _provider(tls: ssl.SSLContext | None) -> AsyncIterator[tuple[str, list[str]]]:
    """An OpenAI-compatible provider (HTTPS with ``tls``); yields its base URL and the
    authorization headers it received."""
    keys: list[str] = []

    async def chat(request: web.Request) -> web.Response:
        keys.append(request.headers.get("Authorization", ""))
        return web.json_response(completion("gpt-x"))

    app = web.Application()
    app.router.add_post("/v1/chat/completions", chat)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0, ssl_context=tls)
    await site.start()
    scheme = "https" if tls else "http"
    try:
        yield f"{scheme}://127.0.0.1:{runner.addresses[0][1]}", keys
    finally:
        await runner.cleanup()


@pytest.fixture
def pems(tmp_path: Path) -> tuple[Path, Path, Path]:
    return ca_and_server_certificate(tmp_path)


@pytest.fixture
def routers() -> Iterator[list[RouterProcess]]:
    started: list[RouterProcess] = []
    yield started
    for router in started:
        router.stop()


def _start(
    folder: Path,
    routers: list[RouterProcess],
    base: str,
    env: dict[str, str],
    *flags: str,
    sims: Sims | None = None,
) -> RouterProcess:
    secret = folder / "secrets" / "frontier-key"
    secret.mkdir(parents=True, exist_ok=True)
    (secret / "api-key").write_text(KEY)
    external = {
        "baseURL": base + "/v1",
        "model": "gpt-x",
        "apiKeySecretRef": {"name": "frontier-key", "key": "api-key"},
    }
    frontier = {"name": "frontier", "backends": [{"external": external}]}
    tiers = [frontier] if sims is None else [tier("small", "small-md", 0.1, 0.2), frontier]
    n = len(routers)
    policy_path, endpoints_path = folder / f"policy{n}.yaml", folder / f"endpoints{n}.yaml"
    policy_path.write_text(yaml.safe_dump(policy(tiers, allowTierPinning=True)))
    endpoints_path.write_text(yaml.safe_dump({"small-md": [sims.small[0].url]} if sims else {}))
    args = [
        "--policy", str(policy_path), "--endpoints", str(endpoints_path),
        "--secrets-dir", str(folder / "secrets"), *flags,
    ]  # fmt: skip
    quiet = {"HTTPS_PROXY": "", "HTTP_PROXY": "", "NO_PROXY": "", "https_proxy": "",
             "http_proxy": "", "no_proxy": "", "TIERWISE_CA_FILE": ""}  # fmt: skip
    router = spawn_router(folder, args, policy_path, endpoints_path, env={**quiet, **env})
    routers.append(router)
    return router


async def _ask(router: RouterProcess, model: str = "auto") -> httpx.Response:
    async with httpx.AsyncClient(timeout=10) as client:
        return await client.post(
            router.base_url + "/chat/completions", json={**BODY, "model": model}
        )


def _server_tls(pems: tuple[Path, Path, Path]) -> ssl.SSLContext:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(pems[1], pems[2])
    return context


async def test_https_api_through_the_proxy_trusting_the_ca_file(
    pems: tuple[Path, Path, Path], routers: list[RouterProcess], tmp_path: Path, sims: Sims
) -> None:
    async with _proxy() as proxy, _provider(_server_tls(pems)) as (base, keys):
        env = {"HTTPS_PROXY": proxy.url, "HTTP_PROXY": proxy.url}
        router = await asyncio.to_thread(
            _start, tmp_path, routers, base, env, "--ca-file", str(pems[0]), sims=sims
        )
        frontier = await _ask(router, "frontier")
        assert frontier.status_code == 200, frontier.text
        assert frontier.headers["x-tierwise-tier"] == "frontier"
        small = await _ask(router, "small")
        assert small.status_code == 200, small.text
        assert small.headers["x-tierwise-tier"] == "small"
    port = urlsplit(base).port
    assert keys  # the provider got the requests, with the router's key, inside TLS
    assert set(keys) == {f"Bearer {KEY}"}
    tunnels = [line for line, _ in proxy.seen if line.startswith("CONNECT")]
    assert tunnels
    assert set(tunnels) == {f"CONNECT 127.0.0.1:{port}"}
    assert all(auth and auth.startswith("Basic ") for _, auth in proxy.seen)
    # the self-hosted replica was reached directly: the proxy saw only the provider
    assert all(line == f"CONNECT 127.0.0.1:{port}" for line, _ in proxy.seen)
    assert "secret-pw" not in router.log()


async def test_without_the_ca_file_the_api_is_not_trusted(
    pems: tuple[Path, Path, Path], routers: list[RouterProcess], tmp_path: Path
) -> None:
    async with _proxy() as proxy, _provider(_server_tls(pems)) as (base, keys):
        router = await asyncio.to_thread(
            _start, tmp_path, routers, base, {"HTTPS_PROXY": proxy.url}
        )
        response = await _ask(router)
    assert response.status_code >= 500
    assert response.json()["error"]["message"]
    assert keys == []  # the key never left the router towards an untrusted peer
    assert proxy.seen  # it did try, through the proxy


async def test_no_proxy_hosts_are_reached_directly(
    pems: tuple[Path, Path, Path], routers: list[RouterProcess], tmp_path: Path
) -> None:
    async with _proxy() as proxy, _provider(_server_tls(pems)) as (base, keys):
        env = {"HTTPS_PROXY": proxy.url, "NO_PROXY": "localhost,127.0.0.0/8"}
        router = await asyncio.to_thread(
            _start, tmp_path, routers, base, env, "--ca-file", str(pems[0])
        )
        response = await _ask(router)
    assert response.status_code == 200, response.text
    assert keys == [f"Bearer {KEY}"]
    assert proxy.seen == []


async def test_http_api_through_http_proxy(routers: list[RouterProcess], tmp_path: Path) -> None:
    async with _proxy() as proxy, _provider(None) as (base, keys):
        router = await asyncio.to_thread(_start, tmp_path, routers, base, {"HTTP_PROXY": proxy.url})
        response = await _ask(router)
    assert response.status_code == 200, response.text
    assert keys == [f"Bearer {KEY}"]
    ((line, auth),) = proxy.seen
    assert line == f"POST {base}/v1/chat/completions"
    assert auth is not None
    assert auth.startswith("Basic ")
