"""The public LLM-inference trace format: read what the published files hold, refuse
malformed rows with an error naming the line and the fix, and write what it reads."""

from __future__ import annotations

import io
from datetime import datetime
from pathlib import Path

import pytest

from tierwise.sim.trace import TraceFormatError, TraceRow, load, parse, write

HEADER = "TIMESTAMP,ContextTokens,GeneratedTokens"


def lines(*rows: str, header: str = HEADER) -> list[str]:
    return [header + "\n", *(row + "\n" for row in rows)]


def test_rows_become_seconds_after_the_first_request_in_arrival_order() -> None:
    trace = parse(
        lines(
            "2023-11-16 18:15:46.6805900,374,44",  # seven fraction digits, as Azure publishes
            "2023-11-16 18:15:46.5,1000,1",
            "2023-11-16 18:16:00,0,0",
        )
    )
    assert trace.start == datetime(2023, 11, 16, 18, 15, 46, 500000)
    assert [(round(r.at_s, 7), r.context_tokens, r.generated_tokens) for r in trace.rows] == [
        (0.0, 1000, 1),
        (0.18059, 374, 44),
        (13.5, 0, 0),
    ]
    assert trace.duration_s == pytest.approx(13.5)


def test_other_columns_and_their_order_are_ignored() -> None:
    trace = parse(
        [
            "Kind,GeneratedTokens,TIMESTAMP,ContextTokens\n",
            "chat,7,2024-05-10 00:00:01.000000,12\n",
            "code,3,2024-05-10 00:00:00.000000,30\n",
        ]
    )
    assert trace.rows == (TraceRow(0.0, 30, 3), TraceRow(1.0, 12, 7))


def test_blank_lines_and_a_byte_order_mark_are_tolerated(tmp_path: Path) -> None:
    path = tmp_path / "trace.csv"
    path.write_text(
        "\ufeff" + HEADER + "\r\n2024-05-10 00:00:00.000000,5,6\r\n\r\n", encoding="utf-8"
    )
    assert load(path).rows == (TraceRow(0.0, 5, 6),)


@pytest.mark.parametrize(
    ("text", "line", "names"),
    [
        ([], 1, "empty file"),
        (["TIMESTAMP,Context,GeneratedTokens\n"], 1, "lacks ContextTokens"),
        (lines(), 2, "no requests"),
        (lines("2024-05-10 00:00:00.0,1,1", "2024-05-10 00:00:01.0,1"), 3, "2 fields"),
        (lines("2024-05-10 00:00:00.0,1,1,extra"), 2, "4 fields"),
        (lines("2024/05/10 00:00:00.0,1,1"), 2, "TIMESTAMP '2024/05/10 00:00:00.0'"),
        (lines("2024-13-10 00:00:00.0,1,1"), 2, "month must be in 1..12"),
        (lines("1715299200,1,1"), 2, "is not YYYY-MM-DD HH:MM:SS.ffffff"),
        (lines("2024-05-10 00:00:00.0,-3,1"), 2, "ContextTokens '-3' is not a token count"),
        (lines("2024-05-10 00:00:00.0,12,1.5"), 2, "GeneratedTokens '1.5'"),
        (lines("2024-05-10 00:00:00.0,1,1", "", "2024-05-10 00:00:01.0,ünï,1"), 4, "'ünï'"),
    ],
)
def test_malformed_traces_are_refused_naming_the_line(
    text: list[str], line: int, names: str
) -> None:
    with pytest.raises(TraceFormatError) as caught:
        parse(text, source="t.csv")
    assert caught.value.line == line
    assert str(caught.value).startswith(f"t.csv:{line}: ")
    assert names in str(caught.value)


def test_errors_say_how_to_fix_the_row() -> None:
    with pytest.raises(TraceFormatError, match="write a whole number >= 0"):
        parse(lines("2024-05-10 00:00:00.0,many,1"))
    with pytest.raises(TraceFormatError, match=r"write e\.g\. 2024-05-10 00:00:01\.250000"):
        parse(lines("yesterday,1,1"))


def test_written_traces_read_back_to_the_microsecond() -> None:
    rows = [TraceRow(0.0, 10, 1), TraceRow(0.000001, 20, 2), TraceRow(3600.25, 30, 3)]
    out = io.StringIO()
    write(rows, out, start=datetime(2024, 5, 13, 23, 30))
    text = out.getvalue().splitlines(keepends=True)
    assert text[0] == HEADER + "\n"
    assert text[-1] == "2024-05-14 00:30:00.250000,30,3\n"
    back = parse(text)
    assert [(round(r.at_s, 6), r.context_tokens) for r in back.rows] == [
        (0.0, 10),
        (0.000001, 20),
        (3600.25, 30),
    ]


@pytest.mark.parametrize(("speedup", "duration"), [(1.0, 3600.0), (4.0, 900.0), (0.5, 7200.0)])
def test_speedup_compresses_time_keeping_every_request(speedup: float, duration: float) -> None:
    trace = parse(lines("2024-05-10 00:00:00.0,1,1", "2024-05-10 01:00:00.0,2,2"))
    fast = trace.compressed(speedup)
    assert fast.duration_s == duration
    assert [r.context_tokens for r in fast.rows] == [1, 2]


@pytest.mark.parametrize("speedup", [0.0, -1.0, float("nan")])
def test_speedup_must_be_positive(speedup: float) -> None:
    trace = parse(lines("2024-05-10 00:00:00.0,1,1"))
    with pytest.raises(ValueError, match="positive"):
        trace.compressed(speedup)
