"""A hand-written HTTP/1.1 engine for router tests that need control below HTTP: it counts
every generation request it read in full, answers ``GET /metrics`` (so the router's
scraper keeps it healthy and keeps a pooled connection to it), and then does what the test
asks with a generation: drop the connection silently, drop it after the response head, or
answer and close the connection once it stays idle briefly (as uvicorn does after its
keep-alive timeout)."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from enum import StrEnum


class Mode(StrEnum):
    DROP = "drop"
    """Read the whole request, start "generating", close the connection without a byte."""
    DROP_AFTER_HEAD = "drop_after_head"
    """Read the whole request, send a 200 head, then close the connection."""
    HANG = "hang"
    """Read the whole request and never answer (until the router gives up)."""
    ANSWER = "answer"
    """Answer a small chat completion; close that connection ``idle_close_s`` after the
    answer, as a server closes an idle keep-alive connection (connections that served only
    scrapes stay open, so a close happens only at a time the test knows)."""


@dataclass
class RawEngine:
    mode: Mode
    idle_close_s: float = 0.1
    generations: int = 0
    connections: int = 0
    bodies: list[dict[str, object]] = field(default_factory=list)
    url: str = ""

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        close_at = None
        try:
            while True:
                try:
                    async with asyncio.timeout_at(close_at):
                        head = await reader.readuntil(b"\r\n\r\n")
                except (TimeoutError, asyncio.IncompleteReadError):
                    return  # idle too long (or the router closed it): close
                lines = head.decode("latin-1").split("\r\n")
                length = 0
                for line in lines[1:]:
                    name, _, value = line.partition(":")
                    if name.strip().lower() == "content-length":
                        length = int(value)
                body = await reader.readexactly(length)
                if lines[0].startswith("GET /metrics"):
                    text = b"vllm:num_requests_waiting 0\n"
                    head = b"HTTP/1.1 200 OK\r\ncontent-length: %d\r\n\r\n" % len(text)
                    writer.write(head + text)
                    await writer.drain()
                    continue
                self.generations += 1
                self.bodies.append(json.loads(body))
                if close_at is None:
                    close_at = asyncio.get_running_loop().time() + self.idle_close_s
                if self.mode is Mode.DROP:
                    return
                if self.mode is Mode.HANG:
                    await reader.read()  # until the router closes the connection
                    return
                if self.mode is Mode.DROP_AFTER_HEAD:
                    writer.write(
                        b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\n"
                        b"content-length: 500\r\n\r\n"
                    )
                    await writer.drain()
                    return
                answer = json.dumps(
                    {
                        "id": "x",
                        "object": "chat.completion",
                        "model": "m",
                        "choices": [
                            {
                                "index": 0,
                                "message": {"role": "assistant", "content": "hi"},
                                "finish_reason": "stop",
                            }
                        ],
                        "usage": {"prompt_tokens": 3, "completion_tokens": 1, "total_tokens": 4},
                    }
                ).encode()
                writer.write(
                    b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\n"
                    b"content-length: %d\r\n\r\n%b" % (len(answer), answer)
                )
                await writer.drain()
        finally:
            writer.close()


@contextlib.asynccontextmanager
async def raw_engines(*modes: Mode, idle_close_s: float = 0.1) -> AsyncIterator[list[RawEngine]]:
    """Serve one :class:`RawEngine` per mode on free local ports."""
    engines = [RawEngine(mode, idle_close_s) for mode in modes]
    servers = []
    try:
        for engine in engines:
            server = await asyncio.start_server(engine._serve, "127.0.0.1", 0)
            servers.append(server)
            engine.url = f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}"
        yield engines
    finally:
        for server in servers:
            server.close()
