"""Pooled keep-alive HTTP/1.1 connections to upstreams (engines and external APIs).

Why it exists: connecting per request costs a round trip and a socket; a general client
session costs tens of microseconds of Python per request. An :class:`UpstreamConnection`
is an asyncio Protocol with ``httptools``' response parser: the caller writes the whole
request as bytes, awaits the response head, then either collects the body or installs a
*sink* that receives the body synchronously as it arrives (the streaming relay), with no
task hop: all the pieces parsed from one socket read go to the sink as one piece.

A connection goes back to the pool only after a complete response that allows
keep-alive; anything else (error, cancellation, client gone) closes it. A reused
connection that the server had already closed fails with :class:`StaleConnectionError`, which
callers retry once on a fresh connection (the request never reached the server).
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import ssl
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import cast

import httptools

Sink = Callable[[bytes], None]


class UpstreamError(Exception):
    """The upstream did not deliver a complete response."""


class ConnectError(UpstreamError):
    """No connection could be opened (refused, unreachable, timed out)."""


class ConnectionDroppedError(UpstreamError):
    """The connection closed or broke before the response was complete."""


class StaleConnectionError(ConnectionDroppedError):
    """A pooled connection closed before any response byte: safe to resend once."""


class UpstreamTimeoutError(UpstreamError):
    """The upstream did not finish its answer before the deadline."""


@dataclass(frozen=True, slots=True)
class Origin:
    """Where to connect: scheme, host, port (the pool key)."""

    scheme: str
    host: str
    port: int

    @property
    def host_header(self) -> str:
        default = 443 if self.scheme == "https" else 80
        return self.host if self.port == default else f"{self.host}:{self.port}"


class UpstreamConnection(asyncio.Protocol):
    """One upstream connection; serves one request at a time."""

    def __init__(self, origin: Origin, loop: asyncio.AbstractEventLoop) -> None:
        self.origin = origin
        self._loop = loop
        self._parser = httptools.HttpResponseParser(self)
        self.transport: asyncio.Transport | None = None
        self.status = 0
        self.headers: list[tuple[bytes, bytes]] = []
        self._chunks: list[bytes] = []
        self._sink: Sink | None = None
        self._head: asyncio.Future[None] = loop.create_future()
        self._done: asyncio.Future[None] = loop.create_future()
        self.complete = False
        self.keep_alive = False
        self.reused = False
        self.received = False
        self._until_close = False
        self.deadline = float("inf")

    # -- request side ------------------------------------------------------------------
    def send(self, data: bytes) -> None:
        if self.transport is None or self.transport.is_closing():
            error = StaleConnectionError if self.reused else ConnectionDroppedError
            raise error("connection closed")
        self.transport.write(data)

    async def read_head(self) -> int:
        """Wait for the status line and headers; return the status."""
        await self._head
        return self.status

    def header(self, name: bytes) -> bytes | None:
        for key, value in self.headers:
            if key.lower() == name:
                return value
        return None

    async def read_body(self) -> bytes:
        """Wait for the whole body (after :meth:`read_head`)."""
        await self._done
        chunks = self._chunks
        return chunks[0] if len(chunks) == 1 else b"".join(chunks)

    def set_sink(self, sink: Sink) -> None:
        """Deliver body pieces to ``sink`` as they arrive: what was already received now,
        then, per read from the socket, everything parsed from it as one piece."""
        self._sink = sink
        self._deliver()

    async def wait_done(self) -> None:
        await self._done

    def pause_reading(self, paused: bool) -> None:
        if self.transport is not None and not self.transport.is_closing():
            if paused:
                self.transport.pause_reading()
            else:
                self.transport.resume_reading()

    def reset_for_reuse(self) -> None:
        self.status = 0
        self.headers = []
        self._chunks = []
        self._sink = None
        self._head = self._loop.create_future()
        self._done = self._loop.create_future()
        self.complete = self.received = self._until_close = False
        self.reused = True

    def close(self) -> None:
        if self.transport is not None:
            self.transport.abort()
            self.transport = None
        self._fail(ConnectionDroppedError("connection closed by the router"))

    def expire(self, timeout_s: float) -> None:
        """The deadline passed: fail the waiting caller and drop the connection."""
        self._fail(UpstreamTimeoutError(f"no complete answer within {timeout_s:g}s"))
        self.close()

    # -- protocol ----------------------------------------------------------------------
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's is not a subclass
        sock = transport.get_extra_info("socket")
        if sock is not None:
            with contextlib.suppress(OSError):
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def data_received(self, data: bytes) -> None:
        self.received = True
        try:
            self._parser.feed_data(data)
        except httptools.HttpParserError as exc:
            self._deliver()
            self._fail(ConnectionDroppedError(f"malformed upstream response: {exc}"))
            self.close()
            return
        self._deliver()

    def _deliver(self) -> None:
        """Hand the sink every body piece parsed from one read, joined: an engine's events
        that queued up in the socket arrive in one read as many chunked-encoding chunks,
        and relaying them piece by piece cost one client write (a syscall, and the
        loopback peer's receive work) each. Joining them costs no delay: the sink still
        gets them in the same event-loop callback that read them."""
        chunks = self._chunks
        if self._sink is not None and chunks:
            self._chunks = []
            try:
                self._sink(chunks[0] if len(chunks) == 1 else b"".join(chunks))
            except Exception as exc:  # the relay broke: end this answer, not the event loop
                self._fail(ConnectionDroppedError(f"relaying the answer failed: {exc!r}"))
                self.close()

    def eof_received(self) -> bool | None:
        return None

    def connection_lost(self, exc: Exception | None) -> None:
        self.transport = None
        if self._until_close and self._head.done() and not self.complete:
            self.on_message_complete()
            self.keep_alive = False
            return
        if not self.received and self.reused:
            self._fail(StaleConnectionError("pooled connection was closed by the upstream"))
        else:
            self._fail(ConnectionDroppedError(f"upstream closed the connection: {exc or 'EOF'}"))

    def _fail(self, error: UpstreamError) -> None:
        for future in (self._head, self._done):
            if not future.done():
                future.set_exception(error)
                future.exception()  # mark retrieved: a caller may await only one of them

    # -- parser callbacks --------------------------------------------------------------
    def on_header(self, name: bytes, value: bytes) -> None:
        self.headers.append((name, value))

    def on_headers_complete(self) -> None:
        self.status = self._parser.get_status_code()
        has_length = any(
            k.lower() in (b"content-length", b"transfer-encoding") for k, _ in self.headers
        )
        self._until_close = not has_length and self.status not in (204, 304)
        if not self._head.done():
            self._head.set_result(None)

    def on_body(self, body: bytes) -> None:
        self._chunks.append(body)  # to the sink after the whole read is parsed

    def on_message_complete(self) -> None:
        self.complete = True
        self.keep_alive = self._parser.should_keep_alive() and not self._until_close
        if not self._done.done():
            self._done.set_result(None)


class UpstreamPool:
    """Idle keep-alive connections per origin; one pool per router process."""

    def __init__(self, *, connect_timeout_s: float = 5.0, max_idle_per_origin: int = 256) -> None:
        self._loop = asyncio.get_running_loop()
        self._idle: dict[Origin, deque[UpstreamConnection]] = {}
        self._connect_timeout_s = connect_timeout_s
        self._max_idle = max_idle_per_origin
        self._ssl: ssl.SSLContext | None = None
        self._closed = False
        self._busy: dict[UpstreamConnection, float] = {}

    def arm(self, conn: UpstreamConnection, timeout_s: float) -> None:
        """Give ``conn``'s current request ``timeout_s`` to complete (see :meth:`reap`)."""
        conn.deadline = self._loop.time() + timeout_s
        self._busy[conn] = timeout_s

    async def reap(self, interval_s: float = 0.25) -> None:
        """Background task: expire requests past their deadline. One coarse timer for all
        connections costs nothing per request, unlike a timer per request."""
        while True:
            await asyncio.sleep(interval_s)
            now = self._loop.time()
            expired = [(c, t) for c, t in self._busy.items() if c.deadline <= now]
            for conn, timeout_s in expired:
                self._busy.pop(conn, None)
                conn.expire(timeout_s)

    async def acquire(self, origin: Origin) -> UpstreamConnection:
        idle = self._idle.get(origin)
        while idle:
            conn = idle.pop()
            if conn.transport is not None and not conn.transport.is_closing():
                conn.reset_for_reuse()
                return conn
        return await self.connect(origin)

    async def connect(self, origin: Origin) -> UpstreamConnection:
        """A fresh connection (not from the pool)."""
        context = self._ssl_context() if origin.scheme == "https" else None
        try:
            async with asyncio.timeout(self._connect_timeout_s):
                _transport, conn = await self._loop.create_connection(
                    lambda: UpstreamConnection(origin, self._loop),
                    origin.host,
                    origin.port,
                    ssl=context,
                    server_hostname=origin.host if context else None,
                )
        except (OSError, TimeoutError, ssl.SSLError) as exc:
            raise ConnectError(f"cannot connect to {origin.host}:{origin.port}: {exc}") from exc
        return conn

    def discard(self, conn: UpstreamConnection) -> None:
        """Close a connection that must not be reused (error, cancelled request)."""
        self._busy.pop(conn, None)
        conn.close()

    def release(self, conn: UpstreamConnection) -> None:
        """Return a connection after a complete response; close it otherwise."""
        self._busy.pop(conn, None)
        transport = conn.transport
        if (
            self._closed
            or not conn.complete
            or not conn.keep_alive
            or transport is None
            or transport.is_closing()
        ):
            conn.close()
            return
        idle = self._idle.setdefault(conn.origin, deque())
        if len(idle) >= self._max_idle:
            conn.close()
            return
        idle.append(conn)

    def _ssl_context(self) -> ssl.SSLContext:
        if self._ssl is None:
            self._ssl = ssl.create_default_context()
        return self._ssl

    async def close(self) -> None:
        self._closed = True
        for idle in self._idle.values():
            while idle:
                idle.pop().close()
        self._idle.clear()
        await asyncio.sleep(0)
