"""Typed configuration of one simulated engine process, built once and passed down.

Why it exists: the CLI, the in-process test server and the local cluster's pod runner all
start simulators; they share this one frozen description instead of loose keyword bags.
"""

from __future__ import annotations

import enum
import re
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from tierwise.sim.latency import LatencyParams
from tierwise.sim.prefix_cache import DEFAULT_BLOCK_SIZE


class EngineKind(enum.StrEnum):
    """Which real engine the simulator impersonates (API details and metric names)."""

    VLLM = "vllm"
    SGLANG = "sglang"


@dataclass(frozen=True, slots=True)
class FaultConfig:
    """Injected misbehaviour for fallback tests; the default injects nothing.

    ``error_rate`` of generation requests (drawn from the seeded generator) fail with
    ``error_status``; every generation request first waits ``extra_latency_s``; ``hang``
    holds generation requests without answering until faults are cleared;
    ``fail_health`` makes ``/health`` answer 503.
    """

    error_status: int = 500
    error_rate: float = 0.0
    extra_latency_s: float = 0.0
    hang: bool = False
    fail_health: bool = False

    def __post_init__(self) -> None:
        if not 400 <= self.error_status <= 599:
            raise ValueError("error_status must be an HTTP error status (400-599)")
        if not 0.0 <= self.error_rate <= 1.0:
            raise ValueError("error_rate must be within [0, 1]")
        if self.extra_latency_s < 0:
            raise ValueError("extra_latency_s must be >= 0")

    @property
    def active(self) -> bool:
        return bool(self.error_rate or self.extra_latency_s or self.hang or self.fail_health)


@dataclass(frozen=True, slots=True)
class SimConfig:
    """Everything one simulated replica needs.

    ``output_tokens_min``/``_max`` bound the "natural" reply length (where a real model
    would emit end-of-sequence); ``max_tokens`` cuts it shorter, ``ignore_eos`` makes the
    reply exactly ``max_tokens`` long. ``model_path`` is the local folder reported by the
    SGLang info endpoints; by default one is created under the temp directory.
    """

    engine: EngineKind = EngineKind.VLLM
    model: str = "sim-model"
    seed: int = 0
    latency: LatencyParams = field(default_factory=LatencyParams)
    context_length: int = 32_768
    block_size: int = DEFAULT_BLOCK_SIZE
    output_tokens_min: int = 16
    output_tokens_max: int = 128
    model_path: Path | None = None
    faults: FaultConfig = field(default_factory=FaultConfig)

    def __post_init__(self) -> None:
        if self.context_length < 1 or self.block_size < 1:
            raise ValueError("context_length and block_size must be >= 1")
        if not 1 <= self.output_tokens_min <= self.output_tokens_max:
            raise ValueError("need 1 <= output_tokens_min <= output_tokens_max")

    @property
    def cache_capacity_blocks(self) -> int:
        return self.latency.kv_capacity_tokens // self.block_size

    def resolved_model_path(self) -> Path:
        """The model folder to report: the configured one, or a per-model temp folder."""
        if self.model_path is not None:
            return self.model_path
        safe = re.sub(r"[^A-Za-z0-9._-]+", "--", self.model).strip("-") or "model"
        return Path(tempfile.gettempdir()) / "tierwise-sim-models" / safe
