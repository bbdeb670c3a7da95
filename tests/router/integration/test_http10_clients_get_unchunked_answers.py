"""HTTP/1.0 clients cannot read chunked transfer coding: the router answers them with
``Connection: close``, a Content-Length body or, for a stream, raw bytes ended by closing
the connection; HTTP/1.1 clients keep chunked streams and keep-alive. Raw sockets."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import orjson
import pytest
from router_harness import policy, sim, tier

from tierwise.api.routing_policy import RoutingPolicy
from tierwise.router.server import RouterApp, Settings, create_app
from tierwise.router.table import build_table
from tierwise.sim.app import serve_engine

MESSAGE = [{"role": "user", "content": "héllo 世界"}]


@pytest.fixture
async def app() -> AsyncIterator[RouterApp]:
    async with serve_engine(sim("small-md", decode_ms_per_token=2.0)) as url:
        document = policy([tier("small", "small-md", 0.1, 0.2)])
        table = build_table(RoutingPolicy.model_validate(document), {"small-md": [url]})
        app = create_app(table, Settings(port=0, shutdown_grace_s=2))
        async with app.running():
            yield app


async def _exchange(port: int, request: bytes) -> tuple[str, dict[str, str], bytes]:
    """Send ``request`` and read until the server closes (fails after 10 s otherwise)."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(request)
    await writer.drain()
    data = await asyncio.wait_for(reader.read(), 10)
    writer.close()
    await writer.wait_closed()
    head, _, body = data.partition(b"\r\n\r\n")
    status, *lines = head.decode("latin-1").split("\r\n")
    headers = {k.lower(): v.strip() for k, _, v in (line.partition(":") for line in lines)}
    return status, headers, body


def _post(version: bytes, body: dict[str, object], *extra: bytes) -> bytes:
    payload = orjson.dumps(body)
    head = [b"POST /v1/chat/completions " + version, b"host: x", *extra]
    head.append(b"content-length: %d" % len(payload))
    return b"\r\n".join(head) + b"\r\n\r\n" + payload


@pytest.mark.parametrize("extra", [(), (b"connection: keep-alive",)])
async def test_a_whole_answer_has_content_length_and_closes(
    app: RouterApp, extra: tuple[bytes, ...]
) -> None:
    request = _post(b"HTTP/1.0", {"model": "auto", "messages": MESSAGE, "max_tokens": 4}, *extra)
    status, headers, body = await _exchange(app.port, request)
    assert status.split(" ")[1] == "200"
    assert "transfer-encoding" not in headers
    assert headers["connection"] == "close"
    assert int(headers["content-length"]) == len(body)
    assert orjson.loads(body)["object"] == "chat.completion"


@pytest.mark.parametrize("max_tokens", [1, 16])
@pytest.mark.parametrize("extra", [(), (b"connection: keep-alive",)])
async def test_a_stream_is_sent_raw_until_the_connection_closes(
    app: RouterApp, max_tokens: int, extra: tuple[bytes, ...]
) -> None:
    body = {"model": "auto", "messages": MESSAGE, "max_tokens": max_tokens, "stream": True}
    status, headers, payload = await _exchange(app.port, _post(b"HTTP/1.0", body, *extra))
    assert status.split(" ")[1] == "200"
    assert "transfer-encoding" not in headers
    assert "content-length" not in headers
    assert headers["connection"] == "close"
    events = [e for e in payload.split(b"\n\n") if e.strip()]
    assert events[-1] == b"data: [DONE]"
    assert all(e.startswith(b"data: ") for e in events)  # no chunk-size lines between them
    chunks = [orjson.loads(e[6:]) for e in events[:-1]]
    assert chunks[0]["object"] == "chat.completion.chunk"


@pytest.mark.parametrize(
    ("path", "status"), [(b"/v1/models", "200"), (b"/healthz", "200"), (b"/nope", "404")]
)
async def test_other_answers_to_http10_close_too(app: RouterApp, path: bytes, status: str) -> None:
    request = b"GET " + path + b" HTTP/1.0\r\nconnection: keep-alive\r\n\r\n"
    got, headers, body = await _exchange(app.port, request)
    assert got.split(" ")[1] == status
    assert headers["connection"] == "close"
    assert int(headers["content-length"]) == len(body)


@pytest.mark.parametrize("body", [b"{not json", '{"model": "模型"}'.encode()])
async def test_an_error_to_http10_has_content_length(app: RouterApp, body: bytes) -> None:
    request = b"POST /v1/chat/completions HTTP/1.0\r\ncontent-length: %d\r\n\r\n%b" % (
        len(body),
        body,
    )
    status, headers, payload = await _exchange(app.port, request)
    assert status.split(" ")[1] in ("400", "404")
    assert headers["connection"] == "close"
    assert int(headers["content-length"]) == len(payload)
    assert "error" in orjson.loads(payload)


async def test_http11_streams_stay_chunked_and_alive(app: RouterApp) -> None:
    body = {"model": "auto", "messages": MESSAGE, "max_tokens": 4, "stream": True}
    reader, writer = await asyncio.open_connection("127.0.0.1", app.port)
    for _ in range(2):  # the same connection serves a second stream
        writer.write(_post(b"HTTP/1.1", body))
        head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 10)
        assert b"transfer-encoding: chunked" in head
        assert b"connection: close" not in head
        tail = await asyncio.wait_for(reader.readuntil(b"0\r\n\r\n"), 10)
        assert b"data: [DONE]" in tail
    writer.close()
    await writer.wait_closed()
