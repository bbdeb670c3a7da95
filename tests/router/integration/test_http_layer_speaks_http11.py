"""The router's own HTTP/1.1 server, over raw sockets: keep-alive, chunked request bodies,
pipelined requests answered in order, ``Connection: close``, ``Expect: 100-continue``,
431 for too many or too large request headers, and a graceful shutdown that lets an
in-flight stream finish."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
from router_harness import policy, sim, tier

from tierwise.api.routing_policy import RoutingPolicy
from tierwise.router.http.server import ServerLimits
from tierwise.router.server import RouterApp, Settings, create_app
from tierwise.router.table import build_table
from tierwise.sim.app import serve_engine

BODY = b'{"model":"auto","messages":[{"role":"user","content":"h\xc3\xa9llo"}],"max_tokens":3}'


@pytest.fixture
async def app() -> AsyncIterator[RouterApp]:
    async with serve_engine(sim("small-md", decode_ms_per_token=20.0)) as url:
        document = policy([tier("small", "small-md", 0.1, 0.2)])
        table = build_table(RoutingPolicy.model_validate(document), {"small-md": [url]})
        app = create_app(table, Settings(port=0, shutdown_grace_s=5))
        async with app.running():
            yield app


async def _exchange(app: RouterApp, payload: bytes) -> bytes:
    reader, writer = await asyncio.open_connection("127.0.0.1", app.port)
    writer.write(payload)
    await writer.drain()
    data = await asyncio.wait_for(reader.read(), 10)  # until the server closes
    writer.close()
    await writer.wait_closed()
    return data


def _post(body: bytes, *extra: bytes, close: bool = False) -> bytes:
    head = [b"POST /v1/chat/completions HTTP/1.1", b"host: x", *extra]
    if close:
        head.append(b"connection: close")
    if not any(h.lower().startswith(b"transfer-encoding") for h in extra):
        head.append(b"content-length: %d" % len(body))
    return b"\r\n".join(head) + b"\r\n\r\n" + body


@pytest.mark.parametrize("pieces", [1, 2, 7])
async def test_chunked_request_body(app: RouterApp, pieces: int) -> None:
    size = -(-len(BODY) // pieces)
    parts = [BODY[i : i + size] for i in range(0, len(BODY), size)]
    chunked = b"".join(b"%x\r\n%b\r\n" % (len(p), p) for p in parts) + b"0\r\n\r\n"
    data = await _exchange(app, _post(chunked, b"transfer-encoding: chunked", close=True))
    assert data.startswith(b"HTTP/1.1 200 OK\r\n")
    assert b"x-tierwise-tier: small" in data


@pytest.mark.parametrize("count", [2, 5])
async def test_pipelined_requests_are_answered_in_order(app: RouterApp, count: int) -> None:
    requests = [_post(BODY) for _ in range(count - 1)] + [
        b"GET /v1/models HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n"
    ]
    data = await _exchange(app, b"".join(requests))
    assert data.count(b"HTTP/1.1 200 OK") == count
    assert data.rfind(b"chat.completion") < data.find(b'"object":"list"')
    assert data.count(b"connection: close") == 1


async def test_keep_alive_serves_many_requests_on_one_connection(app: RouterApp) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", app.port)
    for _ in range(3):
        writer.write(_post(BODY))
        head = await reader.readuntil(b"\r\n\r\n")
        length = int(head.lower().split(b"content-length: ")[1].split(b"\r\n")[0])
        body = await reader.readexactly(length)
        assert head.startswith(b"HTTP/1.1 200")
        assert b"chat.completion" in body
    writer.close()
    await writer.wait_closed()


async def test_expect_100_continue(app: RouterApp) -> None:
    data = await _exchange(app, _post(BODY, b"expect: 100-continue", close=True))
    assert data.startswith(b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK")


@pytest.mark.parametrize(
    "garbage",
    [
        b"\x00\x01\x02\r\n\r\n",
        b"GET / HTTP/9.9\r\n\r\n",
        b"POST /v1 HTTP/1.1\r\ncontent-length: nope\r\n\r\n",
    ],
)
async def test_malformed_http_gets_400_and_close(app: RouterApp, garbage: bytes) -> None:
    data = await _exchange(app, garbage)
    assert data.startswith(b"HTTP/1.1 400 Bad Request")
    assert b'"invalid_request_error"' in data


async def test_shutdown_drains_an_in_flight_stream() -> None:
    async with serve_engine(sim("small-md", decode_ms_per_token=30.0)) as url:
        document = policy([tier("small", "small-md", 0.1, 0.2)])
        table = build_table(RoutingPolicy.model_validate(document), {"small-md": [url]})
        app = create_app(table, Settings(port=0, shutdown_grace_s=5))
        body = b'{"model":"auto","stream":true,"max_tokens":20,"ignore_eos":true,"prompt":"x"}'
        async with app.running():
            reader, writer = await asyncio.open_connection("127.0.0.1", app.port)
            writer.write(_post(body).replace(b"/v1/chat/completions", b"/v1/completions"))
            await reader.readuntil(b"data: ")  # the stream has started
        # leaving running() waited for the stream: it ended properly, not cut off
        rest = await reader.read()
        writer.close()
        await writer.wait_closed()
    assert rest.count(b"data: ") >= 20
    assert rest.endswith(b"data: [DONE]\n\n\r\n0\r\n\r\n")


def _headers(count: int, size: int = 8) -> list[bytes]:
    return [b"x-h%d: %b" % (i, b"v" * size) for i in range(count)]


@pytest.mark.parametrize("extra", [0, 1, 50])
async def test_too_many_headers_get_431(app: RouterApp, extra: int) -> None:
    """The default limit: host and content-length plus the rest must stay within it."""
    allowed = ServerLimits().max_headers - 2
    ok = await _exchange(app, _post(BODY, *_headers(allowed - 1), close=True))
    assert ok.startswith(b"HTTP/1.1 200 OK"), ok[:200]
    data = await _exchange(app, _post(BODY, *_headers(allowed + extra), close=True))
    assert data.startswith(b"HTTP/1.1 431 Request Header Fields Too Large\r\n")
    assert b'"headers_too_large"' in data
    assert b"connection: close" in data


async def test_header_limits_are_configurable() -> None:
    async with serve_engine(sim("small-md")) as url:
        document = policy([tier("small", "small-md", 0.1, 0.2)])
        table = build_table(RoutingPolicy.model_validate(document), {"small-md": [url]})
        limits = ServerLimits(max_headers=6, max_head_bytes=1024)
        app = create_app(table, Settings(port=0, limits=limits))
        async with app.running():
            fits = await _exchange(app, _post(BODY, *_headers(3, 100), close=True))
            many = await _exchange(app, _post(BODY, *_headers(4), close=True))
            big = await _exchange(app, _post(BODY, *_headers(2, 600), close=True))
    assert fits.startswith(b"HTTP/1.1 200 OK")  # 3 + host, content-length, connection
    assert many.startswith(b"HTTP/1.1 431 ")
    assert big.startswith(b"HTTP/1.1 431 ")
