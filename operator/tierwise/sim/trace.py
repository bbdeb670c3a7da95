"""Request traces in the public LLM-inference trace format: read, check, write.

Why it exists: an autoscaler tuned on the trace written alongside it proves little, so the
benchmark replays production-shaped traces. The public LLM-inference traces (Azure's 2023
and 2024 releases, and the tools built on them) share one CSV format, which this module is
the only reader and writer of:

* a header row naming at least ``TIMESTAMP``, ``ContextTokens`` and ``GeneratedTokens``
  (in any order; other columns are allowed and ignored);
* one row per request: ``TIMESTAMP`` as ``YYYY-MM-DD HH:MM:SS.ffffff`` (wall clock, no
  zone; one to nine fraction digits or none, since the published files carry seven),
  prompt tokens and generated tokens as non-negative integers.

Nothing else is assumed: rows need not be sorted (they are sorted here, stably), blank
lines are skipped, and a malformed row is refused with an error naming the line, the
column and the fix, never skipped (a silently shortened trace would flatter a policy).
Pure: no clock, no randomness; ``load`` is the only function that opens a file.
"""

from __future__ import annotations

import csv
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import TextIO

TIMESTAMP = "TIMESTAMP"
CONTEXT_TOKENS = "ContextTokens"
GENERATED_TOKENS = "GeneratedTokens"
COLUMNS = (TIMESTAMP, CONTEXT_TOKENS, GENERATED_TOKENS)
TIMESTAMP_FORMAT = "YYYY-MM-DD HH:MM:SS.ffffff"

_TIMESTAMP = re.compile(r"(\d{4})-(\d{2})-(\d{2}) (\d{2}):(\d{2}):(\d{2})(?:\.(\d{1,9}))?")
_COUNT = re.compile(r"\d{1,9}")


class TraceFormatError(ValueError):
    """A trace that is not in the format; the message names the file, the line and the fix."""

    def __init__(self, source: str, line: int, message: str) -> None:
        super().__init__(f"{source}:{line}: {message}")
        self.source = source
        self.line = line


@dataclass(frozen=True, slots=True)
class TraceRow:
    """One request: when it arrived (seconds after the trace's first request) and its size."""

    at_s: float
    context_tokens: int
    generated_tokens: int


@dataclass(frozen=True, slots=True)
class Trace:
    """A parsed trace: its rows in arrival order, and the wall-clock time of the first."""

    name: str
    start: datetime
    rows: tuple[TraceRow, ...]

    @property
    def duration_s(self) -> float:
        """Seconds from the first request to the last."""
        return self.rows[-1].at_s if self.rows else 0.0

    def compressed(self, speedup: float) -> Trace:
        """The same requests ``speedup`` times faster: a 1-hour trace at 4 becomes 15
        minutes at four times the rate (for traces too small for the simulated fleet)."""
        if not speedup > 0:
            raise ValueError(f"speedup must be a positive number, not {speedup!r}")
        if speedup == 1:
            return self
        rows = tuple(replace(r, at_s=r.at_s / speedup) for r in self.rows)
        return replace(self, rows=rows, name=f"{self.name} x{speedup:g}")

    def per_minute(self) -> list[int]:
        """Requests arriving in each minute of the trace."""
        counts = [0] * (int(self.duration_s // 60) + 1)
        for row in self.rows:
            counts[int(row.at_s // 60)] += 1
        return counts


def parse(lines: Iterable[str], *, source: str = "<trace>") -> Trace:
    """The trace in ``lines`` (a CSV text with its header), or :class:`TraceFormatError`."""
    reader = csv.reader(lines)
    header = _header(next(reader, None), source)
    where = [header.index(c) for c in COLUMNS]
    stamped: list[tuple[tuple[int, float], int, int]] = []
    start: datetime | None = None
    for fields in reader:
        if not fields or all(not f.strip() for f in fields):
            continue  # blank line
        line = reader.line_num
        if len(fields) != len(header):
            raise TraceFormatError(
                source,
                line,
                f"{len(fields)} fields where the header has {len(header)}; "
                "write one request per line with a value for every column",
            )
        at, wall = _timestamp(fields[where[0]], source, line)
        context = _count(fields[where[1]], CONTEXT_TOKENS, source, line)
        generated = _count(fields[where[2]], GENERATED_TOKENS, source, line)
        stamped.append((at, context, generated))
        start = wall if start is None or wall < start else start
    if start is None:
        raise TraceFormatError(source, 2, "no requests after the header; add one row each")
    stamped.sort(key=lambda item: item[0])
    (whole0, fraction0) = stamped[0][0]
    rows = tuple(
        TraceRow((whole - whole0) + (fraction - fraction0), context, generated)
        for (whole, fraction), context, generated in stamped
    )
    return Trace(name=source, start=start, rows=rows)


def load(path: Path | str) -> Trace:
    """The trace in the CSV file at ``path`` (UTF-8, a byte-order mark allowed)."""
    path = Path(path)
    with path.open(encoding="utf-8-sig", newline="") as handle:
        return parse(handle, source=path.name)


def write(rows: Sequence[TraceRow], out: TextIO, *, start: datetime) -> None:
    """``rows`` as a trace file whose first request is at ``start`` (microseconds kept)."""
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(COLUMNS)
    origin = start.replace(tzinfo=UTC).timestamp()
    for row in rows:
        wall = datetime.fromtimestamp(origin + row.at_s, UTC)
        writer.writerow(
            (wall.strftime("%Y-%m-%d %H:%M:%S.%f"), row.context_tokens, row.generated_tokens)
        )


def _header(fields: list[str] | None, source: str) -> list[str]:
    if fields is None:
        raise TraceFormatError(source, 1, f"empty file; the first line must name {_names()}")
    header = [f.strip() for f in fields]
    missing = [c for c in COLUMNS if c not in header]
    if missing:
        raise TraceFormatError(
            source,
            1,
            f"the header lacks {', '.join(missing)}; the public LLM-inference trace format "
            f"names {_names()} on its first line (other columns are ignored)",
        )
    return header


def _timestamp(text: str, source: str, line: int) -> tuple[tuple[int, float], datetime]:
    """Whole seconds since the epoch (the wall clock read as UTC) and the fraction with every
    digit (kept apart so sub-microsecond digits survive), and the wall-clock time."""
    match = _TIMESTAMP.fullmatch(text.strip())
    problem = f"{TIMESTAMP} {text!r} is not {TIMESTAMP_FORMAT}"
    if match is None:
        raise TraceFormatError(source, line, f"{problem}; write e.g. 2024-05-10 00:00:01.250000")
    year, month, day, hour, minute, second = (int(g) for g in match.groups()[:6])
    fraction = match.group(7) or "0"
    try:
        wall = datetime(year, month, day, hour, minute, second, int(fraction[:6].ljust(6, "0")))
    except ValueError as err:
        raise TraceFormatError(source, line, f"{problem}: {err}") from err
    whole = int(wall.replace(microsecond=0, tzinfo=UTC).timestamp())
    return (whole, int(fraction) / 10 ** len(fraction)), wall


def _count(text: str, column: str, source: str, line: int) -> int:
    value = text.strip()
    if not _COUNT.fullmatch(value):
        raise TraceFormatError(
            source, line, f"{column} {text!r} is not a token count; write a whole number >= 0"
        )
    return int(value)


def _names() -> str:
    return ", ".join(COLUMNS)
