"""An async load driver: send a workload to an OpenAI-compatible base URL and measure it.

Why it exists: benchmarks, the demo and ``tierwise sim traffic`` all need the same thing —
replay :mod:`tierwise.sim.traffic` requests against a simulator, a router or a real engine
with a concurrency limit, honouring session order and arrival times, and report latency,
time to first token and status per request. One ``aiohttp`` session per run.
"""

from __future__ import annotations

import asyncio
import time
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import aiohttp
import orjson

from tierwise.sim.traffic import Request


@dataclass(frozen=True, slots=True)
class RequestResult:
    """What one request got: HTTP status (0 on a transport error), timings and tokens."""

    request_id: str
    session_id: str
    status: int
    latency_s: float
    ttft_s: float | None = None
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cached_tokens: int = 0
    error: str | None = None

    @property
    def ok(self) -> bool:
        return 200 <= self.status < 300


@dataclass(frozen=True, slots=True)
class DriveOptions:
    model: str
    concurrency: int = 16
    stream: bool = True
    timeout_s: float = 120.0
    respect_arrivals: bool = True
    headers: tuple[tuple[str, str], ...] = ()


async def drive(
    base_url: str, requests: Sequence[Request], options: DriveOptions
) -> list[RequestResult]:
    """Send ``requests`` to ``base_url`` (no ``/v1``); results are in request order."""
    sessions: dict[str, list[int]] = defaultdict(list)
    for idx, request in enumerate(requests):
        sessions[request.session_id].append(idx)
    results: list[RequestResult | None] = [None] * len(requests)
    limit = asyncio.Semaphore(max(options.concurrency, 1))
    timeout = aiohttp.ClientTimeout(total=options.timeout_s)
    start = time.monotonic()
    url = base_url.rstrip("/") + "/v1/chat/completions"
    async with aiohttp.ClientSession(timeout=timeout, headers=dict(options.headers)) as http:

        async def run_session(indices: list[int]) -> None:
            for idx in sorted(indices, key=lambda i: requests[i].turn):
                request = requests[idx]
                if options.respect_arrivals:
                    delay = start + request.arrival_s - time.monotonic()
                    if delay > 0:
                        await asyncio.sleep(delay)
                async with limit:
                    results[idx] = await send(http, url, request, options)

        async with asyncio.TaskGroup() as group:
            for indices in sessions.values():
                group.create_task(run_session(indices))
    return [r for r in results if r is not None]


async def send(
    http: aiohttp.ClientSession, url: str, request: Request, options: DriveOptions
) -> RequestResult:
    """Send one request and measure it; transport errors become status 0."""
    began = time.monotonic()
    body = orjson.dumps(request.body(options.model, stream=options.stream))
    rid, sid = request.id, request.session_id
    try:
        async with http.post(
            url, data=body, headers={"Content-Type": "application/json"}
        ) as response:
            if response.status >= 400:
                text = await response.text()
                return RequestResult(
                    rid,
                    sid,
                    status=response.status,
                    latency_s=time.monotonic() - began,
                    error=text[:500],
                )
            if options.stream:
                ttft, usage = await read_stream(response, began)
            else:
                usage = orjson.loads(await response.read()).get("usage") or {}
                ttft = None
    except (aiohttp.ClientError, TimeoutError) as exc:
        return RequestResult(
            rid,
            sid,
            status=0,
            latency_s=time.monotonic() - began,
            error=f"{type(exc).__name__}: {exc}",
        )
    details = usage.get("prompt_tokens_details") or {}
    return RequestResult(
        rid,
        sid,
        status=response.status,
        latency_s=time.monotonic() - began,
        ttft_s=ttft,
        prompt_tokens=int(usage.get("prompt_tokens", 0)),
        completion_tokens=int(usage.get("completion_tokens", 0)),
        cached_tokens=int(details.get("cached_tokens", 0) or 0),
    )


async def read_stream(
    response: aiohttp.ClientResponse, began: float
) -> tuple[float | None, dict[str, Any]]:
    """Consume an SSE completion stream: (time to first text, final usage or {})."""
    ttft: float | None = None
    usage: dict[str, Any] = {}
    async for raw in response.content:
        line = raw.strip()
        if not line.startswith(b"data:"):
            continue
        data = line[5:].strip()
        if data == b"[DONE]":
            break
        event = orjson.loads(data)
        if ttft is None and any(_has_text(c) for c in event.get("choices") or []):
            ttft = time.monotonic() - began
        if event.get("usage"):
            usage = event["usage"]
    return ttft, usage


def _has_text(choice: dict[str, Any]) -> bool:
    delta = choice.get("delta") or {}
    return bool(delta.get("content") or choice.get("text"))


@dataclass(frozen=True, slots=True)
class Summary:
    count: int
    errors: int
    wall_s: float
    latency_p50_s: float
    latency_p99_s: float
    ttft_p50_s: float
    ttft_p99_s: float
    output_tokens_per_s: float
    cached_token_fraction: float

    def format(self) -> str:
        return (
            f"requests {self.count}  errors {self.errors}  wall {self.wall_s:.2f}s\n"
            f"latency  p50 {_ms(self.latency_p50_s)}  p99 {_ms(self.latency_p99_s)}\n"
            f"ttft     p50 {_ms(self.ttft_p50_s)}  p99 {_ms(self.ttft_p99_s)}\n"
            f"output   {self.output_tokens_per_s:.1f} tokens/s  "
            f"cached prompt tokens {self.cached_token_fraction:.1%}"
        )


def _ms(seconds: float) -> str:
    return f"{seconds * 1e3:.1f} ms"


def percentile(values: Sequence[float], q: float) -> float:
    """Nearest-rank percentile (``q`` in 0..100); 0 for no values."""
    if not values:
        return 0.0
    ordered = sorted(values)
    rank = max(int(-(-q * len(ordered) // 100)) - 1, 0)
    return ordered[min(rank, len(ordered) - 1)]


def summarize(results: Sequence[RequestResult], wall_s: float) -> Summary:
    ok = [r for r in results if r.ok]
    latencies = [r.latency_s for r in ok]
    ttfts = [r.ttft_s for r in ok if r.ttft_s is not None]
    prompt = sum(r.prompt_tokens for r in ok)
    return Summary(
        count=len(results),
        errors=len(results) - len(ok),
        wall_s=wall_s,
        latency_p50_s=percentile(latencies, 50),
        latency_p99_s=percentile(latencies, 99),
        ttft_p50_s=percentile(ttfts, 50),
        ttft_p99_s=percentile(ttfts, 99),
        output_tokens_per_s=sum(r.completion_tokens for r in ok) / wall_s if wall_s > 0 else 0.0,
        cached_token_fraction=sum(r.cached_tokens for r in ok) / prompt if prompt else 0.0,
    )
