"""Prefix-cache effectiveness of replica selection on the agentic multi-turn workload.

Why it exists: prefix-aware balancing is only worth its cost if the engines' own prefix
caches hit more often than with plain balancing, without piling load on a few replicas.
This drives the router's real balancers (``tierwise.router.balance``) against N
in-process engine prefix caches (``tierwise.sim.prefix_cache.PrefixCache``: vLLM-style
16-token blocks, LRU eviction, the simulator's tokenizer), offline: no HTTP, no clock,
deterministic for a seed. Hit rate is read from the engine-side caches' own counters.

Model of a run: ``--clients`` agents run sessions concurrently; each sends a session's
turns in order, the next turn a tool/think time (exponential, ``--think-s``) after the
previous answered (the workload's contract), then starts the next session. A
request occupies its replica for prefill of its uncached tokens plus one decode step per
output token at the replica's current concurrency (the simulator's latency model,
``tierwise.sim.latency``). In-flight counts per replica feed least-load and the
saturation cut-off; the balancer's ``record`` is called when the answer completes.

Policies compared (same workload, same caches, same run):
  prefix-aware   tierwise's default (``spec.balancing`` defaults)
  least-load     tierwise's least-load (in-flight)
  round-robin    tierwise's round-robin
  oracle         sessions pinned round-robin to replicas, unbounded caches (upper bound)

Imbalance is max/mean requests per replica over the run.

Usage::

    .venv/bin/python bench/prefix_cache.py [--requests 3000] [--replicas 4] [--clients 32]
        [--kv-tokens 400000] [--think-s 2] [--system-prompts 2] [--seed 7] [--micro]
"""

from __future__ import annotations

import argparse
import heapq
import itertools
import platform
import random
import statistics
import sys
import time
from collections import defaultdict, deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from tierwise.api.routing_policy import BalancingPolicy, BalancingSpec
from tierwise.router.balance import (
    Affinity,
    Balancer,
    BalancerTuning,
    Choice,
    ReplicaLoad,
    make_balancer,
)
from tierwise.router.features import RequestView, request_view
from tierwise.router.table import Endpoint
from tierwise.sim.latency import LatencyParams, decode_step_seconds, prefill_seconds
from tierwise.sim.prefix_cache import DEFAULT_BLOCK_SIZE, PrefixCache
from tierwise.sim.tokens import render_chat, tokenize
from tierwise.sim.traffic import Request, TrafficShape, Workload, generate


@dataclass
class Prepared:
    request: Request
    body: dict[str, Any]
    tokens: list[int]


@dataclass
class Outcome:
    policy: str
    hit_rate: float
    per_replica: list[int]
    affinity_hits: int
    seconds: float

    @property
    def imbalance(self) -> float:
        mean = statistics.fmean(self.per_replica)
        return max(self.per_replica) / mean if mean else 0.0


def prepare(n: int, seed: int, system_prompts: int) -> dict[str, deque[Prepared]]:
    sessions: dict[str, deque[Prepared]] = defaultdict(deque)
    shape = TrafficShape(agentic_system_prompts=system_prompts)
    for r in generate(Workload.AGENTIC, n, seed, shape=shape):
        body = r.body("auto", stream=False)
        tokens = tokenize(render_chat(body["messages"], body.get("tools")))
        sessions[r.session_id].append(Prepared(r, body, tokens))
    for queue in sessions.values():  # turn order within a session
        ordered = sorted(queue, key=lambda p: p.request.turn)
        queue.clear()
        queue.extend(ordered)
    return sessions


class Oracle:
    """Sessions pinned round-robin to replicas (the caches it is paired with never evict)."""

    needs_prompt = False

    def __init__(self) -> None:
        self._pins: dict[str, int] = {}

    def choose(self, candidates: Sequence[ReplicaLoad], request: RequestView) -> Choice:
        sid = str(request.body["_session"])
        index = self._pins.setdefault(sid, len(self._pins) % len(candidates))
        return Choice(candidates[index], Affinity.NONE, "pinned")

    def record(self, choice: Choice, request: RequestView, *, ok: bool) -> None:
        return None


class Spread:
    """``routers`` independent balancers (router replicas or workers), each request sent to
    one of them at random: each sees only its own in-flight counts and learns only from
    the requests it routed, as separate processes do."""

    def __init__(self, make: Callable[[], Balancer], routers: int, seed: int) -> None:
        self._routers = [make() for _ in range(routers)]
        self._views: list[list[ReplicaLoad]] = [[] for _ in range(routers)]
        self._rng = random.Random(seed)
        self.needs_prompt = self._routers[0].needs_prompt

    def choose(self, candidates: Sequence[ReplicaLoad], request: RequestView) -> Choice:
        r = self._rng.randrange(len(self._routers))
        views = self._views[r]
        if len(views) != len(candidates):
            views[:] = [ReplicaLoad(c.endpoint) for c in candidates]
        local = self._routers[r].choose(views, request)
        local.replica.in_flight += 1
        shared = candidates[views.index(local.replica)]
        request.body["_router"] = (r, local)  # type: ignore[index]
        return Choice(shared, local.affinity, local.reason, local.matched_tokens)

    def record(self, choice: Choice, request: RequestView, *, ok: bool) -> None:
        r, local = request.body["_router"]
        local.replica.in_flight -= 1
        self._routers[r].record(local, request, ok=ok)


