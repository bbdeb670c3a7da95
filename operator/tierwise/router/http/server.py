"""A minimal HTTP/1.1 server: ``httptools`` parsing on an asyncio Protocol.

Why it exists: the router needs HTTP/1.1 keep-alive, Content-Length and chunked request
bodies, chunked (streamed) responses written the moment bytes arrive, size limits,
pipelined requests answered in order, client disconnects that cancel the handler, and a
graceful drain on shutdown — and nothing else. Each request becomes a :class:`Request`
(lower-cased header names, whole body) handed to one async handler with a
:class:`ResponseWriter`; the handler runs as one task per request, cancelled when the
client goes away.

HTTP/1.0 clients cannot read chunked responses: their requests are answered with
``Connection: close``, a whole body with Content-Length, and a streamed body as raw bytes
ended by closing the connection.

Limits: request head (URL + header names and values) ``max_head_bytes`` and header count
``max_headers`` (both 431, "Request Header Fields Too Large", RFC 6585: a flood of small
headers costs a dict entry and a decode each, so the count is bounded as well as the size),
body ``max_body_bytes`` (413, checked against Content-Length before reading and while
reading chunked bodies).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
from collections import deque
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from http import HTTPStatus
from typing import cast

import httptools

log = logging.getLogger(__name__)

Header = tuple[str, str]
_REASONS = {s.value: s.phrase for s in HTTPStatus}
_MAX_PIPELINED = 16


@dataclass(frozen=True, slots=True)
class ServerLimits:
    max_head_bytes: int = 64 * 1024
    max_headers: int = 100
    max_body_bytes: int = 32 * 1024 * 1024
    keepalive_timeout_s: float = 75.0


class Request:
    """One parsed request. ``headers`` maps lower-cased names to values (last one wins)."""

    __slots__ = ("body", "headers", "http10", "keep_alive", "method", "path", "received_at")

    def __init__(
        self, method: str, path: str, headers: dict[str, str], body: bytes, keep_alive: bool
    ) -> None:
        self.method = method
        self.path = path
        self.headers = headers
        self.body = body
        self.keep_alive = keep_alive
        self.received_at = 0.0
        self.http10 = False
        """An HTTP/1.0 request: no chunked answer, the connection closes after it."""


_STATUS_LINES = {
    code: f"HTTP/1.1 {code} {phrase}\r\n".encode("latin-1") for code, phrase in _REASONS.items()
}
_CLOSE = b"connection: close\r\n"


def header_block(headers: Iterable[Header]) -> bytes:
    """``name: value`` lines (CRLF-terminated) for :meth:`ResponseWriter.send_block`."""
    return "".join(f"{name}: {value}\r\n" for name, value in headers).encode("latin-1")


def status_line(status: int) -> bytes:
    line = _STATUS_LINES.get(status)
    return line if line is not None else b"HTTP/1.1 %d Unknown\r\n" % status


class ResponseWriter:
    """Writes one response: either :meth:`send` (whole body) or :meth:`start`/:meth:`write`/
    :meth:`end` (chunked; with ``chunked=False``, for HTTP/1.0, raw bytes ended by closing
    the connection). ``pause_hook`` is called with True/False when the client's socket
    buffer fills/drains, so a streaming source can pause its own reading."""

    __slots__ = (
        "_chunked",
        "_conn",
        "_head",
        "_keep_alive",
        "finished",
        "pause_hook",
        "started",
        "status",
    )

    def __init__(
        self, conn: HttpServerProtocol, *, keep_alive: bool = True, chunked: bool = True
    ) -> None:
        self._conn = conn
        self._keep_alive = keep_alive and chunked
        self._chunked = chunked
        self.started = False
        self.finished = False
        self.status = 0
        self.pause_hook: Callable[[bool], None] | None = None
        self._head = b""

    @property
    def closed(self) -> bool:
        return self._conn.transport is None or self._conn.transport.is_closing()

    def send(self, status: int, headers: Iterable[Header], body: bytes) -> None:
        self.send_block(status, header_block(headers), body)

    def send_block(self, status: int, block: bytes, body: bytes) -> None:
        """Send a whole response; ``block`` holds the header lines (see
        :func:`header_block`); Content-Length is added here."""
        self._begin(status)
        transport = self._conn.transport
        if transport is not None:
            head = b"%b%b%bcontent-length: %d\r\n\r\n" % (
                status_line(status),
                block,
                self._close_line(),
                len(body),
            )
            if len(body) < 16384:
                transport.write(head + body)
            else:
                transport.writelines((head, body))
        self.finished = True

    def start(self, status: int, headers: Iterable[Header]) -> None:
        self.start_block(status, header_block(headers))

    def start_block(self, status: int, block: bytes, *, hold: bool = False) -> None:
        """Start a streamed response (then :meth:`write` pieces and :meth:`end`).

        ``hold``: keep the head until the next :meth:`write`, :meth:`flush` or :meth:`end`,
        so that it leaves in one write (one syscall) with the first body bytes when those
        are already at hand; the caller must :meth:`flush` before it awaits anything."""
        self._begin(status)
        if self._chunked:
            head = b"%b%b%btransfer-encoding: chunked\r\n\r\n" % (
                status_line(status),
                block,
                self._close_line(),
            )
        else:  # HTTP/1.0: the body runs until the connection closes
            head = b"%b%b%b\r\n" % (status_line(status), block, _CLOSE)
        if hold:
            self._head = head
            return
        transport = self._conn.transport
        if transport is not None:
            transport.write(head)

    def write(self, data: bytes, *, last: bool = False) -> None:
        """Send a piece of a streamed body; ``last``: it is the end of the response too
        (the piece and the end leave in one write)."""
        transport = self._conn.transport
        if transport is None or self.finished:
            return
        if not data:
            if last:
                self.end()
            return
        head, self._head = self._head, b""
        if self._chunked:
            end = b"0\r\n\r\n" if last else b""
            transport.write(b"%b%x\r\n%b\r\n%b" % (head, len(data), data, end))
        else:
            transport.write(head + data if head else data)
        if last:
            self.finished = True

    def flush(self) -> None:
        """Send a held head (see :meth:`start_block`) now."""
        transport = self._conn.transport
        if self._head and transport is not None:
            transport.write(self._head)
        self._head = b""

    def end(self) -> None:
        transport = self._conn.transport
        if transport is not None and not self.finished:
            head, self._head = self._head, b""
            if self._chunked:
                transport.write(head + b"0\r\n\r\n")
            elif head:
                transport.write(head)
        self.finished = True

    async def drain(self) -> None:
        await self._conn.drain()

    def _close_line(self) -> bytes:
        return b"" if self._keep_alive and not self._conn.closing else _CLOSE

    def _begin(self, status: int) -> None:
        if self.started:
            raise RuntimeError("response already started")
        self.started = True
        self.status = status


Handler = Callable[[Request, ResponseWriter], Awaitable[None]]
ErrorResponder = Callable[[ResponseWriter, int, str], None]


class HttpServerProtocol(asyncio.Protocol):
    """One client connection."""

    def __init__(self, server: HttpServer) -> None:
        self._server = server
        self._loop = server.loop
        self._parser = httptools.HttpRequestParser(self)
        self.transport: asyncio.Transport | None = None
        self._url = b""
        self._headers: dict[str, str] = {}
        self._body: list[bytes] = []
        self._body_len = 0
        self._head_len = 0
        self._header_count = 0
        self._queue: deque[Request] = deque()
        self._task: asyncio.Task[None] | None = None
        self._paused = False
        self._drain: asyncio.Future[None] | None = None
        self._writer: ResponseWriter | None = None
        self.last_active = self._loop.time()
        self.closing = False
        self._discarding = False

    # -- connection events -------------------------------------------------------------
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's is not a subclass
        sock = transport.get_extra_info("socket")
        if sock is not None:
            with contextlib.suppress(OSError):
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self._server.connections.add(self)

    def connection_lost(self, exc: Exception | None) -> None:
        self.transport = None
        self._server.connections.discard(self)
        self._queue.clear()
        if self._task is not None and not self._task.done():
            self._task.cancel()
        if self._drain is not None and not self._drain.done():
            self._drain.set_exception(ConnectionResetError("client disconnected"))

    def data_received(self, data: bytes) -> None:
        try:
            self._parser.feed_data(data)
        except httptools.HttpParserUpgrade:
            self._reject(400, "protocol upgrades are not supported")
        except httptools.HttpParserError as exc:
            # httptools wraps an exception raised by a callback; ours says what to answer
            cause = exc.__context__
            if isinstance(cause, _RejectError):
                self._reject(cause.status, cause.message)
            else:
                self._reject(400, f"malformed HTTP request: {exc}")

    def pause_writing(self) -> None:
        self._paused = True
        if self._writer is not None and self._writer.pause_hook is not None:
            self._writer.pause_hook(True)

    def resume_writing(self) -> None:
        self._paused = False
        if self._writer is not None and self._writer.pause_hook is not None:
            self._writer.pause_hook(False)
        if self._drain is not None and not self._drain.done():
            self._drain.set_result(None)
        self._drain = None

    async def drain(self) -> None:
        if self.transport is None:
            raise ConnectionResetError("client disconnected")
        if self._paused:
            if self._drain is None:
                self._drain = self._loop.create_future()
            await self._drain

    # -- parser callbacks --------------------------------------------------------------
    def on_message_begin(self) -> None:
        self._discarding = False
        self._url = b""
        self._headers = {}
        self._body = []
        self._body_len = 0
        self._head_len = 0
        self._header_count = 0

    def on_url(self, url: bytes) -> None:
        self._url += url
        self._count_head(len(url))

    def on_header(self, name: bytes, value: bytes) -> None:
        self._count_head(len(name) + len(value))
        self._header_count += 1
        if self._header_count > self._server.limits.max_headers:
            raise _RejectError(431, "too many request header fields")
        self._headers[name.decode("latin-1").lower()] = value.decode("latin-1")

    def on_headers_complete(self) -> None:
        headers = self._headers
        length = headers.get("content-length")
        limit = self._server.limits.max_body_bytes
        if length is not None and length.isdigit() and int(length) > limit:
            self._too_large()
        elif headers.get("expect", "").lower() == "100-continue" and self.transport is not None:
            self.transport.write(b"HTTP/1.1 100 Continue\r\n\r\n")

    def on_body(self, body: bytes) -> None:
        self._body_len += len(body)
        if self._discarding:
            if self._body_len > 4 * self._server.limits.max_body_bytes:
                raise _RejectError(413, "request body too large")  # stop reading: close
            return
        if self._body_len > self._server.limits.max_body_bytes:
            self._too_large()
            return
        self._body.append(body)

    def _too_large(self) -> None:
        """Answer 413 now, read (and drop) the rest of the body, then close: a client still
        sending would otherwise see a reset instead of the answer."""
        self._discarding = True
        self._body = []
        if self._task is None and self.transport is not None:
            self._server.error_responder(
                ResponseWriter(self, keep_alive=False), 413, "request body too large"
            )

    def on_message_complete(self) -> None:
        if self._discarding:
            self._close()
            return
        path = self._url.split(b"?", 1)[0].decode("latin-1")
        body = self._body[0] if len(self._body) == 1 else b"".join(self._body)
        parser = self._parser
        request = Request(parser.get_method().decode("latin-1"), path, self._headers, body, False)
        if parser.get_http_version() == "1.0":
            request.http10 = True  # no chunked answers: close after it, whatever it asked
        else:
            request.keep_alive = parser.should_keep_alive()
        request.received_at = self.last_active = self._loop.time()
        if self._task is None:
            self._task = self._loop.create_task(self._serve(request))
        else:
            self._queue.append(request)
            if len(self._queue) >= _MAX_PIPELINED and self.transport is not None:
                self.transport.pause_reading()

    def _count_head(self, n: int) -> None:
        self._head_len += n
        if self._head_len > self._server.limits.max_head_bytes:
            raise _RejectError(431, "request header fields too large")

    # -- serving -----------------------------------------------------------------------
    async def _serve(self, request: Request) -> None:
        while True:
            writer = self._writer = ResponseWriter(
                self, keep_alive=request.keep_alive, chunked=not request.http10
            )
            try:
                await self._server.handler(request, writer)
            except asyncio.CancelledError:
                self._close()
                self._task = None
                self._server.request_done()
                raise
            except Exception:
                log.exception("unhandled error serving %s %s", request.method, request.path)
                if writer.started:
                    self._close()
                else:
                    self._server.error_responder(writer, 500, "internal router error")
            self._writer = None
            if not writer.finished or not request.keep_alive or self.closing:
                self._close()
            transport = self.transport
            if transport is None or transport.is_closing() or not self._queue:
                break
            request = self._queue.popleft()
            if len(self._queue) < _MAX_PIPELINED:
                transport.resume_reading()
        self._task = None
        self._server.request_done()

    @property
    def busy(self) -> bool:
        return self._task is not None

    def _reject(self, status: int, message: str) -> None:
        """Answer a request we refuse to read further, then close."""
        if self.transport is None:
            return
        if self._task is None:
            writer = ResponseWriter(self, keep_alive=False)
            self._server.error_responder(writer, status, message)
        self._close()

    def _close(self) -> None:
        if self.transport is not None and not self.transport.is_closing():
            self.transport.close()

    def close_if_idle(self, now: float) -> None:
        if self._task is None and (
            self.closing or now - self.last_active > self._server.limits.keepalive_timeout_s
        ):
            self._close()


class _RejectError(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


class HttpServer:
    """Owns the listening socket, the connections and the idle sweep."""

    def __init__(
        self, handler: Handler, error_responder: ErrorResponder, limits: ServerLimits
    ) -> None:
        self.handler = handler
        self.error_responder = error_responder
        self.limits = limits
        self.loop = asyncio.get_running_loop()
        self.connections: set[HttpServerProtocol] = set()
        self._server: asyncio.Server | None = None
        self._sweeper: asyncio.Task[None] | None = None
        self._drained = asyncio.Event()

    def request_done(self) -> None:
        """A connection finished its requests (wakes a draining shutdown)."""
        self._drained.set()

    async def start(self, host: str, port: int, *, reuse_port: bool = False) -> int:
        """Listen; return the bound port (useful with ``port=0``)."""
        self._server = await self.loop.create_server(
            lambda: HttpServerProtocol(self), host, port, reuse_port=reuse_port, backlog=1024
        )
        self._sweeper = self.loop.create_task(self._sweep())
        bound: int = self._server.sockets[0].getsockname()[1]
        return bound

    async def _sweep(self) -> None:
        while True:
            await asyncio.sleep(min(5.0, self.limits.keepalive_timeout_s))
            now = self.loop.time()
            for conn in list(self.connections):
                conn.close_if_idle(now)

    async def shutdown(self, grace_s: float) -> None:
        """Stop accepting, let in-flight requests finish (up to ``grace_s``), close all."""
        if self._server is not None:
            self._server.close()
        if self._sweeper is not None:
            self._sweeper.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._sweeper
        for conn in list(self.connections):
            conn.closing = True
            conn.close_if_idle(self.loop.time())
        deadline = self.loop.time() + grace_s
        while any(c.busy for c in self.connections) and self.loop.time() < deadline:
            self._drained.clear()
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(max(deadline - self.loop.time(), 0)):
                    await self._drained.wait()
        for conn in list(self.connections):
            if conn.transport is not None:
                conn.transport.abort()
        if self._server is not None:
            await self._server.wait_closed()
