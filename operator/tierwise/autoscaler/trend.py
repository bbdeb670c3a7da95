"""Load trend: scale up for the load a replica's cold start from now, not the load now.

Why it exists: a reactive autoscaler asks for a replica when the load is already over target
and gets it a cold start later (one to ten minutes for an LLM engine). A load that keeps
growing through that time is served by a queue meanwhile. This module measures how fast the
load has grown over the last ``span`` seconds (the lookahead, by default the cold start)
and projects it as far again, so the replicas are asked for while the growth is under way.
Pure: the caller passes readings and times.

The load level is the load in replicas at target, the same for any replica count sharing
it: KV-cache usage summed over the replicas over ``targetKVCacheUsage``, plus waiting and
router-held requests over ``targetQueueDepth``. Both terms: a saturated replica's KV usage
stops growing at ~1 while the requests queued behind it keep growing.

Noise: a reading of the level is a snapshot of requests in flight, and with a few dozen of
them it jitters by 15-25% from one reading to the next; the first version of this trend
projected two 15 s differences two minutes ahead, multiplying that jitter eightfold, and
the benchmark showed most of what it bought was that noise held as headroom. So growth is
measured between means of the readings in ``window``-long stretches at the start, middle
and end of the span; the smaller of the two half-span rates is projected (a sustained
ramp raises both, a spike one), over no longer than it was measured. A burst that starts
within a cold start cannot be seen coming this way; the cold-start headroom
(:mod:`tierwise.autoscaler.coldstart`) is what meets those.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from tierwise.autoscaler.model import Signals

MAX_WINDOW_S = 60.0
"""Longest stretch averaged at each end and in the middle of the span."""


@dataclass(frozen=True, slots=True)
class Growth:
    """The load level now (mean of the last ``window``) and its growth per second."""

    level: float
    rate: float

    def projected(self, seconds: float) -> float:
        """The level ``seconds`` ahead; a falling load projects to itself (the
        stabilisation windows handle scale-down)."""
        return self.level + max(0.0, self.rate) * seconds


def load_level(signals: Signals, *, target_kv: float, target_queue: float) -> float | None:
    """The load in replicas at target (see the module docstring); ``None`` unless every
    replica reported both its queue depth and its KV-cache usage. Unknown router demand
    counts as none held, as in the queue-depth proposal."""
    rows = signals.replicas
    if not rows or any(r.queue_depth is None or r.kv_cache_usage is None for r in rows):
        return None
    kv = sum(r.kv_cache_usage or 0.0 for r in rows)
    waiting = sum(r.queue_depth or 0.0 for r in rows) + (signals.demand or 0.0)
    return kv / target_kv + waiting / target_queue


def window_for(span: float, interval: float) -> float:
    """The averaging stretch for ``span``: a quarter of it, at most a minute, at least one
    decision interval (so each stretch holds a reading)."""
    return max(min(MAX_WINDOW_S, span / 4), interval)


def growth(
    loads: Sequence[tuple[float, float]], *, now: float, level: float, span: float, window: float
) -> Growth | None:
    """The growth over the last ``span`` seconds of the readings ``loads`` (time, level)
    and (``now``, ``level``); ``None`` unless each of the three ``window`` stretches (start,
    middle, end) holds a reading."""
    if not span > 0:
        return None
    points = [(at, v) for at, v in loads if at < now] + [(now, level)]
    start = _mean(points, now - span, now - span + window)
    middle = _mean(points, now - span / 2 - window / 2, now - span / 2 + window / 2)
    end = _mean(points, now - window, now)
    if start is None or middle is None or end is None:
        return None
    return Growth(level=end, rate=min(middle - start, end - middle) / (span / 2))


def _mean(points: Sequence[tuple[float, float]], lo: float, hi: float) -> float | None:
    values = [v for at, v in points if lo - 1e-6 <= at <= hi + 1e-6]
    return sum(values) / len(values) if values else None
