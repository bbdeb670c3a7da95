"""The proxy forwards the client's bytes with only ``model`` replaced (unknown fields and
formatting untouched), relays SSE bytes as received however the upstream splits them, and
removes only the usage event it asked for itself."""

from __future__ import annotations

import itertools

import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st

from tierwise.router.upstream import SseRelay, read_usage, rewrite_body


@pytest.mark.parametrize(
    "raw",
    [
        b'{"model":"auto","messages":[],"x-unknown":{"deep":[1,2.50,"\\u00e9"]}}',
        b'{ "model" : "auto" , "messages" : [ ] }',
        '{"messages":[{"content":"caf\u00e9 \U0001f600"}],"model":"auto","n":1}'.encode(),
        b'{"model":"auto"}',
    ],
)
def test_model_is_spliced_without_reencoding(raw: bytes) -> None:
    body = orjson.loads(raw)
    out = rewrite_body(raw, body, "qwen3-8b", add_usage=False)
    assert orjson.loads(out) == {**body, "model": "qwen3-8b"}
    # everything but the model value is byte-for-byte the client's
    assert out.replace(b'"qwen3-8b"', b'"auto"') == raw


@pytest.mark.parametrize(
    "raw",
    [
        b'{"model":"auto","response_format":{"schema":{"model":"auto"}}}',  # two "model" keys
        b'{"model":"\\u0061uto","messages":[]}',  # the value is escaped differently
    ],
)
def test_ambiguous_bodies_are_reencoded_once(raw: bytes) -> None:
    body = orjson.loads(raw)
    out = rewrite_body(raw, body, "m\u00e9", add_usage=False)
    assert orjson.loads(out) == {**body, "model": "m\u00e9"}


def test_same_model_forwards_the_very_same_bytes() -> None:
    raw = b'{"model": "m", "stream": false}'
    assert rewrite_body(raw, orjson.loads(raw), "m", add_usage=False) is raw


@pytest.mark.parametrize(
    ("raw", "options"),
    [
        (b'{"model":"a","stream":true}', {"include_usage": True}),
        (
            b'{"model":"a","stream":true,"stream_options":{"continuous_usage_stats":true}}',
            {"continuous_usage_stats": True, "include_usage": True},
        ),
    ],
)
def test_usage_option_is_added_for_counting(raw: bytes, options: dict[str, bool]) -> None:
    out = orjson.loads(rewrite_body(raw, orjson.loads(raw), "b", add_usage=True))
    assert out["model"] == "b"
    assert out["stream_options"] == options


def _event(payload: dict[str, object] | str) -> bytes:
    data = payload if isinstance(payload, str) else orjson.dumps(payload).decode()
    return f"data: {data}\n\n".encode()


STREAM = [
    _event({"choices": [{"delta": {"content": "h\u00e9"}}], "usage": None}),
    _event({"choices": [{"delta": {"content": " \U0001f600"}}]}),
    _event({"choices": [{"delta": {}, "finish_reason": "stop"}]}),
    _event({"choices": [], "usage": {"prompt_tokens": 12, "completion_tokens": 3}}),
    _event("[DONE]"),
]


class _Writer:
    def __init__(self) -> None:
        self.pieces: list[bytes] = []
        self.last: list[bool] = []

    def write(self, data: bytes, *, last: bool = False) -> None:
        self.pieces.append(data)
        self.last.append(last)


def _relay(pieces: list[bytes], *, strip: bool) -> tuple[bytes, SseRelay]:
    writer = _Writer()
    relay = SseRelay(writer, strip_usage=strip)  # type: ignore[arg-type]
    for piece in pieces:
        relay(piece)
    relay.finish()
    return b"".join(writer.pieces), relay


@given(cuts=st.lists(st.integers(min_value=0, max_value=len(b"".join(STREAM))), max_size=12))
@pytest.mark.parametrize("strip", [False, True])
def test_relay_is_exact_however_the_stream_is_cut(strip: bool, cuts: list[int]) -> None:
    whole = b"".join(STREAM)
    bounds = sorted({0, len(whole), *cuts})
    pieces = [whole[a:b] for a, b in itertools.pairwise(bounds)]
    out, relay = _relay(pieces, strip=strip)
    expected = whole.replace(STREAM[3], b"") if strip else whole
    assert out == expected
    assert (relay.prompt, relay.completion) == (12, 3)


