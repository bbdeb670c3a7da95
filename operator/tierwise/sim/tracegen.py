"""Seeded request traces with production's shape, in the public trace format.

Why it exists: the autoscaling benchmark must be judged on traffic it was not written
alongside, and public LLM-inference traces are too large to commit. This generator makes
traces with the features that hurt autoscalers in those traces (requests per minute
swinging 15 -> 630 within an hour, bursts, prompts of tens of thousands of tokens arriving
in clusters) as :class:`~tierwise.sim.trace.TraceRow` lists that
:func:`tierwise.sim.trace.write` turns into CSV. A trace is a pure function of its shape and
seed: the same arguments give the same rows on every machine.

A :class:`Shape` is:

``day_rpm``      requests per minute through the day: (hour, rpm) knots, interpolated
                 linearly and wrapping at 24 h; arrivals are Poisson around it per second
``surges``       bursts on top: ``count`` of them, each multiplying the rate by a factor
                 drawn from ``factor`` for ``length_s``, reached over a ``ramp_s`` ramp
``long_prompts`` clusters of long prompts (document uploads, repository context): during
                 each, a ``share`` of requests draw their prompt from ``tokens``
``context``, ``generated``  lognormal token counts (mean, sigma, cap) of the other requests

Presets (:data:`SHAPES`): ``synthetic`` (the benchmark's original day), ``conv-day`` (a
business day of chat traffic at fleet scale), ``code-12h`` (a code assistant at public
trace scale, 15 <-> 630 requests per minute, long contexts in clusters) and ``tiny`` (ten
minutes for tests).
"""

from __future__ import annotations

import bisect
import math
import random
from dataclasses import dataclass, field
from datetime import datetime

from tierwise.sim.trace import TraceRow

DAY_S = 24 * 3600


@dataclass(frozen=True, slots=True)
class Tokens:
    """A lognormal token count with this ``mean``, ``sigma`` (of the log) and ``cap``."""

    mean: float
    sigma: float
    cap: int

    def draw(self, rng: random.Random) -> int:
        mu = math.log(self.mean) - self.sigma**2 / 2
        return max(1, min(self.cap, round(rng.lognormvariate(mu, self.sigma))))


@dataclass(frozen=True, slots=True)
class Surges:
    """Bursts on top of the day's rate (see the module docstring)."""

    count: int = 0
    factor: tuple[float, float] = (1.5, 3.0)
    length_s: tuple[float, float] = (180.0, 900.0)
    ramp_s: float = 60.0


@dataclass(frozen=True, slots=True)
class LongPrompts:
    """Clusters of long prompts (see the module docstring)."""

    count: int = 0
    length_s: tuple[float, float] = (600.0, 1800.0)
    share: float = 0.3
    tokens: Tokens = Tokens(12_000, 0.4, 32_768)


@dataclass(frozen=True, slots=True)
class Shape:
    """What a generated trace looks like (see the module docstring)."""

    duration_s: int
    day_rpm: tuple[tuple[float, float], ...]
    context: Tokens
    generated: Tokens
    surges: Surges = Surges()
    long_prompts: LongPrompts = LongPrompts()
    start: datetime = field(default_factory=lambda: datetime(2024, 5, 13))
    """Wall-clock time of the trace's first second (a Monday 00:00 by default)."""


def _synthetic_day() -> tuple[tuple[float, float], ...]:
    """The original benchmark's day: 720 rpm at 16:00, 15% of it at 04:00, every 15 min."""
    knots = []
    for quarter in range(97):
        hour = quarter / 4
        shape = (0.5 - 0.5 * math.cos(2 * math.pi * (hour - 4) / 24)) ** 1.5
        knots.append((hour, 720.0 * (0.15 + 0.85 * shape)))
    return tuple(knots)


