"""A small reader for the Prometheus text exposition format, for just the names we need.

Why it exists: the autoscaler reads a handful of gauges from every engine pod every few
seconds. A full parser (prometheus_client's) builds objects for every histogram bucket of a
vLLM pod (hundreds of lines) only for us to throw them away; this reader skips any line
whose metric name is not asked for before looking at its labels (a prefix test in C, then
the name). The router's load watcher (:mod:`tierwise.router.loadwatch`) and the demo read
with it too: one reader of the format in the code base. It follows the text format
0.0.4 (``name{label="value",...} value [timestamp_ms]``, ``#`` comment lines, label values
escaped with ``\\\\``, ``\\"`` and ``\\n``; lines end at ``\\n`` only), which is what vLLM and
SGLang serve (through prometheus_client) to a client that does not ask for OpenMetrics;
tests check it against prometheus_client's output.
"""

from __future__ import annotations

import math
from collections.abc import Collection
from dataclasses import dataclass, field

_ESCAPES = {"\\": "\\", '"': '"', "n": "\n"}


@dataclass(frozen=True, slots=True)
class Sample:
    """One series' value; ``timestamp`` in seconds when the exposition carried one."""

    labels: dict[str, str] = field(default_factory=dict)
    value: float = math.nan
    timestamp: float | None = None


class ExpositionError(ValueError):
    """A line of a wanted metric that does not follow the text format."""


def parse(text: str, names: Collection[str]) -> dict[str, list[Sample]]:
    """Samples of each metric in ``names`` found in ``text`` (absent names map to nothing).

    Lines of other metrics are skipped unparsed; a malformed line of a wanted metric raises
    :class:`ExpositionError`, so a broken endpoint reads as missing, never as zero.
    """
    wanted = set(names)
    prefixes = tuple(wanted)
    out: dict[str, list[Sample]] = {}
    for lineno, raw in enumerate(text.split("\n"), 1):  # not splitlines: \r may be in a label
        # the cheap test first (one C call): most lines of an engine's exposition are
        # histogram buckets of metrics nobody asked for
        if not raw.startswith(prefixes) and not (raw[:1].isspace() and raw.strip()):
            continue
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        end = _name_end(line)
        name = line[:end]
        if name not in wanted:
            continue
        try:
            out.setdefault(name, []).append(_sample(line, end))
        except (ValueError, IndexError) as err:
            raise ExpositionError(f"line {lineno}: {err}: {line[:200]!r}") from None
    return out


def _name_end(line: str) -> int:
    for i, ch in enumerate(line):
        if ch in "{ \t":
            return i
    return len(line)


def _sample(line: str, pos: int) -> Sample:
    labels: dict[str, str] = {}
    if pos < len(line) and line[pos] == "{":
        labels, pos = _labels(line, pos + 1)
    parts = line[pos:].split()
    if not parts or len(parts) > 2:
        raise ValueError("expected a value and an optional timestamp")
    value = _number(parts[0])
    stamp = float(parts[1]) / 1000.0 if len(parts) == 2 else None
    return Sample(labels=labels, value=value, timestamp=stamp)


def _labels(line: str, pos: int) -> tuple[dict[str, str], int]:
    """Labels from just after ``{`` to the closing ``}``; returns them and the next index."""
    labels: dict[str, str] = {}
    while True:
        while line[pos] in " \t,":
            pos += 1
        if line[pos] == "}":
            return labels, pos + 1
        eq = line.index("=", pos)
        key = line[pos:eq].strip()
        if not key or line[eq + 1] != '"':
            raise ValueError(f"bad label near {line[pos : eq + 2]!r}")
        value, pos = _quoted(line, eq + 2)
        labels[key] = value


def _quoted(line: str, pos: int) -> tuple[str, int]:
    chars: list[str] = []
    while True:
        ch = line[pos]
        if ch == '"':
            return "".join(chars), pos + 1
        if ch == "\\":
            pos += 1
            chars.append(_ESCAPES.get(line[pos], "\\" + line[pos]))
        else:
            chars.append(ch)
        pos += 1


def _number(text: str) -> float:
    lowered = text.lower()
    if lowered in ("+inf", "inf"):
        return math.inf
    if lowered == "-inf":
        return -math.inf
    return float(text)  # also "NaN"
