"""The trace generator: deterministic per seed, and shaped like production traffic (requests
per minute swinging 15 -> 630 within an hour, long prompts arriving in clusters)."""

from __future__ import annotations

import io
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path

import pytest

from tierwise.sim.trace import TraceRow, load, parse, write
from tierwise.sim.tracegen import SHAPES, Shape, generate

FIXTURE = Path(__file__).parent / "fixtures" / "trace_tiny.csv"


def test_a_seed_always_gives_the_same_trace_and_another_seed_another() -> None:
    shape = SHAPES["tiny"]
    assert generate(shape, 7) == generate(shape, 7)
    assert generate(shape, 7) != generate(shape, 8)


def test_the_committed_fixture_is_what_the_generator_makes() -> None:
    out = io.StringIO()
    write(generate(SHAPES["tiny"], 1), out, start=SHAPES["tiny"].start)
    assert out.getvalue() == FIXTURE.read_text(encoding="utf-8")


def test_requests_per_minute_swing_15_to_630_within_an_hour() -> None:
    morning = replace(SHAPES["code-12h"], duration_s=3 * 3600)
    counts = parse(_csv(morning)).per_minute()[:-1]
    start = next(i for i, c in enumerate(counts) if c <= 20)
    assert max(counts[start : start + 60]) >= 600


def test_long_prompts_arrive_in_clusters() -> None:
    rows = generate(replace(SHAPES["code-12h"], duration_s=6 * 3600), 1)
    long_by_minute: dict[int, int] = {}
    for row in rows:
        if row.context_tokens >= 8000:
            long_by_minute[int(row.at_s // 60)] = long_by_minute.get(int(row.at_s // 60), 0) + 1
    busiest = sorted(long_by_minute.values(), reverse=True)
    share = sum(busiest[:60]) / sum(busiest)
    assert share > 0.5  # half the long prompts fall in the busiest hour's worth of minutes


@pytest.mark.parametrize("name", sorted(SHAPES))
def test_every_shape_writes_a_trace_that_reads_back(name: str) -> None:
    shape = replace(SHAPES[name], duration_s=min(SHAPES[name].duration_s, 900))
    rows = generate(shape, 3)
    back = parse(_csv(shape, rows))
    assert len(back.rows) == len(rows)
    assert back.start.replace(microsecond=0) >= shape.start
    assert all(r.context_tokens >= 1 and r.generated_tokens >= 1 for r in back.rows)


def test_the_fixture_loads_as_a_trace() -> None:
    trace = load(FIXTURE)
    assert len(trace.rows) > 1000
    assert trace.duration_s <= SHAPES["tiny"].duration_s


def _csv(shape: Shape, rows: Sequence[TraceRow] | None = None) -> list[str]:
    out = io.StringIO()
    write(rows if rows is not None else generate(shape, 1), out, start=shape.start)
    return out.getvalue().splitlines(keepends=True)
