"""Forward one request to one upstream and relay the answer: bytes in, bytes out.

Why it exists: this is the proxy's inner loop, and the place where "clients must not
notice the router" is kept or lost. It forwards the client's ORIGINAL body with only
``model`` replaced (spliced into the bytes when that is unambiguous, else re-encoded once
with orjson; unknown fields pass untouched), relays a streamed answer's bytes as they
arrive without re-encoding, and reads token usage on the way.

Token counting for streams: when the client did not ask for
``stream_options.include_usage``, the router asks the upstream for it anyway (so cost is
counted from the engine's own numbers) and removes that extra usage event from the
client's stream; the client sees the stream it asked for. When no usage arrives at all
(an upstream that ignores the option), completion tokens are estimated as the number of
content events. A non-streamed answer's ``usage`` is read with two byte searches, not a
JSON parse.

Errors: :class:`UpstreamStatusError` (the upstream answered 429 or 5xx, before anything
reached the client) and :class:`~tierwise.router.http.client.UpstreamError` (connection
failures) are raised for :mod:`tierwise.router.pipeline`, which retries only the ones that
prove the engine never had the request (see :mod:`tierwise.router.http.client`). A pooled
connection found closed before the request went out whole is replaced here, once, by a
fresh one. Once the client has received bytes nothing is retried, and a stream that breaks
ends with an OpenAI-style ``error`` event.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import orjson

from tierwise.router.http.client import (
    NotSentError,
    Origin,
    UpstreamConnection,
    UpstreamError,
    UpstreamPool,
    UpstreamTimeoutError,
)
from tierwise.router.http.proxy_env import ProxyConfig
from tierwise.router.http.server import ResponseWriter
from tierwise.router.table import Endpoint

_MODEL_KEY = re.compile(rb'"model"\s*:\s*')
_USAGE_OBJECT = re.compile(rb'"usage"\s*:\s*\{')
_PROMPT_TOKENS = re.compile(rb'"prompt_tokens"\s*:\s*(\d+)')
_COMPLETION_TOKENS = re.compile(rb'"completion_tokens"\s*:\s*(\d+)')
_USAGE_OPTION = b'"stream_options":{"include_usage":true},'
_HOP_BY_HOP = frozenset(
    {
        b"connection",
        b"keep-alive",
        b"transfer-encoding",
        b"content-length",
        b"date",
        b"server",
        b"proxy-connection",
        b"upgrade",
        b"trailer",
    }
)
API_PATHS = {"/v1/chat/completions": "/chat/completions", "/v1/completions": "/completions"}


class KeyFileError(Exception):
    """An external endpoint's API key file cannot be read (the message names the file)."""


class UpstreamStatusError(Exception):
    """The upstream answered 429 or 5xx before the client received anything."""

    def __init__(self, status: int, body: bytes, retry_after: str | None) -> None:
        super().__init__(f"upstream answered {status}")
        self.status = status
        self.body = body
        self.retry_after = retry_after


class KeyStore:
    """API keys read from mounted Secret files, once per table load, cached by path."""

    def __init__(self) -> None:
        self._keys: dict[str, str] = {}

    def load(self, path: str) -> str:
        try:
            key = Path(path).read_text(encoding="utf-8").strip()
        except OSError as exc:
            raise KeyFileError(f"cannot read API key file {path}: {exc.strerror}") from None
        if not key:
            raise KeyFileError(f"API key file {path} is empty")
        self._keys[path] = key
        return key

    def get(self, path: str) -> str:
        return self._keys[path] if path in self._keys else self.load(path)


@dataclass(frozen=True, slots=True)
class Target:
    """An endpoint made ready to send to: where to connect and the request head bytes up to
    the Content-Length value, per API path. Holds the API key; never log it."""

    endpoint: Endpoint
    origin: Origin
    heads: Mapping[str, bytes]
    secret: bytes | None
    timeout_s: float

    def __repr__(self) -> str:  # keep the key out of any accidental log line
        return f"Target({self.endpoint.backend} at {self.endpoint.url})"


def make_origin(url: str) -> Origin:
    """The origin (scheme, host, port) of ``url``."""
    parts = urlsplit(url)
    scheme = parts.scheme or "http"
    return Origin(scheme, parts.hostname or "", parts.port or (443 if scheme == "https" else 80))


