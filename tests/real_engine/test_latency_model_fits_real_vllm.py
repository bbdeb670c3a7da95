"""Calibrate the simulator's latency model against a real vLLM server, and check its shape.

The simulator says: time to first token = a fixed cost + a cost per *uncached* prompt
token, and each later token costs one decode step that grows with the batch. Here a real
vLLM (tiny model, CPU) is timed over several prompt lengths (each prompt new to the cache,
then once more fully cached) and output lengths, at batch sizes 1 and 4, and the
simulator's parameters are fitted by least squares. The test checks the shape (prefill
linear in uncached tokens, cached prompts cheaper, decode step growing with the batch)
and writes the fit to ``latency_fit.json`` in the session's work folder; the numbers of a
run are in ``docs/benchmarks/real_engine.md``.
"""

from __future__ import annotations

import asyncio
import json
import statistics
import uuid
from dataclasses import asdict, dataclass
from pathlib import Path

import openai
import pytest
from real_engine_support import MAX_NUM_SEQS, SERVED_NAME, Served, sample

from tierwise.sim.latency import PROFILES, LatencyParams, Profile, prefill_seconds

pytestmark = pytest.mark.real_engine

PROMPT_WORDS = (16, 128, 320, 640)
OUTPUT_TOKENS = 48
REPEATS = 3


ENGINE_SUMS = (
    "vllm:time_to_first_token_seconds_sum",
    "vllm:request_decode_time_seconds_sum",
    "vllm:prefix_cache_queries_total",
    "vllm:prefix_cache_hits_total",
)


@dataclass(frozen=True)
class Timing:
    """One request as the engine timed it (deltas of its own /metrics)."""

    prompt_tokens: int
    uncached_tokens: int
    ttft_s: float
    step_s: float
    """Decode time per output token after the first."""


def engine_sums(server: Served) -> list[float]:
    return [sample(server.url, name) for name in ENGINE_SUMS]


async def timed(client: openai.AsyncOpenAI, server: Served, prompt: str) -> Timing:
    """Send one request alone and read what it cost from the engine's counters."""
    before = await asyncio.to_thread(engine_sums, server)
    answer = await client.completions.create(
        model=SERVED_NAME, prompt=prompt, max_tokens=OUTPUT_TOKENS, temperature=0,
        extra_body={"ignore_eos": True},
    )  # fmt: skip
    after = await asyncio.to_thread(engine_sums, server)
    ttft, decode, queried, hit = (a - b for a, b in zip(after, before, strict=True))
    assert answer.usage is not None
    assert queried == answer.usage.prompt_tokens
    return Timing(int(queried), int(queried - hit), ttft, decode / (OUTPUT_TOKENS - 1))


def fit_line(xs: list[float], ys: list[float]) -> tuple[float, float, float]:
    """Least squares ``y = a + b x``: (a, b, r squared)."""
    mx, my = statistics.fmean(xs), statistics.fmean(ys)
    sxx = sum((x - mx) ** 2 for x in xs)
    b = sum((x - mx) * (y - my) for x, y in zip(xs, ys, strict=True)) / sxx
    a = my - b * mx
    ss_res = sum((y - a - b * x) ** 2 for x, y in zip(xs, ys, strict=True))
    ss_tot = sum((y - my) ** 2 for y in ys)
    return a, b, 1 - ss_res / ss_tot if ss_tot else 1.0


async def batch_step(client: openai.AsyncOpenAI, server: Served, running: int) -> float:
    """Decode seconds per token with ``running`` requests decoding together."""
    before = await asyncio.to_thread(engine_sums, server)
    await asyncio.gather(
        *(
            client.completions.create(
                model=SERVED_NAME,
                prompt=f"{uuid.uuid4().hex} batch",
                max_tokens=OUTPUT_TOKENS,
                temperature=0,
                extra_body={"ignore_eos": True},
            )
            for _ in range(running)
        )
    )
    after = await asyncio.to_thread(engine_sums, server)
    # Each request's decode time spans the shared steps: per-request time per token.
    return (after[1] - before[1]) / running / (OUTPUT_TOKENS - 1)


