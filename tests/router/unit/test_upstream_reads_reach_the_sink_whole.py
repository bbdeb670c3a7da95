"""An upstream connection hands its streaming sink everything parsed from one socket read
as one piece (so the relay writes it to the client with one syscall), in order, in the
same callback, and whatever arrived before the sink was installed comes first."""

from __future__ import annotations

import asyncio

import pytest

from tierwise.router.http.client import ConnectionDroppedError, Origin, UpstreamConnection

HEAD = b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ntransfer-encoding: chunked\r\n\r\n"


def _chunks(*pieces: bytes) -> bytes:
    return b"".join(b"%x\r\n%b\r\n" % (len(p), p) for p in pieces)


async def test_one_read_of_many_chunks_reaches_the_sink_as_one_piece() -> None:
    conn = UpstreamConnection(Origin("http", "engine", 80), asyncio.get_running_loop())
    conn.data_received(HEAD + _chunks(b"ab", b"cd"))
    assert await conn.read_head() == 200
    got: list[bytes] = []
    conn.set_sink(got.append)
    assert got == [b"abcd"]  # what came before the sink, at once
    conn.data_received(_chunks(b"e", b"f", b"g"))
    assert got == [b"abcd", b"efg"]  # synchronously, one piece per read
    conn.data_received(_chunks(b"h")[:3])  # half a chunk: only what was parsed
    conn.data_received(_chunks(b"h")[3:] + b"0\r\n\r\n")
    assert got == [b"abcd", b"efg", b"h"]
    await conn.wait_done()
    assert conn.complete


async def test_pieces_parsed_before_a_malformed_byte_still_reach_the_sink() -> None:
    conn = UpstreamConnection(Origin("http", "engine", 80), asyncio.get_running_loop())
    conn.data_received(HEAD)
    got: list[bytes] = []
    conn.set_sink(got.append)
    conn.data_received(_chunks(b"ok") + b"zz-not-a-chunk-size\r\n")
    assert got == [b"ok"]
    assert not conn.complete


async def test_a_failing_sink_fails_the_answer_and_drops_the_connection() -> None:
    conn = UpstreamConnection(Origin("http", "engine", 80), asyncio.get_running_loop())
    conn.data_received(HEAD)

    def broken(data: bytes) -> None:
        raise RuntimeError("client writer gone")

    conn.set_sink(broken)
    conn.data_received(_chunks(b"x"))
    with pytest.raises(ConnectionDroppedError, match="relaying the answer failed"):
        await conn.wait_done()