def simulate(
    balancer: Balancer,
    sessions: dict[str, deque[Prepared]],
    *,
    replicas: int,
    clients: int,
    capacity_blocks: int,
    params: LatencyParams,
    think_s: float,
    seed: int,
) -> tuple[list[PrefixCache], list[int], int]:
    loads = [ReplicaLoad(Endpoint(f"http://replica-{i}:8000", "md", "m")) for i in range(replicas)]
    caches = [PrefixCache(capacity_blocks=capacity_blocks) for _ in range(replicas)]
    index = {id(r): i for i, r in enumerate(loads)}
    counts = [0] * replicas
    hits = 0
    todo = deque((sid, deque(q)) for sid, q in sessions.items())
    events: list[tuple[float, int, Any]] = []
    seq = itertools.count()
    rng = random.Random(seed)

    def dispatch(now: float, sid: str, queue: deque[Prepared]) -> None:
        nonlocal hits
        p = queue.popleft()
        body = {**p.body, "_session": sid}  # a fresh dict: Spread writes into it
        view = request_view("/v1/chat/completions", {}, body)
        choice = balancer.choose(loads, view)
        hits += choice.affinity is Affinity.HIT
        i = index[id(choice.replica)]
        counts[i] += 1
        choice.replica.in_flight += 1
        cache = caches[i]
        hit = cache.lookup(p.tokens, max_hit_tokens=len(p.tokens) - 1)
        cache.insert(p.tokens)
        running = choice.replica.in_flight
        busy = prefill_seconds(params, len(p.tokens) - hit)
        busy += p.request.max_tokens * decode_step_seconds(params, running)
        heapq.heappush(events, (now + busy, next(seq), ("done", choice, view, sid, queue)))

    def start_next(now: float) -> None:
        if todo:
            sid, queue = todo.popleft()
            dispatch(now, sid, queue)

    for _ in range(clients):
        start_next(0.0)
    while events:
        now, _, (kind, choice, view, sid, queue) = heapq.heappop(events)
        if kind == "next":  # the agent's tool ran; it sends the next turn
            dispatch(now, sid, queue)
            continue
        choice.replica.in_flight -= 1
        balancer.record(choice, view, ok=True)
        if queue:
            pause = rng.expovariate(1 / think_s) if think_s > 0 else 0.0
            heapq.heappush(events, (now + pause, next(seq), ("next", None, None, sid, queue)))
        else:
            start_next(now)
    return caches, counts, hits


def run_policy(
    name: str,
    make: Callable[[], Balancer],
    sessions: dict[str, deque[Prepared]],
    args: argparse.Namespace,
    capacity_blocks: int,
) -> Outcome:
    t0 = time.perf_counter()
    caches, counts, hits = simulate(
        make(),
        sessions,
        replicas=args.replicas,
        clients=args.clients,
        capacity_blocks=capacity_blocks,
        params=LatencyParams(),
        think_s=args.think_s,
        seed=args.seed,
    )
    elapsed = time.perf_counter() - t0
    queries = sum(c.stats().queries for c in caches)
    hit_tokens = sum(c.stats().hits for c in caches)
    return Outcome(name, hit_tokens / queries if queries else 0.0, counts, hits, elapsed)