def make_target(
    endpoint: Endpoint,
    keys: KeyStore,
    *,
    default_timeout_s: float,
    proxies: ProxyConfig | None = None,
) -> Target:
    """Prepare ``endpoint``; reads its key file (raising :class:`KeyFileError`).

    ``proxies`` apply to external endpoints only (self-hosted replicas are in-cluster). An
    ``http://`` API through a proxy gets absolute-form request targets, as proxies expect;
    an ``https://`` one is tunnelled by the pool and sees ordinary requests."""
    base = urlsplit(endpoint.api_base)
    origin = make_origin(endpoint.api_base)
    if proxies is not None and endpoint.external:
        origin = replace(origin, proxy=proxies.route(origin.scheme, origin.host, origin.port))
    secret = keys.get(endpoint.api_key_file) if endpoint.api_key_file else None
    auth = f"authorization: Bearer {secret}\r\n" if secret else ""
    prefix = ""
    if origin.proxy is not None and origin.scheme == "http":
        prefix = f"http://{origin.host_header}"
        if origin.proxy.authorization:
            auth += f"proxy-authorization: {origin.proxy.authorization}\r\n"
    heads = {
        path: (
            f"POST {prefix}{base.path.rstrip('/')}{suffix} HTTP/1.1\r\n"
            f"host: {origin.host_header}\r\n"
            f"content-type: application/json\r\n{auth}content-length: "
        ).encode("latin-1")
        for path, suffix in API_PATHS.items()
    }
    timeout = endpoint.timeout_s or default_timeout_s
    return Target(endpoint, origin, heads, secret.encode() if secret else None, timeout)


def rewrite_body(raw: bytes, body: Mapping[str, Any], model: str, *, add_usage: bool) -> bytes:
    """The client's bytes with ``model`` set to ``model`` (and the usage option added)."""
    out = raw
    if body.get("model") != model:
        spliced = _splice_model(raw, body.get("model"), model)
        if spliced is None:
            return _reencode(body, model, add_usage=add_usage)
        out = spliced
    if add_usage:
        if "stream_options" in body:
            return _reencode(body, model, add_usage=True)
        brace = out.index(b"{") + 1
        out = out[:brace] + _USAGE_OPTION + out[brace:]
    return out


def _splice_model(raw: bytes, current: object, model: str) -> bytes | None:
    """Replace the value of the only ``"model"`` key in ``raw``; None when ambiguous."""
    at = raw.find(b'"model"')
    if at < 0 or raw.find(b'"model"', at + 7) >= 0 or not isinstance(current, str):
        return None
    match = _MODEL_KEY.match(raw, at)
    if match is None:
        return None
    start = match.end()
    encoded = orjson.dumps(current)
    if not raw.startswith(encoded, start):
        return None
    return raw[:start] + orjson.dumps(model) + raw[start + len(encoded) :]


def _reencode(body: Mapping[str, Any], model: str, *, add_usage: bool) -> bytes:
    copy = dict(body)
    copy["model"] = model
    if add_usage:
        options = copy.get("stream_options")
        copy["stream_options"] = {
            **(options if isinstance(options, dict) else {}),
            "include_usage": True,
        }
    return orjson.dumps(copy)


def wants_usage(body: Mapping[str, Any]) -> bool:
    options = body.get("stream_options")
    return isinstance(options, dict) and options.get("include_usage") is True


@dataclass(slots=True)
class Outcome:
    """What one forwarded request produced."""

    status: int
    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    first_byte_at: float | None = None
    stream_error: str | None = None


def read_usage(data: bytes) -> tuple[int | None, int | None]:
    """``(prompt_tokens, completion_tokens)`` of the last usage object in ``data``."""
    at = data.rfind(b'"usage"')
    if at < 0:
        return None, None
    return _int_after(data, b'"prompt_tokens":', _PROMPT_TOKENS, at), _int_after(
        data, b'"completion_tokens":', _COMPLETION_TOKENS, at
    )


def _int_after(data: bytes, key: bytes, pattern: re.Pattern[bytes], at: int) -> int | None:
    start = data.find(key, at)
    if start >= 0:  # compact JSON (what engines send): no regex needed
        start += len(key)
        end = start
        while end < len(data) and 48 <= data[end] <= 57:
            end += 1
        if end > start:
            return int(data[start:end])
    found = pattern.search(data, at)
    return int(found.group(1)) if found else None


