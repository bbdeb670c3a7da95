"""The upstream pool reuses an idle connection only when it is provably still open: not past
the keep-alive limit (the pool's, or one second under the server's ``Keep-Alive:
timeout=``) and with nothing waiting to be read (a healthy idle HTTP/1.1 connection has
nothing to read; a FIN or stray bytes mean the server is done with it). A write on a
connection already closed is :class:`NotSentError` (safe to resend); a connection dropped
after the whole request was written is not."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable

import pytest

from tierwise.router.http.client import (
    ConnectionDroppedError,
    NotSentError,
    Origin,
    UpstreamPool,
)

REQUEST = b"GET / HTTP/1.1\r\nhost: x\r\n\r\n"
OK = b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n%b\r\nok"

Respond = Callable[[asyncio.StreamWriter], None]


class Server:
    def __init__(self, respond: Respond) -> None:
        self.respond = respond
        self.connections = 0
        self.port = 0

    async def serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        try:
            while True:
                await reader.readuntil(b"\r\n\r\n")
                self.respond(writer)
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()


@pytest.fixture
async def serve() -> AsyncIterator[Callable[[Respond], asyncio.Future[Server]]]:
    servers: list[asyncio.Server] = []

    async def start(respond: Respond) -> Server:
        server = Server(respond)
        listening = await asyncio.start_server(server.serve, "127.0.0.1", 0)
        servers.append(listening)
        server.port = listening.sockets[0].getsockname()[1]
        return server

    yield start  # type: ignore[misc]
    for listening in servers:
        listening.close()


async def _exchange(pool: UpstreamPool, origin: Origin) -> None:
    conn = await pool.acquire(origin)
    conn.send(REQUEST)
    assert await conn.read_head() == 200
    assert await conn.read_body() == b"ok"
    pool.release(conn)


async def test_an_open_idle_connection_is_reused(serve) -> None:  # type: ignore[no-untyped-def]
    server = await serve(lambda w: w.write(OK % b""))
    pool = UpstreamPool()
    origin = Origin("http", "127.0.0.1", server.port)
    for _ in range(3):
        await _exchange(pool, origin)
    await pool.close()
    assert server.connections == 1


async def test_the_servers_keep_alive_timeout_is_respected(serve) -> None:  # type: ignore[no-untyped-def]
    server = await serve(lambda w: w.write(OK % b"keep-alive: timeout=1, max=100\r\n"))
    pool = UpstreamPool()
    origin = Origin("http", "127.0.0.1", server.port)
    await _exchange(pool, origin)
    await _exchange(pool, origin)  # idle limit: 1 s - 1 s = 0: never reused
    await pool.close()
    assert server.connections == 2


async def test_the_pools_idle_timeout_is_respected(serve) -> None:  # type: ignore[no-untyped-def]
    server = await serve(lambda w: w.write(OK % b""))
    pool = UpstreamPool(idle_timeout_s=0.05)
    origin = Origin("http", "127.0.0.1", server.port)
    await _exchange(pool, origin)
    await asyncio.sleep(0.1)
    await _exchange(pool, origin)
    await pool.close()
    assert server.connections == 2


async def test_an_idle_connection_with_bytes_waiting_is_dropped(serve) -> None:  # type: ignore[no-untyped-def]
    # stray bytes after the response: the connection is not in a state to reuse
    def respond(writer: asyncio.StreamWriter) -> None:
        writer.write(OK % b"")
        asyncio.get_running_loop().call_later(0.02, writer.write, b"HTTP/1.1 408")

    server = await serve(respond)
    pool = UpstreamPool()
    origin = Origin("http", "127.0.0.1", server.port)
    await _exchange(pool, origin)
    await asyncio.sleep(0.05)
    await _exchange(pool, origin)
    await pool.close()
    assert server.connections == 2


async def test_what_is_safe_to_resend(serve) -> None:  # type: ignore[no-untyped-def]
    server = await serve(lambda w: w.close())  # reads the request, answers nothing
    pool = UpstreamPool()
    origin = Origin("http", "127.0.0.1", server.port)
    conn = await pool.acquire(origin)
    conn.send(REQUEST)
    with pytest.raises(ConnectionDroppedError):  # the server had the request
        await conn.read_head()
    with pytest.raises(NotSentError):  # nothing can be written any more
        conn.send(REQUEST)
    pool.discard(conn)
    await pool.close()
