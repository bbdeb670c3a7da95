"""Write a generated trace in the public LLM-inference trace format (simulated traffic).

Why it exists: the autoscaling benchmark replays traces with ``--trace FILE.csv``; this
writes the project's own ones (shapes in :mod:`tierwise.sim.tracegen`) so every number in
``docs/benchmarks/autoscale.md`` can be reproduced from a command, and prints what makes a
trace hard: its requests-per-minute range, the widest swing within an hour, and how many
prompts are long.

Run: ``.venv/bin/python bench/make_trace.py --shape conv-day --seed 1 --out conv-day.csv``.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from tierwise.sim import trace
from tierwise.sim.tracegen import SHAPES, generate


def describe(rows: trace.Trace) -> str:
    """One line: size, requests per minute (min/max), the widest rise within an hour."""
    counts = rows.per_minute()[:-1] or rows.per_minute()
    rise = max(
        (max(counts[i : i + 60]) / max(counts[i], 1) for i in range(len(counts))), default=0.0
    )
    long = sum(r.context_tokens >= 8000 for r in rows.rows)
    return (
        f"{len(rows.rows)} requests over {rows.duration_s / 3600:.1f} h; requests/min "
        f"{min(counts)}-{max(counts)}; widest rise within an hour x{rise:.0f}; "
        f"{long} prompts of 8k+ tokens ({100 * long / len(rows.rows):.1f}%)"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shape", choices=sorted(SHAPES), required=True)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--out", type=Path, required=True, help="CSV file to write")
    args = parser.parse_args(argv)
    shape = SHAPES[args.shape]
    rows = generate(shape, args.seed)
    with args.out.open("w", encoding="utf-8", newline="") as out:
        trace.write(rows, out, start=shape.start)
    print(f"{args.out}: {describe(trace.load(args.out))}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