class SseRelay:
    """Body sink for a streamed answer: writes complete SSE events to the client as they
    arrive (the bytes as received), holds back only an incomplete trailing event, reads the
    usage event and optionally removes it (see the module docstring)."""

    __slots__ = (
        "_ended",
        "_held",
        "_strip",
        "_writer",
        "completion",
        "events",
        "first_at",
        "prompt",
    )

    def __init__(
        self,
        writer: ResponseWriter,
        *,
        strip_usage: bool,
        ended: Callable[[], bool] | None = None,
    ) -> None:
        self._writer = writer
        self._strip = strip_usage
        self._ended = ended
        """True once the upstream's answer is complete: the last events then leave with
        the end of the client's response in one write."""
        self._held = b""
        self.prompt: int | None = None
        self.completion: int | None = None
        self.events = 0
        self.first_at: float | None = None

    def __call__(self, data: bytes) -> None:
        # Every byte here goes through a handful of C-level scans (count, find, endswith),
        # never a per-event Python loop: one call can carry dozens of events (all those
        # parsed from one socket read, see UpstreamConnection._deliver).
        if self.first_at is None:
            self.first_at = time.monotonic()
        self.events += data.count(b"data:")
        if self._held:
            data = self._held + data
            self._held = b""
        usage = b'"usage"' in data
        if not usage and data.endswith(b"\n\n"):
            self._write(data)
            return
        cut = _last_event_end(data)
        if cut < 0:
            self._held = data
            return
        if cut < len(data):
            data, self._held = data[:cut], data[cut:]
        if usage and _USAGE_OBJECT.search(data):
            data = self._take_usage(data)
        if data:
            self._write(data)

    def _write(self, data: bytes) -> None:
        if self._ended is not None and not self._held and self._ended():
            self._writer.write(data, last=True)
        else:
            self._writer.write(data)

    def _take_usage(self, complete: bytes) -> bytes:
        """Read the usage events in ``complete`` (whole events); drop them when stripping."""
        kept: list[bytes] = []
        pos = 0
        for match in _USAGE_OBJECT.finditer(complete):
            at = match.start()
            if at < pos:  # a second usage object inside an event already handled
                continue
            start, end = _event_start(complete, at), _event_end(complete, at)
            event = complete[start:end]
            prompt, completion = read_usage(event)
            self.prompt = prompt if prompt is not None else self.prompt
            self.completion = completion if completion is not None else self.completion
            if self._strip and (b'"choices":[]' in event or b'"choices": []' in event):
                self.events -= 1
                kept.append(complete[pos:start])
                pos = end
        if not kept:
            return complete
        kept.append(complete[pos:])
        return b"".join(kept)

    def finish(self) -> None:
        """Flush what is held (an upstream that ended without a final blank line)."""
        if self._held:
            self._writer.write(self._held)
            self._held = b""

    @property
    def estimated_completion(self) -> int:
        """Content events, less the final ``[DONE]``: a token estimate without usage."""
        return max(self.events - 1, 0)


def _last_event_end(buf: bytes, before: int | None = None) -> int:
    """Where the last complete SSE event of ``buf[:before]`` ends (after its blank line),
    else -1. An event ends with a blank line, ``\\n\\n`` or ``\\r\\n\\r\\n`` (or a mix), so
    its last bytes are ``\\n\\n`` or ``\\n\\r\\n``."""
    lf, crlf = buf.rfind(b"\n\n", 0, before), buf.rfind(b"\n\r\n", 0, before)
    return max(lf + 2 if lf >= 0 else -1, crlf + 3 if crlf >= 0 else -1)


def _event_start(buf: bytes, at: int) -> int:
    """Where the event holding offset ``at`` starts."""
    return max(_last_event_end(buf, at), 0)


def _event_end(buf: bytes, at: int) -> int:
    """Where the event holding offset ``at`` ends (after its blank line), else the end."""
    lf, crlf = buf.find(b"\n\n", at), buf.find(b"\n\r\n", at)
    ends = [e for e in (lf + 2 if lf >= 0 else -1, crlf + 3 if crlf >= 0 else -1) if e >= 0]
    return min(ends) if ends else len(buf)


