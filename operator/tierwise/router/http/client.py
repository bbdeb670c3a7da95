"""Pooled keep-alive HTTP/1.1 connections to upstreams (engines and external APIs).

Why it exists: connecting per request costs a round trip and a socket; a general client
session costs tens of microseconds of Python per request. An :class:`UpstreamConnection`
is an asyncio Protocol with ``httptools``' response parser: the caller writes the whole
request as bytes, awaits the response head, then either collects the body or installs a
*sink* that receives the body synchronously as it arrives (the streaming relay), with no
task hop: all the pieces parsed from one socket read go to the sink as one piece.

A connection goes back to the pool only after a complete response that allows
keep-alive; anything else (error, cancellation, client gone) closes it.

What is safe to send again (the rule :mod:`tierwise.router.pipeline` applies): only a
request the upstream provably never had whole. :class:`ConnectError` (no connection) and
:class:`NotSentError` (the connection was already closed when the router wrote, or closed
while part of the request was still in the router's write buffer) are such failures.
:class:`ConnectionDroppedError` after the whole request went to the kernel is not: the
engine may have read it and started generating, so sending it again could run (and bill)
the generation twice. An idle pooled connection the server closed is therefore caught
*before* writing: :meth:`UpstreamPool.acquire` drops idle connections that are closing,
that are readable (a FIN, a TLS close_notify or stray bytes waiting: a healthy idle
HTTP/1.1 connection has nothing to read), or that have been idle longer than the keep-alive
limit (``idle_timeout_s``, or one second less than the server's ``Keep-Alive: timeout=``
when that is shorter), so the router does not race a server's idle close.

External APIs may be reached through a forward proxy (:mod:`.proxy_env`; part of the pool
key): ``https://`` through a ``CONNECT`` tunnel with TLS to the API inside it, ``http://``
by sending absolute-form requests to the proxy. TLS verifies against the system CA bundle
(OpenSSL's default paths, so ``SSL_CERT_FILE``/``SSL_CERT_DIR`` apply) plus, when given,
one more CA file (``ca_file``: a private CA or a TLS-inspecting proxy's).
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import select
import socket
import ssl
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import cast

import httptools

from tierwise.router.http.proxy_env import ProxyRoute

Sink = Callable[[bytes], None]
_KEEP_ALIVE_TIMEOUT = re.compile(rb"timeout\s*=\s*(\d+)", re.IGNORECASE)


class UpstreamError(Exception):
    """The upstream did not deliver a complete response."""


class ConnectError(UpstreamError):
    """No connection could be opened (refused, unreachable, timed out)."""


class ConnectionDroppedError(UpstreamError):
    """The connection closed or broke before the response was complete."""


class NotSentError(UpstreamError):
    """The connection closed before the whole request left the router: the upstream cannot
    have acted on it, so it is safe to send again."""


class UpstreamTimeoutError(UpstreamError):
    """The upstream did not finish its answer before the deadline."""


@dataclass(frozen=True, slots=True)
class Origin:
    """Where to connect: scheme, host, port (the pool key)."""

    scheme: str
    host: str
    port: int
    proxy: ProxyRoute | None = None
    """The forward proxy to go through; None: connect directly."""

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
        self._unsent = False
        """Part of the request is still in the router's write buffer (flow control)."""
        self.deadline = float("inf")
        self.idle_since = 0.0
        self.idle_limit_s = float("inf")

    # -- request side ------------------------------------------------------------------
    def send(self, data: bytes) -> None:
        if self.transport is None or self.transport.is_closing():
            raise NotSentError("the connection was closed before the request was written")
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
        self.complete = self.received = self._until_close = self._unsent = False
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
        # pause_writing() as soon as a write leaves bytes behind, resume_writing() once the
        # kernel took them all: tells whether the whole request left the router
        self.transport.set_write_buffer_limits(high=0, low=0)
        sock = transport.get_extra_info("socket")
        if sock is not None:
            with contextlib.suppress(OSError):
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def data_received(self, data: bytes) -> None:
        if self.complete:  # bytes on an idle connection: no longer in a state to reuse
            self.keep_alive = False
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

    def pause_writing(self) -> None:
        self._unsent = True

    def resume_writing(self) -> None:
        self._unsent = False

    def is_readable(self) -> bool:
        """Whether the socket has something to read (EOF included) right now."""
        transport = self.transport
        sock = transport.get_extra_info("socket") if transport is not None else None
        if sock is None:
            return True
        try:
            poller = select.poll()
            poller.register(sock.fileno(), select.POLLIN | select.POLLPRI)
            return bool(poller.poll(0))
        except (OSError, ValueError):
            return True

    def connection_lost(self, exc: Exception | None) -> None:
        self.transport = None
        if self._until_close and self._head.done() and not self.complete:
            self.on_message_complete()
            self.keep_alive = False
            return
        if self._unsent and not self.received:
            self._fail(NotSentError("the connection closed while the request was being sent"))
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
        if self.keep_alive:
            hint = self.header(b"keep-alive")
            found = _KEEP_ALIVE_TIMEOUT.search(hint) if hint else None
            if found is not None:  # close well before the server does
                self.idle_limit_s = max(int(found.group(1)) - 1.0, 0.0)
        if not self._done.done():
            self._done.set_result(None)


