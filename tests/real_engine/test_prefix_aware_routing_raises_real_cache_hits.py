"""Prefix-aware routing vs round-robin over two real vLLM replicas, judged by vLLM itself.

An agentic multi-turn workload (sessions sharing one of two long system prompts, each turn
resending the whole conversation) goes once through a ``round-robin`` router and once
through a ``prefix-aware`` one. The hit rate is what the engines report
(``vllm:prefix_cache_hits_total`` / ``vllm:prefix_cache_queries_total``, in tokens, summed
over both servers), next to an oracle: every request served by one replica with an
unbounded cache, at vLLM's 32-token block granularity. Each run starts its prompts with its
own random tag, so no run can reuse another's cache. No session header and no ``user`` field
is sent: the router has only the prompt to go on.

The numbers are printed and written to ``prefix_hits.json`` in the session's work folder;
``docs/benchmarks/real_engine.md`` records a run.
"""

from __future__ import annotations

import asyncio
import json
import random
import uuid
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

import openai
import pytest
from real_engine_support import BLOCK_SIZE, Served, sample

from tierwise.api.routing_policy import BalancingPolicy

pytestmark = pytest.mark.real_engine

SESSIONS = 8
TURNS = 5
SYSTEM_PROMPTS = 2
SYSTEM_WORDS = 120
TURN_WORDS = 40
REPLY_TOKENS = 16
WORDS = [
    "agent",
    "tool",
    "call",
    "plan",
    "step",
    "result",
    "file",
    "code",
    "test",
    "deploy",
    "model",
    "cache",
    "token",
]


@dataclass(frozen=True)
class RunResult:
    policy: str
    hit_rate: float
    oracle_hit_rate: float
    hits: float
    queries: float
    requests_per_replica: tuple[float, ...]

    @property
    def recomputed(self) -> float:
        """Prompt tokens prefilled rather than read from the cache."""
        return self.queries - self.hits

    @property
    def imbalance(self) -> float:
        mean = sum(self.requests_per_replica) / len(self.requests_per_replica)
        return max(self.requests_per_replica) / mean if mean else 0.0


def text(rng: random.Random, words: int) -> str:
    return " ".join(rng.choice(WORDS) for _ in range(words))


def sessions(tag: str, seed: int = 7) -> list[tuple[str, list[str]]]:
    """(system prompt, user turns) per session; the tag makes every prompt unique to a run."""
    rng = random.Random(seed)
    systems = [f"[{tag}] system {i}: " + text(rng, SYSTEM_WORDS) for i in range(SYSTEM_PROMPTS)]
    return [
        (systems[i % SYSTEM_PROMPTS], [f"turn {t}: " + text(rng, TURN_WORDS) for t in range(TURNS)])
        for i in range(SESSIONS)
    ]


async def run_session(
    client: openai.AsyncOpenAI, system: str, turns: list[str], sequences: list[list[int]]
) -> None:
    """One conversation; appends each request's prompt + output token ids (vLLM's own)."""
    messages = [{"role": "system", "content": system}]
    for turn in turns:
        messages.append({"role": "user", "content": turn})
        answer = await client.chat.completions.create(
            model="auto", messages=messages, max_tokens=REPLY_TOKENS, temperature=0,
            extra_body={"ignore_eos": True, "return_token_ids": True},
        )  # fmt: skip
        extra = answer.model_extra or {}
        choice = answer.choices[0]
        output = (choice.model_extra or {}).get("token_ids") or []
        sequences.append([*extra["prompt_token_ids"], *output])
        messages.append({"role": "assistant", "content": choice.message.content or ""})


def counters(servers: list[Served]) -> list[tuple[float, float, float]]:
    return [
        (
            sample(s.url, "vllm:prefix_cache_hits_total"),
            sample(s.url, "vllm:prefix_cache_queries_total"),
            sample(s.url, "vllm:request_success_total"),
        )
        for s in servers
    ]


