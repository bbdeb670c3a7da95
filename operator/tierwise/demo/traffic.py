"""The demo's requests: four kinds a tier policy separates, and a client that records each
decision the router made.

Why it exists: ``tierwise demo`` must show each tier earning its place, so its traffic
holds the four shapes a tier policy separates — short chat (the default, cheapest tier),
code questions and agentic multi-turn sessions with long shared prefixes (the mid tier,
where prefix-aware balancing pays), and hard reasoning (the frontier tier) — the same for
the same seed. Chat and agentic requests come from :mod:`tierwise.sim.traffic`; code and
reasoning prompts are templates here (some in French and Chinese: keyword rules must not
be ASCII-only). When each request is sent is the script's business
(:mod:`tierwise.demo.script`).

:func:`send_one` plays an ordinary OpenAI client (plain HTTP with ``aiohttp``) and keeps
what the router said about the request: the ``x-tierwise-tier``/``-backend``/``-rule``
headers, status, latency, time to first token and the ``usage`` block.
"""

from __future__ import annotations

import dataclasses
import random
import time
from dataclasses import dataclass
from enum import StrEnum

import aiohttp
import orjson

from tierwise.sim.driver import read_stream
from tierwise.sim.traffic import Request, TrafficShape, generate

MODEL_ALIAS = "auto"
OUTPUT_TOKENS = (16, 48)
SHAPE = TrafficShape(
    output_tokens=OUTPUT_TOKENS,
    chat_user_words=(10, 80),
    agentic_system_words=1200,
    agentic_turns=(3, 5),
    agentic_tool_result_words=(30, 120),
)


class Kind(StrEnum):
    CHAT = "chat"
    CODE = "code"
    AGENTIC = "agentic"
    REASONING = "reasoning"


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
    """One request: the body's content, its kind, and whether to stream the answer."""

    request: Request
    kind: Kind
    stream: bool


def _templated(rng: random.Random, kind: Kind, count: int) -> list[Request]:
    templates = _CODE if kind is Kind.CODE else _REASONING
    out = []
    for i in range(count):
        text = templates[rng.randrange(len(templates))].format(
            name=rng.choice(_NAMES),
            n=rng.randint(3, 40),
            m=rng.randint(41, 90),
            p=rng.choice((2, 3, 5, 7, 11)),
        )
        messages = ({"role": "user", "content": text},)
        out.append(Request(f"{kind}-{i}", f"{kind}-{i}", 0, messages, rng.randint(*OUTPUT_TOKENS)))
    return out


def requests_of(kind: Kind, count: int, *, seed: int, prefix: str) -> list[DemoRequest]:
    """``count`` requests of ``kind`` (agentic: whole sessions, turns in order), with ids
    and session ids starting with ``prefix`` so that several batches never collide."""
    rng = random.Random(f"{seed}/{prefix}/{kind}")
    if kind is Kind.CHAT:
        made = generate("chat", count, rng.randrange(2**31), shape=SHAPE)
    elif kind is Kind.AGENTIC:
        made = generate("agentic", count, rng.randrange(2**31), shape=SHAPE)
    else:
        made = _templated(rng, kind, count)
    return [
        DemoRequest(
            dataclasses.replace(r, id=f"{prefix}-{r.id}", session_id=f"{prefix}-{r.session_id}"),
            kind,
            stream=rng.random() < 0.5,
        )
        for r in made
    ]


@dataclass(frozen=True, slots=True)
class Outcome:
    """What the client saw for one request (``sent_s``: when it was sent, on the demo's
    clock; ``latency_s``: until the last byte)."""

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
    sent_s: float = 0.0
    phase: str = ""

    @property
    def ok(self) -> bool:
        return 200 <= self.status < 300

    @property
    def done_s(self) -> float:
        return self.sent_s + self.latency_s


async def send_one(http: aiohttp.ClientSession, url: str, item: DemoRequest) -> Outcome:
    """One request to ``url`` (``.../v1/chat/completions``); transport errors become
    status 0 with the error's type."""
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
                elapsed = time.monotonic() - began
                return Outcome(rid, kind, response.status, elapsed, tier, backend, rule, error=text)
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