class UpstreamPool:
    """Idle keep-alive connections per origin; one pool per router process."""

    def __init__(
        self,
        *,
        connect_timeout_s: float = 5.0,
        max_idle_per_origin: int = 256,
        idle_timeout_s: float = 4.0,
        ca_file: str | None = None,
    ) -> None:
        self._loop = asyncio.get_running_loop()
        self._idle: dict[Origin, deque[UpstreamConnection]] = {}
        self._connect_timeout_s = connect_timeout_s
        self._max_idle = max_idle_per_origin
        self._idle_timeout_s = idle_timeout_s
        """Idle keep-alive connections older than this are closed, not reused (uvicorn,
        which serves vLLM, closes idle connections after 5 s)."""
        self._ca_file = ca_file
        self._ssl: ssl.SSLContext | None = None
        if ca_file is not None:  # an unreadable CA file fails at startup, not per request
            self._ssl_context()
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
        """An idle connection that is provably still open, else a fresh one."""
        idle = self._idle.get(origin)
        now = self._loop.time()
        while idle:
            conn = idle.pop()
            if (
                conn.transport is None
                or conn.transport.is_closing()
                or not conn.keep_alive
                or now - conn.idle_since >= min(conn.idle_limit_s, self._idle_timeout_s)
                or conn.is_readable()
            ):
                conn.close()
                continue
            conn.reset_for_reuse()
            return conn
        return await self.connect(origin)

    async def connect(self, origin: Origin) -> UpstreamConnection:
        """A fresh connection (not from the pool)."""
        context = self._ssl_context() if origin.scheme == "https" else None
        proxy = origin.proxy
        try:
            async with asyncio.timeout(self._connect_timeout_s):
                if proxy is not None and context is not None:
                    return await self._tunnel(origin, proxy, context)
                _transport, conn = await self._loop.create_connection(
                    lambda: UpstreamConnection(origin, self._loop),
                    proxy.host if proxy else origin.host,
                    proxy.port if proxy else origin.port,
                    ssl=context,
                    server_hostname=origin.host if context else None,
                )
        except (OSError, TimeoutError, ssl.SSLError) as exc:
            via = f" through proxy {proxy.host}:{proxy.port}" if proxy else ""
            raise ConnectError(
                f"cannot connect to {origin.host}:{origin.port}{via}: {exc}"
            ) from exc
        return conn

    async def _tunnel(
        self, origin: Origin, proxy: ProxyRoute, context: ssl.SSLContext
    ) -> UpstreamConnection:
        """TLS to ``origin`` inside a ``CONNECT`` tunnel through ``proxy``."""
        tunnel = _TunnelOpener(self._loop)
        transport, _ = await self._loop.create_connection(lambda: tunnel, proxy.host, proxy.port)
        try:
            target = f"[{origin.host}]" if ":" in origin.host else origin.host
            target = f"{target}:{origin.port}"
            auth = f"proxy-authorization: {proxy.authorization}\r\n" if proxy.authorization else ""
            transport.write(f"CONNECT {target} HTTP/1.1\r\nhost: {target}\r\n{auth}\r\n".encode())
            status = await tunnel.status
            if status != 200:
                raise ConnectError(
                    f"proxy {proxy.host}:{proxy.port} answered {status} to CONNECT {target}"
                )
            tls = await self._loop.start_tls(
                transport, tunnel, context, server_hostname=origin.host
            )
        except BaseException:
            transport.abort()
            raise
        assert tls is not None
        conn = UpstreamConnection(origin, self._loop)
        tls.set_protocol(conn)
        conn.connection_made(tls)
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
        conn.idle_since = self._loop.time()
        idle.append(conn)

    def _ssl_context(self) -> ssl.SSLContext:
        if self._ssl is None:
            context = ssl.create_default_context()  # the system bundle (OpenSSL's paths)
            if self._ca_file is not None:
                context.load_verify_locations(cafile=self._ca_file)
            self._ssl = context
        return self._ssl

    async def close(self) -> None:
        self._closed = True
        for idle in self._idle.values():
            while idle:
                idle.pop().close()
        self._idle.clear()
        await asyncio.sleep(0)


class _TunnelOpener(asyncio.Protocol):
    """Reads the proxy's answer to ``CONNECT`` (status line and headers, no body)."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.status: asyncio.Future[int] = loop.create_future()
        self._head = b""

    def data_received(self, data: bytes) -> None:
        if self.status.done():
            return
        self._head += data
        if b"\r\n\r\n" not in self._head:
            if len(self._head) > 65536:
                self.status.set_exception(ConnectError("proxy answer head too large"))
            return
        line = self._head.split(b"\r\n", 1)[0].split()
        if len(line) >= 2 and line[0].startswith(b"HTTP/") and line[1].isdigit():
            self.status.set_result(int(line[1]))
        else:
            self.status.set_exception(ConnectError("malformed proxy answer to CONNECT"))

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.status.done():
            self.status.set_exception(ConnectError(f"proxy closed the connection: {exc or 'EOF'}"))
            self.status.exception()  # mark retrieved: the opener may have timed out already
