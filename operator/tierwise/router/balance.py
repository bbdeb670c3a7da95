"""Replica selection inside a tier: prefix-aware (default), prefix-hash, least-load, round-robin.

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

Prefix-hash (consistent hashing with bounded load, KubeAI's CHWBL), step by step
    1. The request's key is the stable hash of its session key when it has one, else of
       its conversation anchor (``RequestView.anchor_text``: system prompt through the
       first user message [``hash_completion_chars`` 1,024 for completions prompts],
       cut to its length and edges [``hash_edge_chars`` 256]).
    2. The candidates' ring (:mod:`tierwise.router.hash_ring`, [``ring_points`` 100] per
       fair share, weighted; one ring per candidate set, [``ring_cache`` 64] kept) is
       walked clockwise from the key; the first healthy replica that is not saturated
       (step 3 of prefix-aware, queue depth and KV-cache usage) and whose load + 1 stays
       within ``ceil(boundedLoadFactor x (total load + 1) x share)`` takes the request.
       The home replica is an affinity hit; a later one a miss.
    3. None qualifies: least-load decides (a miss).
    Every process with the same candidates picks the same home: workers and router
    replicas agree without sharing anything. Loads are each process's own in-flight counts
    plus the engines' scraped queue depths, so under load processes may spill differently.

Least-load: in-flight requests plus the engine's queue depth; ties rotate. Round-robin:
rotates over the healthy candidates.

Weights: ``Backend.weight`` becomes each endpoint's share (:mod:`tierwise.router.weights`;
a tier with one backend skips all of this). Least-load compares load / share and breaks
ties by smooth weighted rotation, so idle replicas are picked in proportion to their
shares and busy ones carry in-flight requests in proportion to them; round-robin is
smooth weighted round-robin; prefix-aware's in-flight cut-off (step 3) and its least-load
fallback compare in-flight / share; prefix-hash gives each endpoint ring points and a load
bound in proportion to its share. A prefix-aware affinity hit itself ignores weights: the
cache saving wins while the replica is within its cut-off.
"""

from __future__ import annotations

import math
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import TYPE_CHECKING, Protocol

from tierwise.api.routing_policy import BalancingPolicy, BalancingSpec
from tierwise.router.hash_ring import HashRing, stable_hash
from tierwise.router.prefix_tree import PrefixIndex
from tierwise.router.weights import SmoothRotation, shares

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
    ring_points: int = 100
    hash_completion_chars: int = 1_024
    hash_edge_chars: int = 256
    ring_cache: int = 64


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
        self._smooth = SmoothRotation()

    def choose(self, candidates: Sequence[ReplicaLoad], request: RequestView) -> Choice:
        healthy = _healthy(candidates)
        weights = shares(healthy)
        if weights is None:
            pick = healthy[self._next % len(healthy)]
            self._next += 1
            return Choice(pick, Affinity.NONE, "round-robin")
        pick = healthy[self._smooth.pick([c.endpoint.url for c in healthy], weights)]
        return Choice(pick, Affinity.NONE, "weighted round-robin")

    def record(self, choice: Choice, request: RequestView, *, ok: bool) -> None:
        return None


class LeastLoad:
    """In-flight plus queue depth; ties rotate so equal replicas share the traffic."""

    needs_prompt = False

    def __init__(self) -> None:
        self._start = 0
        self._smooth = SmoothRotation()

    def pick(self, healthy: Sequence[ReplicaLoad]) -> ReplicaLoad:
        weights = shares(healthy)
        if weights is not None:
            return self._weighted(healthy, weights)
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

    def _weighted(self, healthy: Sequence[ReplicaLoad], weights: list[float]) -> ReplicaLoad:
        """Least load / share; ties by smooth weighted rotation (module docstring)."""
        scores = [c.load / w for c, w in zip(healthy, weights, strict=True)]
        low = min(scores)
        tied = [i for i, score in enumerate(scores) if score <= low * (1 + 1e-9)]
        if len(tied) == 1:
            return healthy[tied[0]]
        urls = [healthy[i].endpoint.url for i in tied]
        return healthy[tied[self._smooth.pick(urls, [weights[i] for i in tied])]]

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

    def _saturated(self, c: ReplicaLoad, in_flight: float, in_flight_cap: float) -> bool:
        q, kv = c.queue_depth, c.kv_cache_usage
        return (
            (q is not None and q >= self.spec.saturation_queue_depth)
            or (kv is not None and kv >= self.spec.saturation_kv_cache_usage)
            or in_flight > in_flight_cap
        )

    def choose(self, candidates: Sequence[ReplicaLoad], request: RequestView) -> Choice:
        healthy = _healthy(candidates)
        t = self.tuning
        in_flight = _in_flight_per_share(healthy)
        cap = t.imbalance_factor * min(in_flight) + t.imbalance_slack
        session = request.session_key(self._session_header)
        if session is not None:
            url = self._sessions.get(session)
            for c, n in zip(healthy, in_flight, strict=True):
                if c.endpoint.url == url and not self._saturated(c, n, cap):
                    return Choice(c, Affinity.HIT, f"session {session[:32]!r} pinned")
        keys = request.block_hashes(t.block_chars)
        best: ReplicaLoad | None = None
        best_blocks = 0
        saturated = 0
        trees = self._trees
        for c, n_flight in zip(healthy, in_flight, strict=True):
            if self._saturated(c, n_flight, cap):
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


