"""The same bare proxy on three HTTP server stacks, for bench/router_overhead.py.

Why it exists: the router's hand-written HTTP/1.1 server (router/http/server.py) is kept
only where it costs clearly less CPU than a standard ASGI server. To compare the servers
and nothing else, each stack runs the same handler: read the request body, forward it
unchanged to the next upstream (round-robin) over tierwise's pooled upstream client
(router/http/client.py), and relay the answer — whole, or streamed as it arrives. No
routing, no metrics, no token counting: the router's own work is measured by the
``tierwise`` targets of the benchmark.

* ``raw``: tierwise's hand-written server (asyncio Protocol + httptools on uvloop); the
  streamed body goes to the client synchronously from the upstream's read callback.
* ``uvicorn``: a bare ASGI callable on uvicorn (``http="httptools"``, ``loop="uvloop"``,
  no lifespan, no access log); streamed pieces reach ``send`` through a task hop.
* ``granian``: the same ASGI callable on granian (Rust HTTP, one worker, uvloop).

Bench-only code (uvicorn and granian are in the ``bench`` extra, not runtime deps)::

    python bench/server_stacks.py {raw,uvicorn,granian} --port P http://127.0.0.1:U1 ...
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import os
import sys
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

import uvloop

from tierwise.router.http.client import UpstreamConnection, UpstreamPool
from tierwise.router.http.server import HttpServer, Request, ResponseWriter, ServerLimits
from tierwise.router.upstream import make_origin

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
UPSTREAMS_ENV = "TIERWISE_BENCH_UPSTREAMS"


class Forwarder:
    """Round-robin over the upstreams with one pooled client; shared by the three stacks."""

    def __init__(self, upstreams: list[str]) -> None:
        self.pool = UpstreamPool()
        self._origins = itertools.cycle([make_origin(u) for u in upstreams])

    async def open(self, path: bytes, body: bytes) -> UpstreamConnection:
        origin = next(self._origins)
        conn = await self.pool.acquire(origin)
        conn.send(
            b"POST %b HTTP/1.1\r\nhost: %b\r\ncontent-type: application/json\r\n"
            b"content-length: %d\r\n\r\n%b" % (path, origin.host_header.encode(), len(body), body)
        )
        await conn.read_head()
        return conn

    def done(self, conn: UpstreamConnection) -> None:
        self.pool.release(conn)


def _content_type(conn: UpstreamConnection) -> bytes:
    return conn.header(b"content-type") or b"application/json"


# -- the hand-written server -------------------------------------------------------------
def raw_handler(fwd: Forwarder) -> Callable[[Request, ResponseWriter], Awaitable[None]]:
    async def handle(request: Request, writer: ResponseWriter) -> None:
        conn = await fwd.open(request.path.encode("latin-1"), request.body)
        block = b"content-type: %b\r\n" % _content_type(conn)
        if b"event-stream" not in block:
            writer.send_block(conn.status, block, await conn.read_body())
        else:
            writer.start_block(conn.status, block, hold=True)
            conn.set_sink(writer.write)
            writer.flush()
            await conn.wait_done()
            writer.end()
        fwd.done(conn)

    return handle


async def serve_raw(port: int, upstreams: list[str]) -> None:
    def error(writer: ResponseWriter, status: int, message: str) -> None:
        writer.send(status, [("content-type", "text/plain")], message.encode())

    server = HttpServer(raw_handler(Forwarder(upstreams)), error, ServerLimits())
    await server.start("127.0.0.1", port)
    await asyncio.Event().wait()


# -- a bare ASGI callable (uvicorn, granian) --------------------------------------------
class AsgiProxy:
    """The same proxy as an ASGI 3 application; the pool is made on the first request
    (inside the server's running loop)."""

    def __init__(self, upstreams: list[str]) -> None:
        self._upstreams = upstreams
        self._fwd: Forwarder | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return
        if self._fwd is None:
            self._fwd = Forwarder(self._upstreams)
        chunks = []
        while True:
            message = await receive()
            chunks.append(message.get("body", b""))
            if not message.get("more_body"):
                break
        conn = await self._fwd.open(scope["path"].encode("latin-1"), b"".join(chunks))
        kind = _content_type(conn)
        headers = [(b"content-type", kind)]
        if b"event-stream" not in kind:
            body = await conn.read_body()
            headers.append((b"content-length", b"%d" % len(body)))
            await send({"type": "http.response.start", "status": conn.status, "headers": headers})
            await send({"type": "http.response.body", "body": body})
        else:
            await send({"type": "http.response.start", "status": conn.status, "headers": headers})
            await _relay(conn, send)
        self._fwd.done(conn)


async def _relay(conn: UpstreamConnection, send: Send) -> None:
    """Pieces arrive in the upstream's read callback; ``send`` must be awaited, so a task
    waits for them (every piece that queued up meanwhile goes out in one ``send``)."""
    pending: list[bytes] = []
    wake = asyncio.Event()

    def sink(data: bytes) -> None:
        pending.append(data)
        wake.set()

    conn.set_sink(sink)
    done = asyncio.ensure_future(conn.wait_done())
    while True:
        if not pending:
            waiter = asyncio.ensure_future(wake.wait())
            await asyncio.wait((waiter, done), return_when=asyncio.FIRST_COMPLETED)
            waiter.cancel()
        wake.clear()
        if pending:
            data = b"".join(pending)
            pending.clear()
            await send({"type": "http.response.body", "body": data, "more_body": True})
        elif done.done():
            break
    await send({"type": "http.response.body", "body": b"", "more_body": False})


def app_from_env() -> AsgiProxy:
    """For granian, which imports its target: upstreams from the environment."""
    return AsgiProxy(os.environ[UPSTREAMS_ENV].split(","))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("stack", choices=["raw", "uvicorn", "granian"])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("upstreams", nargs="+")
    args = parser.parse_args()
    if args.stack == "raw":
        uvloop.run(serve_raw(args.port, args.upstreams))
    elif args.stack == "uvicorn":
        import uvicorn

        uvicorn.run(
            AsgiProxy(args.upstreams),
            host="127.0.0.1",
            port=args.port,
            loop="uvloop",
            http="httptools",
            lifespan="off",
            access_log=False,
            log_level="warning",
        )
    else:
        from granian import Granian

        os.environ[UPSTREAMS_ENV] = ",".join(args.upstreams)
        sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
        Granian(
            "server_stacks:app_from_env",
            factory=True,
            interface="asgi",
            address="127.0.0.1",
            port=args.port,
            workers=1,
            loop="uvloop",
            log_level="warning",
        ).serve()
    return 0


if __name__ == "__main__":
    sys.exit(main())