SHAPES: dict[str, Shape] = {
    "synthetic": Shape(
        duration_s=DAY_S,
        day_rpm=_synthetic_day(),
        context=Tokens(1500, 0.8, 32_768),
        generated=Tokens(250, 0.8, 4096),
        surges=Surges(count=8, factor=(1.5, 3.0), length_s=(180, 900), ramp_s=60),
    ),
    "conv-day": Shape(
        duration_s=DAY_S,
        day_rpm=(
            (0, 120),
            (5, 40),
            (7.5, 50),
            (8.5, 1300),
            (11.5, 1500),
            (12.5, 900),
            (13.5, 1200),
            (15.5, 1550),
            (18, 1100),
            (20.5, 500),
            (24, 120),
        ),
        context=Tokens(1000, 1.0, 32_768),
        generated=Tokens(220, 0.9, 2048),
        surges=Surges(count=10, factor=(1.5, 2.5), length_s=(120, 600), ramp_s=30),
        long_prompts=LongPrompts(
            count=8, length_s=(600, 2400), share=0.35, tokens=Tokens(12_000, 0.5, 32_768)
        ),
    ),
    "code-12h": Shape(
        duration_s=12 * 3600,
        day_rpm=(
            (0, 15),
            (6, 15),
            (6.8, 630),
            (8, 450),
            (9.5, 600),
            (11, 380),
            (12, 60),
            (12.7, 15),
            (13.3, 600),
            (15, 520),
            (16.5, 630),
            (17.5, 150),
            (18, 15),
            (24, 15),
        ),
        context=Tokens(2000, 1.0, 32_768),
        generated=Tokens(60, 1.0, 1024),
        surges=Surges(count=12, factor=(1.5, 3.0), length_s=(60, 300), ramp_s=20),
        long_prompts=LongPrompts(
            count=10, length_s=(300, 1200), share=0.5, tokens=Tokens(16_000, 0.4, 32_768)
        ),
        start=datetime(2024, 5, 13, 5, 30),
    ),
    "tiny": Shape(
        duration_s=600,
        day_rpm=((0, 15), (0.05, 300), (0.1, 120), (0.17, 15), (24, 15)),
        context=Tokens(1500, 0.8, 32_768),
        generated=Tokens(250, 0.8, 2048),
        surges=Surges(count=1, factor=(2.0, 2.0), length_s=(60, 90), ramp_s=10),
        long_prompts=LongPrompts(count=1, length_s=(120, 180), share=0.5),
    ),
}


def generate(shape: Shape, seed: int) -> list[TraceRow]:
    """The requests of ``shape`` for ``seed``, in arrival order."""
    schedule = random.Random(f"{seed}/schedule")
    arrivals = random.Random(f"{seed}/arrivals")
    sizes = random.Random(f"{seed}/sizes")
    offset = shape.start.hour * 3600 + shape.start.minute * 60 + shape.start.second
    rates = [_rpm(shape.day_rpm, (offset + t) % DAY_S) / 60 for t in range(shape.duration_s)]
    _surge(rates, shape.surges, schedule)
    long_windows = _windows(shape.duration_s, shape.long_prompts, schedule)
    rows: list[TraceRow] = []
    for t, rate in enumerate(rates):
        long = any(a <= t < b for a, b in long_windows)
        for at in sorted(t + arrivals.random() for _ in range(_poisson(arrivals, rate))):
            tokens = shape.context
            if long and sizes.random() < shape.long_prompts.share:
                tokens = shape.long_prompts.tokens
            rows.append(TraceRow(at, tokens.draw(sizes), shape.generated.draw(sizes)))
    return rows


def _rpm(knots: tuple[tuple[float, float], ...], second_of_day: float) -> float:
    """Requests per minute at ``second_of_day``, linear between the (hour, rpm) knots."""
    hour = second_of_day / 3600
    hours = [h for h, _ in knots]
    i = bisect.bisect_right(hours, hour)
    if i == 0:
        return knots[0][1]
    if i == len(knots):
        return knots[-1][1]
    (h0, r0), (h1, r1) = knots[i - 1], knots[i]
    return r0 + (r1 - r0) * (hour - h0) / (h1 - h0) if h1 > h0 else r1


def _surge(rates: list[float], surges: Surges, rng: random.Random) -> None:
    """Multiply ``rates`` in place by ``surges.count`` bursts placed at random."""
    span = len(rates)
    for _ in range(surges.count):
        length = rng.uniform(*surges.length_s)
        start = rng.randrange(max(1, span - int(length)))
        factor = rng.uniform(*surges.factor)
        for t in range(start, min(span, int(start + length))):
            ramp = min(1.0, (t - start) / surges.ramp_s) if surges.ramp_s > 0 else 1.0
            rates[t] *= 1 + (factor - 1) * ramp


def _windows(span: int, clusters: LongPrompts, rng: random.Random) -> list[tuple[int, int]]:
    out = []
    for _ in range(clusters.count):
        length = int(rng.uniform(*clusters.length_s))
        start = rng.randrange(max(1, span - length))
        out.append((start, start + length))
    return out


def _poisson(rng: random.Random, lam: float) -> int:
    """A Poisson draw by counting exponential gaps within one second."""
    if lam <= 0:
        return 0
    count, clock = 0, rng.expovariate(lam)
    while clock < 1.0:
        count += 1
        clock += rng.expovariate(lam)
    return count
