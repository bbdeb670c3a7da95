"""Which replica to remove on scale-down: ``controller.kubernetes.io/pod-deletion-cost``.

Why it exists: when a Deployment shrinks, its ReplicaSet deletes (among equally ready pods)
the one with the lowest deletion-cost annotation first. Removing an LLM replica throws away
its in-flight streams (they must drain within the termination grace period) and its warm
prefix cache (the next requests of its sessions pay full prefill elsewhere). So before a
scale-down the controller annotates every pod with a cost from its last sample, and the
cheapest goes. Pure: samples in, annotation values out.

Cost model (int32, higher = keep):

``IN_FLIGHT_WEIGHT`` 1000  per running or waiting request: a pod mid-stream is the most
                          expensive to lose, and one request outweighs any cache value
``CACHE_WEIGHT`` 999       times the cache value in [0, 1]: KV-cache usage (how much is
                          cached) times prefix-cache hit rate (how useful it is); ties
                          between idle pods go to the one whose cache serves hits
A pod whose load is unknown gets ``UNKNOWN_COST`` (-1, below every readable pod): it could
not be read, so it is likely unhealthy (the ReplicaSet also deletes unready pods first).
"""

from __future__ import annotations

from collections.abc import Iterable

from tierwise.autoscaler.model import ReplicaSample

ANNOTATION = "controller.kubernetes.io/pod-deletion-cost"
IN_FLIGHT_WEIGHT = 1000
CACHE_WEIGHT = 999
UNKNOWN_COST = -1
INT32_MIN = -(2**31)
INT32_MAX = 2**31 - 1


def deletion_cost(sample: ReplicaSample) -> int:
    """The pod-deletion-cost of one replica (see the module docstring)."""
    if sample.running_requests is None and sample.queue_depth is None:
        return UNKNOWN_COST
    in_flight = (sample.running_requests or 0.0) + (sample.queue_depth or 0.0)
    usage = min(max(sample.kv_cache_usage or 0.0, 0.0), 1.0)
    hit_rate = min(max(sample.prefix_cache_hit_rate or 0.0, 0.0), 1.0)
    cost = IN_FLIGHT_WEIGHT * max(in_flight, 0.0) + CACHE_WEIGHT * usage * hit_rate
    return max(INT32_MIN, min(INT32_MAX, round(cost)))


def deletion_costs(samples: Iterable[ReplicaSample]) -> dict[str, str]:
    """Pod name -> annotation value (a decimal string, as the annotation requires)."""
    return {s.pod: str(deletion_cost(s)) for s in samples}


def removal_order(samples: Iterable[ReplicaSample]) -> list[str]:
    """Pods cheapest first, ties by name (the ReplicaSet breaks equal costs its own way:
    readiness first, then restarts and age)."""
    return [s.pod for s in sorted(samples, key=lambda s: (deletion_cost(s), s.pod))]
