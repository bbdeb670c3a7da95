"""Load trend: scale up for the load a replica's cold start from now, not the load now.

Why it exists: a reactive autoscaler asks for a replica when the load is already over target
and gets it a cold start later (one to several minutes for an LLM engine). A burst that
ramps faster than that is served by a queue in the meantime. This module measures how fast
the load is growing and projects it ``scaleUpLookahead`` ahead, so the scale-up is asked for
while the burst is still ramping. Pure: the caller passes readings and times.

The load level is the load in replicas at target, the same for any replica count sharing
it: KV-cache usage summed over the replicas over ``targetKVCacheUsage``, plus waiting and
router-held requests over ``targetQueueDepth``. Both terms: a saturated replica's KV usage
stops growing at ~1 while the requests queued behind it keep growing.

Noise: the level of a Poisson load jitters from one reading to the next, and a projection
multiplies that jitter by lookahead/interval. The growth rate is therefore the smaller of
the last two intervals' rates: a ramp raises both, a random spike raises one and lowers the
next. A burst is seen one reading later than a single difference would see it, and a flat
load almost never projects upwards (measured in ``docs/benchmarks/autoscale.md``).
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence

from tierwise.autoscaler.model import Signals

INTERVALS = 2
"""Consecutive intervals that must all show growth; the smallest rate is projected."""


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


def growth(
    loads: Sequence[tuple[float, float]], *, now: float, level: float, max_gap: float
) -> float | None:
    """Growth of the load level per second: the smallest rate over the last ``INTERVALS``
    intervals ending at (``now``, ``level``); ``None`` without that many recent readings
    (a gap longer than ``max_gap`` or a reading out of order breaks the run)."""
    points = [*loads[-INTERVALS:], (now, level)]
    rates = [
        (v1 - v0) / (t1 - t0)
        for (t0, v0), (t1, v1) in itertools.pairwise(points)
        if 0 < t1 - t0 <= max_gap
    ]
    if len(rates) < INTERVALS:
        return None
    return min(rates)


def projected(level: float, rate: float, lookahead: float) -> float:
    """The load level ``lookahead`` seconds ahead; a falling load projects to itself (the
    stabilisation windows handle scale-down)."""
    return level + max(0.0, rate) * lookahead