async def measure(server: Served) -> tuple[dict[str, list[Timing]], list[float]]:
    out: dict[str, list[Timing]] = {"uncached": [], "cached": []}
    async with openai.AsyncOpenAI(
        base_url=server.url + "/v1", api_key="unused", max_retries=0, timeout=120
    ) as client:
        await timed(client, server, "warm up")
        for _ in range(REPEATS):
            for words in PROMPT_WORDS:
                prompt = f"{uuid.uuid4().hex} " + "cache token model " * (words // 3)
                out["uncached"].append(await timed(client, server, prompt))
                out["cached"].append(await timed(client, server, prompt))
        batched = [await batch_step(client, server, MAX_NUM_SEQS) for _ in range(REPEATS)]
    return out, batched


def fitted_params(
    timings: dict[str, list[Timing]], batched: list[float]
) -> tuple[LatencyParams, float]:
    """TTFT fitted on uncached tokens over every request; decode steps at 1 and 4 running."""
    both = timings["uncached"] + timings["cached"]
    base_s, per_token_s, r2 = fit_line([t.uncached_tokens for t in both], [t.ttft_s for t in both])
    step1 = statistics.median(t.step_s for t in both)
    step_n = statistics.median(batched)
    params = LatencyParams(
        prefill_base_ms=max(base_s, 0.0) * 1e3,
        prefill_ms_per_token=max(per_token_s, 0.0) * 1e3,
        decode_ms_per_token=step1 * 1e3,
        decode_ms_per_running=max(step_n - step1, 0.0) / (MAX_NUM_SEQS - 1) * 1e3,
        max_running=MAX_NUM_SEQS,
    )
    return params, r2


async def test_simulator_latency_model_fits_the_real_engine(
    vllm_servers: list[Served], work_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    timings, batched = await measure(vllm_servers[0])
    params, r2 = fitted_params(timings, batched)
    report = {
        "fit": asdict(params),
        "ttft_r2": r2,
        "simulator_small": asdict(PROFILES[Profile.SMALL]),
        "timings": {k: [asdict(t) for t in v] for k, v in timings.items()},
        "decode_step_s_at_max_running": batched,
    }
    (work_dir / "latency_fit.json").write_text(json.dumps(report, indent=2))
    with capsys.disabled():
        print(
            f"\nfit: prefill {params.prefill_base_ms:.2f} ms + {params.prefill_ms_per_token:.4f}"
            f" ms/uncached token (r2 {r2:.2f}); decode {params.decode_ms_per_token:.2f} ms/token"
            f" + {params.decode_ms_per_running:.2f} ms per extra running request"
        )
    assert params.prefill_ms_per_token > 0
    longest = 0.8 * max(t.prompt_tokens for t in timings["uncached"])
    shortest = 1.2 * min(t.prompt_tokens for t in timings["uncached"])
    short = [t.ttft_s for t in timings["uncached"] if t.prompt_tokens < shortest]
    uncached = [t for t in timings["uncached"] if t.prompt_tokens > longest]
    cached = [t for t in timings["cached"] if t.prompt_tokens > longest]
    assert all(t.uncached_tokens < t.prompt_tokens // 2 for t in cached)
    # Prefill grows with uncached tokens (r2 is reported, not asserted: 2 shared cores).
    assert statistics.median(t.ttft_s for t in uncached) > 1.5 * statistics.median(short)
    # A cached prompt skips most of its prefill: faster than the same prompt uncached.
    assert statistics.median(t.ttft_s for t in cached) < statistics.median(
        t.ttft_s for t in uncached
    )
    # The fitted model predicts the long uncached prompts' median TTFT within 50%.
    measured = statistics.median(t.ttft_s for t in uncached)
    predicted = prefill_seconds(params, int(statistics.median(t.uncached_tokens for t in uncached)))
    assert abs(predicted - measured) < 0.5 * measured
    # Decoding with the batch full costs each request at least as much per token.
    assert statistics.median(batched) >= 0.7 * params.decode_ms_per_token / 1e3
