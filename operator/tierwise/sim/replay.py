"""Offline replay of a trace through one simulated replica, with no clock and no HTTP.

Why it exists: the autoscaler's benchmark must ask "how would a replica with these
parameters have served this trace?" thousands of times, fast and deterministically. This
is the same model the live simulator sleeps through (``engine``), as a discrete-event
simulation: arrivals join a bounded FIFO queue, up to ``max_running`` requests run at once,
each pays prefill for its uncached tokens (``prefix_cache``) and then one decode step per
further output token at the batch size current when the step starts.
"""

from __future__ import annotations

import heapq
import itertools
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, field

from tierwise.sim.latency import LatencyParams, decode_step_seconds, prefill_seconds
from tierwise.sim.prefix_cache import DEFAULT_BLOCK_SIZE, PrefixCache


@dataclass(frozen=True, slots=True)
class TraceRequest:
    """One request of a trace: when it arrives, its prompt token ids, tokens to generate."""

    arrival_s: float
    tokens: Sequence[int]
    output_tokens: int


@dataclass(frozen=True, slots=True)
class ReplayResult:
    """What happened to one request; times are absolute, on the trace's clock."""

    arrival_s: float
    rejected: bool = False
    start_s: float = 0.0
    first_token_s: float = 0.0
    finish_s: float = 0.0
    cached_tokens: int = 0

    @property
    def ttft_s(self) -> float:
        return self.first_token_s - self.arrival_s

    @property
    def latency_s(self) -> float:
        return self.finish_s - self.arrival_s


@dataclass
class _Replica:
    params: LatencyParams
    cache: PrefixCache
    trace: Sequence[TraceRequest]
    results: dict[int, ReplayResult] = field(default_factory=dict)
    waiting: deque[int] = field(default_factory=deque)
    remaining: dict[int, int] = field(default_factory=dict)
    running: int = 0
    events: list[tuple[float, int, str, int]] = field(default_factory=list)
    seq: itertools.count[int] = field(default_factory=itertools.count)

    def push(self, when: float, kind: str, idx: int) -> None:
        heapq.heappush(self.events, (when, next(self.seq), kind, idx))

    def arrive(self, now: float, idx: int) -> None:
        if self.running < self.params.max_running:
            self.start(now, idx)
        elif len(self.waiting) < self.params.max_queue:
            self.waiting.append(idx)
        else:
            self.results[idx] = ReplayResult(arrival_s=now, rejected=True)

    def start(self, now: float, idx: int) -> None:
        request = self.trace[idx]
        self.running += 1
        hit = self.cache.lookup(request.tokens, max_hit_tokens=len(request.tokens) - 1)
        self.results[idx] = ReplayResult(
            arrival_s=request.arrival_s, start_s=now, cached_tokens=hit
        )
        self.push(now + prefill_seconds(self.params, len(request.tokens) - hit), "prefill", idx)

    def prefilled(self, now: float, idx: int) -> None:
        self.cache.insert(self.trace[idx].tokens)
        r = self.results[idx]
        self.results[idx] = ReplayResult(r.arrival_s, False, r.start_s, now, now, r.cached_tokens)
        self.remaining[idx] = max(self.trace[idx].output_tokens - 1, 0)
        self.step(now, idx)

    def step(self, now: float, idx: int) -> None:
        if self.remaining[idx] <= 0:
            r = self.results[idx]
            self.results[idx] = ReplayResult(
                r.arrival_s, False, r.start_s, r.first_token_s, now, r.cached_tokens
            )
            self.running -= 1
            if self.waiting:
                self.start(now, self.waiting.popleft())
            return
        self.remaining[idx] -= 1
        self.push(now + decode_step_seconds(self.params, self.running), "token", idx)


def replay(
    trace: Sequence[TraceRequest],
    params: LatencyParams,
    *,
    block_size: int = DEFAULT_BLOCK_SIZE,
    cache: PrefixCache | None = None,
) -> list[ReplayResult]:
    """Serve ``trace`` on one replica; results are in trace order.

    Pass ``cache`` to carry a warm prefix cache across calls; by default a fresh one sized
    from ``params.kv_capacity_tokens`` is used.
    """
    if cache is None:
        cache = PrefixCache(
            capacity_blocks=params.kv_capacity_tokens // block_size, block_size=block_size
        )
    replica = _Replica(params=params, cache=cache, trace=trace)
    for idx, request in enumerate(trace):
        replica.push(request.arrival_s, "arrive", idx)
    while replica.events:
        now, _, kind, idx = heapq.heappop(replica.events)
        if kind == "arrive":
            replica.arrive(now, idx)
        elif kind == "prefill":
            replica.prefilled(now, idx)
        else:
            replica.step(now, idx)
    return [replica.results[idx] for idx in range(len(trace))]