def oracle_hits(sequences: list[tuple[int, list[int]]]) -> tuple[int, int]:
    """(hit, queried) tokens with one replica and an unbounded cache of whole blocks.

    ``sequences`` holds (prompt length, prompt + output token ids) in the order sent; a
    full block of a finished request's prompt or output is cached, as in vLLM.
    """
    hit = 0
    seen: set[tuple[int, ...]] = set()
    for prompt_len, ids in sequences:
        blocks = (prompt_len - 1) // BLOCK_SIZE  # vLLM always computes the last prompt token
        cached = 0
        while cached < blocks and tuple(ids[: (cached + 1) * BLOCK_SIZE]) in seen:
            cached += 1
        hit += cached * BLOCK_SIZE
        seen.update(tuple(ids[: (b + 1) * BLOCK_SIZE]) for b in range(len(ids) // BLOCK_SIZE))
    return hit, sum(prompt_len for prompt_len, _ in sequences)


async def measure(router: Served, servers: list[Served], policy: BalancingPolicy) -> RunResult:
    tag = f"{policy.value} {uuid.uuid4().hex[:8]}"  # never seen by the servers before
    before = counters(servers)
    sequences: list[list[int]] = []
    async with openai.AsyncOpenAI(
        base_url=router.url + "/v1", api_key="unused", max_retries=0, timeout=120
    ) as client:
        await asyncio.gather(
            *(run_session(client, s, turns, sequences) for s, turns in sessions(tag))
        )
    after = counters(servers)
    hits = sum(a[0] - b[0] for a, b in zip(after, before, strict=True))
    queries = sum(a[1] - b[1] for a, b in zip(after, before, strict=True))
    oracle_hit, oracle_queried = oracle_hits([(len(s) - REPLY_TOKENS, s) for s in sequences])
    return RunResult(
        policy=policy.value,
        hit_rate=hits / queries,
        oracle_hit_rate=oracle_hit / oracle_queried,
        hits=hits,
        queries=queries,
        requests_per_replica=tuple(a[2] - b[2] for a, b in zip(after, before, strict=True)),
    )


async def test_prefix_aware_hits_the_real_cache_more_than_round_robin(
    routers: Callable[[BalancingPolicy], Served],
    vllm_servers: list[Served],
    work_dir: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    results = {}
    for policy in (BalancingPolicy.ROUND_ROBIN, BalancingPolicy.PREFIX_AWARE):
        router = routers(policy)
        results[policy] = await measure(router, vllm_servers, policy)
    rr, pa = results[BalancingPolicy.ROUND_ROBIN], results[BalancingPolicy.PREFIX_AWARE]
    report = {
        p.value: {**asdict(r), "recomputed": r.recomputed, "imbalance": r.imbalance}
        for p, r in results.items()
    }
    (work_dir / "prefix_hits.json").write_text(json.dumps(report, indent=2))
    with capsys.disabled():
        for r in (rr, pa):
            print(
                f"\n{r.policy:>13}: hit rate {r.hit_rate:.3f} (oracle {r.oracle_hit_rate:.3f}), "
                f"{r.recomputed:.0f} of {r.queries:.0f} prompt tokens recomputed, "
                f"requests per replica {r.requests_per_replica}, imbalance {r.imbalance:.2f}"
            )
    assert rr.queries == pa.queries or abs(rr.queries - pa.queries) < 0.05 * pa.queries
    assert sum(rr.requests_per_replica) == sum(pa.requests_per_replica) == SESSIONS * TURNS
    # Two replicas is round-robin's best case (every other turn still finds its prefix), so
    # the gap shows in the prompt tokens each policy makes the engines recompute.
    assert pa.hit_rate > rr.hit_rate
    assert rr.recomputed >= 1.2 * pa.recomputed
    assert pa.hit_rate >= 0.95 * pa.oracle_hit_rate
    assert max(rr.requests_per_replica) - min(rr.requests_per_replica) <= 1