def _in_flight_per_share(healthy: Sequence[ReplicaLoad]) -> list[float]:
    """In-flight counts, scaled by 1 / (share x n) when weighted (equal shares: as is)."""
    weights = shares(healthy)
    if weights is None:
        return [c.in_flight for c in healthy]
    n = len(healthy)
    return [c.in_flight / (w * n) for c, w in zip(healthy, weights, strict=True)]


class PrefixHash:
    """Consistent hashing of the conversation with bounded load (module docstring)."""

    needs_prompt = True

    def __init__(self, spec: BalancingSpec, tuning: BalancerTuning) -> None:
        self.spec = spec
        self.tuning = tuning
        self._session_header = spec.session_header.lower()
        self._least = LeastLoad()
        self._rings: OrderedDict[tuple[tuple[str, float], ...], HashRing] = OrderedDict()

    def ring(self, candidates: Sequence[ReplicaLoad], weights: list[float] | None) -> HashRing:
        """The candidates' ring, built once per candidate set and weights (LRU-bounded)."""
        if weights is None:
            weights = [1.0 / len(candidates)] * len(candidates)
        key = tuple((c.endpoint.url, w) for c, w in zip(candidates, weights, strict=True))
        rings = self._rings
        ring = rings.get(key)
        if ring is None:
            ring = rings[key] = HashRing([u for u, _ in key], weights, self.tuning.ring_points)
            if len(rings) > self.tuning.ring_cache:
                rings.popitem(last=False)
        else:
            rings.move_to_end(key)
        return ring

    def key(self, request: RequestView) -> int:
        session = request.session_key(self._session_header)
        if session is not None:
            return stable_hash("session\0" + session)
        t = self.tuning
        return stable_hash(request.anchor_text(t.hash_completion_chars, t.hash_edge_chars))

    def choose(self, candidates: Sequence[ReplicaLoad], request: RequestView) -> Choice:
        healthy = _healthy(candidates)
        weights = shares(candidates)
        ring = self.ring(candidates, weights)
        total = sum(c.load for c in healthy) + 1
        factor = self.spec.bounded_load_factor * total
        live = sum(weights[i] for i, c in enumerate(candidates) if c.healthy) if weights else 0
        n_live = len(healthy)
        spec = self.spec
        home = True
        for idx in ring.walk(self.key(request)):
            c = candidates[idx]
            if not c.healthy:
                home = False
                continue
            share = weights[idx] / live if weights else 1 / n_live
            q, kv = c.queue_depth, c.kv_cache_usage
            if (
                c.load + 1 <= math.ceil(factor * share)
                and (q is None or q < spec.saturation_queue_depth)
                and (kv is None or kv < spec.saturation_kv_cache_usage)
            ):
                if home:
                    return Choice(c, Affinity.HIT, "hash ring home")
                return Choice(
                    c,
                    Affinity.MISS,
                    f"hash ring home down, saturated or over its load bound; next ({c.load:g})",
                )
            home = False
        pick = self._least.pick(healthy)
        return Choice(
            pick, Affinity.MISS, f"every replica over its load bound; least-load ({pick.load:g})"
        )

    def record(self, choice: Choice, request: RequestView, *, ok: bool) -> None:
        return None


def make_balancer(spec: BalancingSpec, tuning: BalancerTuning | None = None) -> Balancer:
    """The balancer ``spec.policy`` names, configured from ``spec`` and ``tuning``."""
    match spec.policy:
        case BalancingPolicy.ROUND_ROBIN:
            return RoundRobin()
        case BalancingPolicy.LEAST_LOAD:
            return LeastLoad()
        case BalancingPolicy.PREFIX_AWARE:
            return PrefixAware(spec, tuning or BalancerTuning())
        case BalancingPolicy.PREFIX_HASH:
            return PrefixHash(spec, tuning or BalancerTuning())