def micro(samples: int = 20_000) -> list[tuple[str, float]]:
    """choose()+record() cost for a ~2k-token chat prompt over 4 warm replicas (µs)."""
    balancer = make_balancer(BalancingSpec())
    loads = [ReplicaLoad(Endpoint(f"http://r{i}:8000", "md", "m")) for i in range(4)]
    system = " ".join(f"word{i % 97}" for i in range(1100))  # ~7.9k chars, ~2k tokens
    bodies = [
        {
            "model": "auto",
            "messages": [
                {"role": "system", "content": system},
                {"role": "user", "content": f"session {s}: do task {s}"},
            ],
        }
        for s in range(64)
    ]
    for body in bodies:  # warm: every session's prefix is cached somewhere
        v = request_view("/v1/chat/completions", {}, body)
        balancer.record(balancer.choose(loads, v), v, ok=True)
    rr = make_balancer(BalancingSpec(policy=BalancingPolicy.ROUND_ROBIN))
    ph = make_balancer(BalancingSpec(policy=BalancingPolicy.PREFIX_HASH))

    def timed(fn: Callable[[dict[str, Any]], None]) -> float:
        best = float("inf")
        for _ in range(5):
            t0 = time.perf_counter()
            for i in range(samples // 5):
                fn(bodies[i % 64])
            best = min(best, (time.perf_counter() - t0) / (samples // 5))
        return best * 1e6

    def view_only(body: dict[str, Any]) -> None:
        request_view("/v1/chat/completions", {}, body)

    def prefix(body: dict[str, Any]) -> None:
        v = request_view("/v1/chat/completions", {}, body)
        balancer.record(balancer.choose(loads, v), v, ok=True)

    def round_robin(body: dict[str, Any]) -> None:
        v = request_view("/v1/chat/completions", {}, body)
        rr.record(rr.choose(loads, v), v, ok=True)

    def prefix_hash(body: dict[str, Any]) -> None:
        v = request_view("/v1/chat/completions", {}, body)
        ph.record(ph.choose(loads, v), v, ok=True)

    return [
        ("request_view only (baseline)", timed(view_only)),
        ("prefix-hash choose+record (2k-token prompt)", timed(prefix_hash)),
        ("round-robin choose+record", timed(round_robin)),
        ("prefix-aware choose+record (2k-token prompt)", timed(prefix)),
    ]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=3000)
    parser.add_argument("--replicas", type=int, default=4)
    parser.add_argument("--clients", type=int, default=32)
    parser.add_argument(
        "--kv-tokens",
        type=int,
        default=LatencyParams().kv_capacity_tokens,
        help="engine KV-cache pool per replica, tokens",
    )
    parser.add_argument(
        "--think-s",
        type=float,
        default=2.0,
        help="mean tool/think time between a session's turns (exponential)",
    )
    parser.add_argument(
        "--system-prompts",
        type=int,
        default=TrafficShape().agentic_system_prompts,
        help="distinct shared system prompts of the agentic workload",
    )
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--routers", type=int, default=3, help="router replicas of the spread rows")
    parser.add_argument("--micro", action="store_true", help="also time choose()+record()")
    args = parser.parse_args(argv)
    sessions = prepare(args.requests, args.seed, args.system_prompts)
    capacity = args.kv_tokens // DEFAULT_BLOCK_SIZE
    # The router guesses the engine cache size: ~4 characters per token, 256-char blocks.
    tuning = BalancerTuning(capacity_blocks=max(args.kv_tokens * 4 // 256, 2))
    aware: Callable[[], Balancer] = lambda: make_balancer(BalancingSpec(), tuning)  # noqa: E731
    hashed: Callable[[], Balancer] = lambda: make_balancer(  # noqa: E731
        BalancingSpec(policy=BalancingPolicy.PREFIX_HASH), tuning
    )
    n = args.routers
    policies: list[tuple[str, Callable[[], Balancer], int]] = [
        ("prefix-aware", aware, capacity),
        ("prefix-hash", hashed, capacity),
        (f"prefix-aware, {n} routers", lambda: Spread(aware, n, args.seed), capacity),
        (f"prefix-hash, {n} routers", lambda: Spread(hashed, n, args.seed), capacity),
        ("least-load", lambda: make_balancer(BalancingSpec(policy="least-load")), capacity),
        ("round-robin", lambda: make_balancer(BalancingSpec(policy="round-robin")), capacity),
        ("oracle (pinned, unbounded cache)", Oracle, 10**9),
    ]
    outcomes = [run_policy(name, make, sessions, args, cap) for name, make, cap in policies]
    report(outcomes, sessions, args)
    return 0


def report(
    outcomes: list[Outcome], sessions: dict[str, deque[Prepared]], args: argparse.Namespace
) -> None:
    oracle = outcomes[-1].hit_rate
    print(
        f"python {platform.python_version()} on {platform.machine()}, "
        f"{len(sessions)} sessions, {args.requests} requests, {args.replicas} replicas, "
        f"{args.clients} concurrent agents, think time {args.think_s}s, "
        f"KV {args.kv_tokens} tokens/replica, seed {args.seed}\n"
    )
    print(
        "| policy | engine prefix-cache hit rate | vs oracle | prefill tokens computed "
        "vs oracle | imbalance (max/mean) | requests per replica | router affinity hits |"
    )
    print("|---|---|---|---|---|---|---|")
    for o in outcomes:
        prefill = (1 - o.hit_rate) / (1 - oracle) if oracle < 1 else float("nan")
        print(
            f"| {o.policy} | {o.hit_rate:.1%} | {o.hit_rate / oracle:.1%} | {prefill:.2f}x | "
            f"{o.imbalance:.3f} | {' / '.join(map(str, o.per_replica))} | {o.affinity_hits} |"
        )
    if args.micro:
        print("\n| hot path (4 replicas, best of 5) | µs per request |\n|---|---|")
        for name, us in micro():
            print(f"| {name} | {us:.2f} |")


if __name__ == "__main__":
    sys.exit(main())
