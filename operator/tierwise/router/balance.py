"""Replica selection inside a tier: prefix-aware (default), least-load, round-robin.

Why it exists: a request served by the replica that already holds its prompt prefix in
KV cache skips most of its prefill; a request sent to an overloaded replica waits. The
policies are small and pure, shaped like sglang-router's policy trait: ``choose`` picks
one of the candidates from a minimal view of the request, ``record`` learns from the
outcome; ``needs_prompt`` tells the data plane whether the prompt text will be read.

Balancer state (prefix indexes, session pins, counters) is keyed by endpoint URL, so the
data plane can keep one balancer across table swaps while the balancing spec is unchanged.

Prefix-aware, step by step (tunables in brackets; spec fields in ``spec.balancing``)
    1. Unhealthy candidates are dropped; none left raises :class:`NoReplicaError`.
    2. Session affinity: a request with a session key (``sessionHeader``, else the body's
       ``user``) goes to the replica its session last succeeded on, unless that replica is
       saturated or gone [``session_capacity`` pins, LRU, default 65,536].
    3. A replica is *saturated* when its engine queue depth >= ``saturationQueueDepth``
       (default 5), its KV-cache usage >= ``saturationKVCacheUsage`` (default 0.8), or its
       in-flight count > [``imbalance_factor`` 1.5] x the least in-flight count among the
       candidates + [``imbalance_slack`` 4] (sglang-router's balance check, per replica).
    4. Among unsaturated replicas, the one holding the longest cached prefix wins (ties:
       least load). If that prefix is shorter than ``minPrefixMatchTokens`` (default 32),
       or every replica is saturated, least-load decides and the affinity is a miss.
    5. ``record(ok=True)`` inserts the prompt's blocks into the chosen replica's index
       (see :mod:`tierwise.router.prefix_tree`: [``block_chars``] 256 characters per block,
       about 64 tokens, so a 2k-token prompt is 32 hashes; [``capacity_blocks``] 4,096
       blocks per replica, about 1 M characters or 260 k tokens, roughly one engine's KV
       cache) and pins the session.

Least-load: in-flight requests plus the engine's queue depth; ties rotate. Round-robin:
rotates over the healthy candidates. Backend ``weight`` is not applied by these policies.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import TYPE_CHECKING, Protocol

from tierwise.api.routing_policy import BalancingPolicy, BalancingSpec
from tierwise.router.prefix_tree import PrefixIndex

if TYPE_CHECKING:
    from tierwise.router.features import RequestView
    from tierwise.router.table import Endpoint


class Affinity(StrEnum):
    HIT = "hit"
    MISS = "miss"
    NONE = "none"


class NoReplicaError(Exception):
    """No healthy candidate in the tier: the data plane escalates or fails the request."""


@dataclass(slots=True)
class ReplicaLoad:
    """Live view of one endpoint, mutated by the data plane."""

    endpoint: Endpoint
    in_flight: int = 0
    queue_depth: float | None = None
    kv_cache_usage: float | None = None
    healthy: bool = True

    @property
    def load(self) -> float:
        return self.in_flight + (self.queue_depth or 0.0)


@dataclass(slots=True)
class Choice:
    replica: ReplicaLoad
    affinity: Affinity
    reason: str
    matched_tokens: int = 0


@dataclass(frozen=True, slots=True)
class BalancerTuning:
    """Tunables not in the CRD (see the module docstring)."""

    block_chars: int = 256
    capacity_blocks: int = 4_096
    session_capacity: int = 65_536
    imbalance_factor: float = 1.5
    imbalance_slack: float = 4.0


class Balancer(Protocol):
    needs_prompt: bool

    def choose(self, candidates: Sequence[ReplicaLoad], request: RequestView) -> Choice: ...

    def record(self, choice: Choice, request: RequestView, *, ok: bool) -> None: ...


def _healthy(candidates: Sequence[ReplicaLoad]) -> list[ReplicaLoad]:
    healthy = [c for c in candidates if c.healthy]
    if not healthy:
        raise NoReplicaError(f"no healthy replica among {len(candidates)} candidates")
    return healthy


class RoundRobin:
    needs_prompt = False

    def __init__(self) -> None:
        self._next = 0

    def choose(self, candidates: Sequence[ReplicaLoad], request: RequestView) -> Choice:
        healthy = _healthy(candidates)
        pick = healthy[self._next % len(healthy)]
        self._next += 1
        return Choice(pick, Affinity.NONE, "round-robin")

    def record(self, choice: Choice, request: RequestView, *, ok: bool) -> None:
        return None


class LeastLoad:
    """In-flight plus queue depth; ties rotate so equal replicas share the traffic."""

    needs_prompt = False

    def __init__(self) -> None:
        self._start = 0

    def pick(self, healthy: Sequence[ReplicaLoad]) -> ReplicaLoad:
        n = len(healthy)
        start = self._start % n
        self._start += 1
        best = healthy[start]
        best_load = best.load
        for i in range(1, n):
            c = healthy[(start + i) % n]
            load = c.load
            if load < best_load:
                best, best_load = c, load
        return best

    def choose(self, candidates: Sequence[ReplicaLoad], request: RequestView) -> Choice:
        pick = self.pick(_healthy(candidates))
        return Choice(pick, Affinity.NONE, f"least-load ({pick.load:g})")

    def record(self, choice: Choice, request: RequestView, *, ok: bool) -> None:
        return None


class PrefixAware:
    """Longest cached prefix among unsaturated replicas, else least-load."""

    needs_prompt = True

    def __init__(self, spec: BalancingSpec, tuning: BalancerTuning) -> None:
        self.spec = spec
        self.tuning = tuning
        self._session_header = spec.session_header.lower()
        self._least = LeastLoad()
        self._trees: dict[str, PrefixIndex] = {}
        self._sessions: OrderedDict[str, str] = OrderedDict()

    def _saturated(self, c: ReplicaLoad, in_flight_cap: float) -> bool:
        q, kv = c.queue_depth, c.kv_cache_usage
        return (
            (q is not None and q >= self.spec.saturation_queue_depth)
            or (kv is not None and kv >= self.spec.saturation_kv_cache_usage)
            or c.in_flight > in_flight_cap
        )

    def choose(self, candidates: Sequence[ReplicaLoad], request: RequestView) -> Choice:
        healthy = _healthy(candidates)
        t = self.tuning
        cap = t.imbalance_factor * min(c.in_flight for c in healthy) + t.imbalance_slack
        session = request.session_key(self._session_header)
        if session is not None:
            url = self._sessions.get(session)
            for c in healthy:
                if c.endpoint.url == url and not self._saturated(c, cap):
                    return Choice(c, Affinity.HIT, f"session {session[:32]!r} pinned")
        keys = request.block_hashes(t.block_chars)
        best: ReplicaLoad | None = None
        best_blocks = 0
        saturated = 0
        trees = self._trees
        for c in healthy:
            if self._saturated(c, cap):
                saturated += 1
                continue
            tree = trees.get(c.endpoint.url)
            n = tree.match(keys) if tree is not None else 0
            if n > best_blocks or (n == best_blocks and best is not None and c.load < best.load):
                best, best_blocks = c, n
        return self._decide(healthy, request, best, best_blocks, saturated)

    def _decide(
        self,
        healthy: list[ReplicaLoad],
        request: RequestView,
        best: ReplicaLoad | None,
        blocks: int,
        saturated: int,
    ) -> Choice:
        tokens = self._matched_tokens(request, blocks)
        if best is not None and blocks and tokens >= self.spec.min_prefix_match_tokens:
            return Choice(best, Affinity.HIT, f"cached prefix ~{tokens} tokens", tokens)
        pick = self._least.pick(healthy)
        if saturated == len(healthy):
            why = "all replicas saturated"
        elif blocks:
            why = f"cached prefix ~{tokens} tokens < minPrefixMatchTokens"
        else:
            why = "no cached prefix"
        return Choice(pick, Affinity.MISS, f"{why}; least-load ({pick.load:g})")

    def _matched_tokens(self, request: RequestView, blocks: int) -> int:
        if not blocks:
            return 0
        chars = len(request.prompt_text)
        return request.prompt_tokens * blocks * self.tuning.block_chars // max(chars, 1)

    def record(self, choice: Choice, request: RequestView, *, ok: bool) -> None:
        if not ok:
            return
        url = choice.replica.endpoint.url
        tree = self._trees.get(url)
        if tree is None:
            tree = self._trees[url] = PrefixIndex(self.tuning.capacity_blocks)
        tree.insert(request.block_hashes(self.tuning.block_chars))
        session = request.session_key(self._session_header)
        if session is not None:
            sessions = self._sessions
            sessions[session] = url
            sessions.move_to_end(session)
            if len(sessions) > self.tuning.session_capacity:
                sessions.popitem(last=False)

    def retain(self, urls: set[str]) -> None:
        """Forget replicas no longer in the table (call after a swap)."""
        for url in [u for u in self._trees if u not in urls]:
            del self._trees[url]

    def index(self, url: str) -> PrefixIndex | None:
        return self._trees.get(url)


def make_balancer(spec: BalancingSpec, tuning: BalancerTuning | None = None) -> Balancer:
    """The balancer ``spec.policy`` names, configured from ``spec`` and ``tuning``."""
    match spec.policy:
        case BalancingPolicy.ROUND_ROBIN:
            return RoundRobin()
        case BalancingPolicy.LEAST_LOAD:
            return LeastLoad()
        case BalancingPolicy.PREFIX_AWARE:
            return PrefixAware(spec, tuning or BalancerTuning())