def test_relay_writes_whole_events_without_copying() -> None:
    writer = _Writer()
    relay = SseRelay(writer, strip_usage=False)  # type: ignore[arg-type]
    relay(STREAM[0])
    assert writer.pieces[0] is STREAM[0]


def test_relay_without_usage_estimates_completion_from_events() -> None:
    out, relay = _relay([*STREAM[:3], STREAM[4]], strip=True)
    assert out == b"".join([*STREAM[:3], STREAM[4]])
    assert relay.completion is None
    assert relay.estimated_completion == 3


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        (b'{"usage":{"prompt_tokens":5,"completion_tokens":7}}', (5, 7)),
        (b'{"usage": {"prompt_tokens": 5, "completion_tokens": 7}}', (5, 7)),
        (b'{"choices":[]}', (None, None)),
        (b"", (None, None)),
        (b'{"usage":{"prompt_tokens":5,"completion_tokens":0,"x":"\xc3\xa9"}}', (5, 0)),
    ],
)
def test_read_usage(body: bytes, expected: tuple[int | None, int | None]) -> None:
    assert read_usage(body) == expected


CRLF_STREAM = [event.replace(b"\n\n", b"\r\n\r\n") for event in STREAM]


@given(cuts=st.lists(st.integers(min_value=0, max_value=len(b"".join(CRLF_STREAM))), max_size=12))
@pytest.mark.parametrize("strip", [False, True])
def test_relay_is_exact_with_crlf_framed_events(strip: bool, cuts: list[int]) -> None:
    whole = b"".join(CRLF_STREAM)
    bounds = sorted({0, len(whole), *cuts})
    out, relay = _relay([whole[a:b] for a, b in itertools.pairwise(bounds)], strip=strip)
    assert out == (whole.replace(CRLF_STREAM[3], b"") if strip else whole)
    assert (relay.prompt, relay.completion) == (12, 3)


@pytest.mark.parametrize("strip", [False, True])
def test_relay_writes_a_whole_read_of_events_in_one_write(strip: bool) -> None:
    """Many events parsed from one socket read leave in one client write (one syscall)."""
    writer = _Writer()
    relay = SseRelay(writer, strip_usage=strip)  # type: ignore[arg-type]
    relay(b"".join(STREAM))
    assert writer.pieces == [b"".join(s for s in STREAM if not strip or s != STREAM[3])]
    assert relay.events == len(STREAM) - strip


def test_relay_keeps_per_chunk_usage_events_that_carry_choices() -> None:
    """``continuous_usage_stats``: usage in every content event; none of them is dropped,
    the last one counts."""
    events = [
        _event(
            {
                "choices": [{"delta": {"content": "a"}}],
                "usage": {"prompt_tokens": 4, "completion_tokens": n},
            }
        )
        for n in (1, 2)
    ]
    out, relay = _relay([b"".join(events)], strip=True)
    assert out == b"".join(events)
    assert (relay.prompt, relay.completion) == (4, 2)


def test_the_last_events_end_the_response_in_the_same_write() -> None:
    """Once the upstream's answer is complete, the final events and the end of the client's
    response leave together; a held partial event keeps the end for ``finish``."""
    done = [False]
    writer = _Writer()
    relay = SseRelay(writer, strip_usage=True, ended=lambda: done[0])  # type: ignore[arg-type]
    relay(STREAM[0])
    done[0] = True
    relay(b"".join(STREAM[1:]))
    assert writer.last == [False, True]
    assert b"".join(writer.pieces) == b"".join(s for s in STREAM if s != STREAM[3])

    writer = _Writer()
    relay = SseRelay(writer, strip_usage=False, ended=lambda: True)  # type: ignore[arg-type]
    relay(STREAM[0] + b"data: cut")
    relay.finish()
    assert writer.pieces == [STREAM[0], b"data: cut"]
    assert writer.last == [False, False]
