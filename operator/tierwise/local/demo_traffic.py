"""The demo's traffic: a mixed, seeded request set and a client that records each decision.

Why it exists: ``tierwise demo`` must show each tier earning its place, so the mix holds
the four shapes a tier policy separates — short chat (the default, cheapest tier), code
questions and agentic multi-turn sessions with long shared prefixes (the mid tier, where
prefix-aware balancing pays), and hard reasoning (the frontier tier) — in fixed shares,
the same for the same ``seed``. Chat and agentic requests come from
:mod:`tierwise.sim.traffic`; code and reasoning prompts are templates here (some in
French and Chinese: keyword rules must not be ASCII-only).

:func:`send_all` plays an ordinary OpenAI client (plain HTTP with ``aiohttp``, half the
requests streamed) and keeps what the router said about each one: the
``x-tierwise-tier``/``-backend``/``-rule`` headers, status, latency, time to first token
and the ``usage`` block. Sessions are sent turn by turn, each turn after the previous
answered, as an agent would.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum

import aiohttp
import orjson

from tierwise.sim.driver import read_stream
from tierwise.sim.traffic import Request, TrafficShape, generate

MODEL_ALIAS = "auto"
OUTPUT_TOKENS = (16, 48)


class Kind(StrEnum):
    CHAT = "chat"
    CODE = "code"
    AGENTIC = "agentic"
    REASONING = "reasoning"


# Shares of the mix (chat takes the rest).
SHARES: dict[Kind, float] = {Kind.AGENTIC: 0.30, Kind.CODE: 0.15, Kind.REASONING: 0.10}

_CODE = (
    "Refactor this function so it can be tested:\n```python\ndef {name}(items):\n"
    "    total = 0\n    for item in items:\n        total += item.price * {n}\n"
    "    return total\n```",
    "Our worker crashed. What is wrong?\nTraceback (most recent call last):\n"
    "  File \"worker.py\", line {n}, in {name}\n    row = cache[key]\nKeyError: '{name}'",
    "Write a unit test for `{name}` covering an empty list and the input 'naïve café ☕'.",
    "Explain this stack trace from the billing service and suggest a fix: "
    "NullPointerException at Billing.{name}(Billing.java:{n})",
)
_REASONING = (
    "Prove that the sum of the first {n} odd numbers equals {n} squared.",
    "Think step by step: {n} machines make {n} widgets in {n} minutes. How long do "
    "{m} machines need for {m} widgets? Justify every step.",
    "Démontrez que la racine carrée de {p} est irrationnelle.",
    "请证明: 对于任意整数 n, n^3 - n 能被 6 整除 ({m}).",
    "Give a proof sketch that a graph with {n} vertices and {m} edges has a cycle.",
)
_NAMES = ("apply_discount", "merge_orders", "parse_invoice", "resolve_tenant", "sync_ledger")


@dataclass(frozen=True, slots=True)
class DemoRequest:
    """One request of the mix: the body's content, its kind, and whether to stream it."""

    request: Request
    kind: Kind
    stream: bool


def _single(kind: Kind, i: int, text: str, max_tokens: int) -> Request:
    messages = ({"role": "user", "content": text},)
    return Request(f"{kind}-{i}", f"{kind}-{i}", 0, messages, max_tokens)


def _templated(rng: random.Random, kind: Kind, count: int) -> list[Request]:
    templates = _CODE if kind is Kind.CODE else _REASONING
    out = []
    for i in range(count):
        text = templates[i % len(templates)].format(
            name=rng.choice(_NAMES),
            n=rng.randint(3, 40),
            m=rng.randint(41, 90),
            p=rng.choice((2, 3, 5, 7, 11)),
        )
        out.append(_single(kind, i, text, rng.randint(*OUTPUT_TOKENS)))
    return out


def counts(n: int) -> dict[Kind, int]:
    """How many requests of each kind a mix of ``n`` holds (every kind once from n >= 4)."""
    if n <= 0:
        return dict.fromkeys(Kind, 0)
    out = {kind: round(n * share) for kind, share in SHARES.items()}
    if n >= len(Kind):
        out = {kind: max(c, 1) for kind, c in out.items()}
    out[Kind.CHAT] = n - sum(out.values())
    return out


