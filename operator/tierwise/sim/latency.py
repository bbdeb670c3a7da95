"""The simulator's latency model: pure arithmetic shared by the server and offline replay.

Why it exists: routing and autoscaling decisions are only as good as the cost model they
are tested against. Real engines pay for each prompt token *not* in their prefix cache
(prefill is compute-bound and linear in new tokens at these sizes) and pay per output
token a decode step whose duration grows with the number of requests batched together
(continuous batching trades per-request speed for throughput). This module states that
model once; ``engine`` sleeps it and ``replay`` adds it up without a clock.

Parameters (all per replica, all settable per process; ``docs/simulator.md`` says how the
presets were chosen, to be calibrated against real vLLM on CPU later):

``prefill_base_ms``        fixed cost before the first token (scheduling, sampling)
``prefill_ms_per_token``   cost of each prompt token not already in the prefix cache
``decode_ms_per_token``    duration of one decode step with one running request
``decode_ms_per_running``  extra step duration for each additional running request
``max_running``            batch slots: requests decoding at once (vLLM ``max_num_seqs``)
``max_queue``              waiting requests held beyond that; more are rejected with 503
``kv_capacity_tokens``     KV-cache pool in tokens; prefix cache holds ``// block_size``

Time to first token = queue wait + prefill. Each later token takes one decode step at the
batch size current when the step starts. A replica's capacity is ``max_running`` concurrent
requests and at most ``peak_decode_tokens_per_s`` generated tokens per second.
"""

from __future__ import annotations

import enum
import math
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class LatencyParams:
    """Per-replica latency and capacity parameters (see the module docstring)."""

    prefill_base_ms: float = 10.0
    prefill_ms_per_token: float = 0.06
    decode_ms_per_token: float = 10.0
    decode_ms_per_running: float = 0.06
    max_running: int = 256
    max_queue: int = 1024
    kv_capacity_tokens: int = 400_000

    def __post_init__(self) -> None:
        for name in (
            "prefill_base_ms",
            "prefill_ms_per_token",
            "decode_ms_per_token",
            "decode_ms_per_running",
        ):
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must be >= 0")
        if self.max_running < 1:
            raise ValueError("max_running must be >= 1")
        if self.max_queue < 0 or self.kv_capacity_tokens < 0:
            raise ValueError("max_queue and kv_capacity_tokens must be >= 0")

    @property
    def is_zero(self) -> bool:
        """True in zero-latency mode: every time parameter is 0."""
        return not (
            self.prefill_base_ms
            or self.prefill_ms_per_token
            or self.decode_ms_per_token
            or self.decode_ms_per_running
        )


class Profile(enum.StrEnum):
    """Named presets: a small fast model, a mid one, a large slow one, and no latency."""

    ZERO = "zero"
    SMALL = "small"
    MID = "mid"
    LARGE = "large"


PROFILES: dict[Profile, LatencyParams] = {
    Profile.ZERO: LatencyParams(
        0.0, 0.0, 0.0, 0.0, max_running=1024, max_queue=100_000, kv_capacity_tokens=1_000_000
    ),
    # ~1B parameters on one GPU.
    Profile.SMALL: LatencyParams(
        5.0, 0.02, 5.0, 0.02, max_running=256, max_queue=1024, kv_capacity_tokens=500_000
    ),
    # ~8B parameters on one H100 (the default).
    Profile.MID: LatencyParams(),
    # ~70B parameters, tensor-parallel over four GPUs.
    Profile.LARGE: LatencyParams(
        20.0, 0.12, 30.0, 0.2, max_running=128, max_queue=512, kv_capacity_tokens=200_000
    ),
}


def prefill_seconds(params: LatencyParams, uncached_tokens: int) -> float:
    """Seconds from admission to the first token for ``uncached_tokens`` new prompt tokens."""
    return (params.prefill_base_ms + params.prefill_ms_per_token * max(uncached_tokens, 0)) / 1e3


def decode_step_seconds(params: LatencyParams, running: int) -> float:
    """Seconds of one decode step while ``running`` requests share the batch."""
    extra = params.decode_ms_per_running * max(running - 1, 0)
    return (params.decode_ms_per_token + extra) / 1e3


def request_seconds(
    params: LatencyParams, *, uncached_tokens: int, output_tokens: int, running: int
) -> float:
    """End-to-end service time of one request at a constant batch size (no queueing)."""
    steps = max(output_tokens - 1, 0)
    return prefill_seconds(params, uncached_tokens) + steps * decode_step_seconds(params, running)


def decode_tokens_per_s(params: LatencyParams, running: int) -> float:
    """Generated tokens per second of the whole replica with ``running`` requests."""
    step = decode_step_seconds(params, running)
    return math.inf if step == 0 else running / step


@dataclass(frozen=True, slots=True)
class Capacity:
    """What one replica can hold: concurrent requests, queue, and peak token rate."""

    max_running: int
    max_queue: int
    peak_decode_tokens_per_s: float


def capacity(params: LatencyParams) -> Capacity:
    """The capacity of one replica: the decode rate peaks with every batch slot full."""
    return Capacity(
        max_running=params.max_running,
        max_queue=params.max_queue,
        peak_decode_tokens_per_s=decode_tokens_per_s(params, params.max_running),
    )