def client_headers(conn: UpstreamConnection, decision: bytes) -> bytes:
    """Upstream header lines minus hop-by-hop ones, plus the decision header lines."""
    lines = [
        b"%b: %b\r\n" % (name, value)
        for name, value in conn.headers
        if name.lower() not in _HOP_BY_HOP
    ]
    lines.append(decision)
    return b"".join(lines)


@dataclass(frozen=True, slots=True)
class Forward:
    """One attempt: where, what, and the decision header lines the client gets."""

    target: Target
    path: str
    body: bytes
    stream: bool
    strip_usage: bool
    decision: bytes


async def forward(pool: UpstreamPool, fwd: Forward, writer: ResponseWriter) -> Outcome:
    """Send ``fwd`` and answer the client; raise before the first client byte to retry.

    The request's deadline (the endpoint's timeout) is enforced by the pool's reaper."""
    target = fwd.target
    data = target.heads[fwd.path] + b"%d\r\n\r\n" % len(fwd.body) + fwd.body
    conn = await pool.acquire(target.origin)
    try:
        pool.arm(conn, target.timeout_s)
        try:
            conn.send(data)
            await conn.read_head()
        except NotSentError:
            if not conn.reused:  # a fresh connection that fails: the replica's problem
                raise
            pool.discard(conn)
            conn = await pool.connect(target.origin)
            pool.arm(conn, target.timeout_s)
            conn.send(data)
            await conn.read_head()
        status = conn.status
        if status == 429 or status >= 500 or (target.secret and status in (401, 403)):
            body = await conn.read_body()
            retry_after = conn.header(b"retry-after")
            raise UpstreamStatusError(
                status,
                _scrub(body, target.secret),
                retry_after.decode("latin-1") if retry_after else None,
            )
        if fwd.stream and status == 200:
            outcome = await _relay(conn, fwd, writer)
        else:
            outcome = await _whole(conn, fwd, writer)
    except BaseException:
        pool.discard(conn)
        raise
    pool.release(conn)
    return outcome


async def _whole(conn: UpstreamConnection, fwd: Forward, writer: ResponseWriter) -> Outcome:
    body = await conn.read_body()
    outcome = Outcome(conn.status, first_byte_at=time.monotonic())
    if conn.status == 200:
        outcome.prompt_tokens, outcome.completion_tokens = read_usage(body)
    elif fwd.target.secret:
        body = _scrub(body, fwd.target.secret)
    writer.send_block(conn.status, client_headers(conn, fwd.decision), body)
    return outcome


async def _relay(conn: UpstreamConnection, fwd: Forward, writer: ResponseWriter) -> Outcome:
    relay = SseRelay(writer, strip_usage=fwd.strip_usage, ended=lambda: conn.complete)
    writer.start_block(200, client_headers(conn, fwd.decision), hold=True)
    writer.pause_hook = conn.pause_reading
    outcome = Outcome(200)
    try:
        conn.set_sink(relay)  # events already received leave with the head, in one write
        writer.flush()
        await conn.wait_done()
        relay.finish()
    except UpstreamError as exc:
        relay.finish()
        outcome.stream_error = type(exc).__name__
        message = (
            "the upstream took too long"
            if isinstance(exc, UpstreamTimeoutError)
            else ("the upstream stream broke off")
        )
        writer.write(stream_error_event(message + "; the answer is incomplete"))
        conn.close()
    finally:
        writer.pause_hook = None
    writer.end()
    outcome.first_byte_at = relay.first_at
    outcome.prompt_tokens = relay.prompt
    outcome.completion_tokens = (
        relay.completion if relay.completion is not None else relay.estimated_completion
    )
    return outcome


def stream_error_event(message: str) -> bytes:
    error = {"error": {"message": message, "type": "server_error", "code": "upstream_error"}}
    return b"data: " + orjson.dumps(error) + b"\n\n"


def _scrub(body: bytes, secret: bytes | None) -> bytes:
    """Remove the API key (and its tail, as providers echo masked keys) from a body."""
    if not secret:
        return body
    body = body.replace(secret, b"[redacted]")
    tail = secret[-8:]
    return body.replace(tail, b"[redacted]") if len(secret) > 16 else body
