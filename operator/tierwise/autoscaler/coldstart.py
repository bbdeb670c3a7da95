"""Cold start: how long a new replica takes to serve, and the headroom that buys.

Why it exists: a replica asked for now serves a cold start later (scheduling, image pull,
weights from a node-local cache in about a minute, from object storage in a few, on a new
GPU node in ten), and whatever the load does meanwhile is met by the replicas already
running. Two consequences, both sized here from the cold start:

* the load trend looks that far ahead (``scaleUpLookahead`` defaults to the cold start);
* a burst cannot be seen coming, so some capacity must already stand: the headroom factor
  ``(1 + headroomPerMinute / 100) ** (cold start in minutes)``, by which
  ``targetKVCacheUsage`` is divided. With the default 5% per minute: 1.05 for a one-minute
  cold start, 1.16 for three, 1.63 for ten; at most :data:`MAX_HEADROOM`.

The cold start is ``spec.autoscaling.coldStart`` when set, else measured from the engine
pods themselves: the time from each pod's creation to its ``Ready`` condition, median over
the newest :data:`SAMPLE` ready pods (a restarted container makes one pod's time longer;
the median shrugs it off), else :data:`DEFAULT_COLD_START_S` until a pod has been seen
ready. Pure: pods come in as the API's plain dicts.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from typing import Any

DEFAULT_COLD_START_S = 120.0
"""Assumed until a replica has been seen starting (the trend's old fixed lookahead)."""
SAMPLE = 5
MAX_HEADROOM = 4.0


def measured(pods: Iterable[Mapping[str, Any]]) -> float | None:
    """Median seconds from creation to Ready of the newest :data:`SAMPLE` ready pods."""
    starts: list[tuple[datetime, float]] = []
    for pod in pods:
        created = _time((pod.get("metadata") or {}).get("creationTimestamp"))
        ready = _ready_since(pod)
        if created is not None and ready is not None and ready >= created:
            starts.append((created, (ready - created).total_seconds()))
    newest = sorted(starts)[-SAMPLE:]
    return float(statistics.median(s for _, s in newest)) if newest else None


def headroom(per_minute_percent: float, cold_start_s: float) -> float:
    """The factor of spare capacity for growth at ``per_minute_percent`` over a cold start."""
    factor = math.pow(1 + per_minute_percent / 100, max(cold_start_s, 0.0) / 60)
    return min(MAX_HEADROOM, factor)


def _ready_since(pod: Mapping[str, Any]) -> datetime | None:
    for condition in (pod.get("status") or {}).get("conditions") or []:
        if condition.get("type") == "Ready" and condition.get("status") == "True":
            return _time(condition.get("lastTransitionTime"))
    return None


def _time(value: Any) -> datetime | None:
    if not isinstance(value, str):
        return None
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        return None
    return parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=UTC)