def demo_mix(n: int, seed: int) -> list[DemoRequest]:
    """``n`` requests in a seeded order (sessions keep their turn order when sent)."""
    rng = random.Random(seed)
    per_kind = counts(n)
    shape = TrafficShape(
        output_tokens=OUTPUT_TOKENS,
        agentic_system_words=1200,
        agentic_turns=(3, 6),
        agentic_tool_result_words=(30, 120),
    )
    groups: dict[Kind, list[Request]] = {
        Kind.CHAT: generate("chat", per_kind[Kind.CHAT], seed, shape=shape),
        Kind.AGENTIC: generate("agentic", per_kind[Kind.AGENTIC], seed, shape=shape),
        Kind.CODE: _templated(rng, Kind.CODE, per_kind[Kind.CODE]),
        Kind.REASONING: _templated(rng, Kind.REASONING, per_kind[Kind.REASONING]),
    }
    mix = [DemoRequest(r, kind, stream=False) for kind, rs in groups.items() for r in rs]
    rng.shuffle(mix)
    # Shuffled, but each session's turns stay in order across the positions it holds.
    slots: dict[str, list[int]] = defaultdict(list)
    for i, item in enumerate(mix):
        slots[item.request.session_id].append(i)
    ordered = list(mix)
    for positions in slots.values():
        turns = sorted((mix[i] for i in positions), key=lambda d: d.request.turn)
        for i, item in zip(positions, turns, strict=True):
            ordered[i] = item
    return [DemoRequest(d.request, d.kind, stream=i % 2 == 0) for i, d in enumerate(ordered)]


@dataclass(frozen=True, slots=True)
class Outcome:
    """What the client saw for one request."""

    request_id: str
    kind: Kind
    status: int
    latency_s: float
    tier: str = ""
    backend: str = ""
    rule: str = ""
    ttft_s: float | None = None
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cached_tokens: int = 0
    error: str | None = None

    @property
    def ok(self) -> bool:
        return 200 <= self.status < 300


async def send_all(
    base_url: str, mix: Sequence[DemoRequest], *, concurrency: int = 12, timeout_s: float = 60.0
) -> list[Outcome]:
    """Send the mix through ``base_url`` (no ``/v1``); outcomes come back in mix order."""
    sessions: dict[str, list[int]] = defaultdict(list)
    for idx, item in enumerate(mix):
        sessions[item.request.session_id].append(idx)
    results: list[Outcome | None] = [None] * len(mix)
    limit = asyncio.Semaphore(max(concurrency, 1))
    url = base_url.rstrip("/") + "/v1/chat/completions"
    timeout = aiohttp.ClientTimeout(total=timeout_s)
    async with aiohttp.ClientSession(timeout=timeout) as http:

        async def run_session(indices: list[int]) -> None:
            for idx in sorted(indices, key=lambda i: mix[i].request.turn):
                async with limit:
                    results[idx] = await send_one(http, url, mix[idx])

        async with asyncio.TaskGroup() as group:
            for indices in sessions.values():
                group.create_task(run_session(indices))
    return [r for r in results if r is not None]


async def send_one(http: aiohttp.ClientSession, url: str, item: DemoRequest) -> Outcome:
    """One request; transport errors become status 0 with the error text."""
    began = time.monotonic()
    body = item.request.body(MODEL_ALIAS, stream=item.stream)
    rid, kind = item.request.id, item.kind
    try:
        async with http.post(
            url, data=orjson.dumps(body), headers={"Content-Type": "application/json"}
        ) as response:
            tier = response.headers.get("x-tierwise-tier", "")
            backend = response.headers.get("x-tierwise-backend", "")
            rule = response.headers.get("x-tierwise-rule", "")
            if response.status >= 400:
                text = (await response.text())[:300]
                return Outcome(
                    rid,
                    kind,
                    response.status,
                    time.monotonic() - began,
                    tier,
                    backend,
                    rule,
                    error=text,
                )
            if item.stream:
                ttft, usage = await read_stream(response, began)
            else:
                ttft, usage = None, orjson.loads(await response.read()).get("usage") or {}
    except (aiohttp.ClientError, TimeoutError) as exc:
        return Outcome(rid, kind, 0, time.monotonic() - began, error=f"{type(exc).__name__}")
    details = usage.get("prompt_tokens_details") or {}
    return Outcome(
        rid,
        kind,
        response.status,
        time.monotonic() - began,
        tier,
        backend,
        rule,
        ttft_s=ttft,
        prompt_tokens=int(usage.get("prompt_tokens", 0)),
        completion_tokens=int(usage.get("completion_tokens", 0)),
        cached_tokens=int(details.get("cached_tokens", 0) or 0),
    )
