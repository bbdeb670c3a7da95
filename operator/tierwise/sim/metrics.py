"""Prometheus metrics under the names and types real vLLM and SGLang expose.

Why it exists: the autoscaler and the router read engine metrics by their real names, so
the simulator must publish exactly those (names, types, labels) for the engine it plays.

Sources (see ``docs/simulator.md``):

* vLLM, as read off a real vLLM 0.32 server (v1 engine, ``vllm/v1/metrics/loggers.py``):
  labels ``model_name`` and ``engine`` (the engine index, ``"0"``). Prefix-cache queries
  and hits count tokens.
* SGLang, ``python/sglang/srt/metrics/collector.py``: scheduler gauges carry
  ``model_name, engine_type, tp_rank, pp_rank`` (``scheduler_metrics_mixin.py``); the
  tokenizer manager's counters and histograms carry ``model_name, engine_type``;
  ``engine_type`` is ``"unified"`` without disaggregation. ``cache_hit_rate`` is the hit
  rate of the latest prefill, as SGLang logs it per prefill batch.

Every registry is per app (no global registry), built by :func:`create_metrics`.
"""

from __future__ import annotations

import abc

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from tierwise.sim.config import EngineKind, SimConfig

# vLLM's TTFT and end-to-end buckets (v1 loggers).
_VLLM_TTFT_BUCKETS = (
    0.001,
    0.005,
    0.01,
    0.02,
    0.04,
    0.06,
    0.08,
    0.1,
    0.25,
    0.5,
    0.75,
    1.0,
    2.5,
    5.0,
    7.5,
    10.0,
    20.0,
    40.0,
    80.0,
    160.0,
    640.0,
    2560.0,
)
_VLLM_E2E_BUCKETS = (
    0.3,
    0.5,
    0.8,
    1.0,
    1.5,
    2.0,
    2.5,
    5.0,
    10.0,
    15.0,
    20.0,
    30.0,
    40.0,
    50.0,
    60.0,
    120.0,
    240.0,
    480.0,
    960.0,
    1920.0,
    7680.0,
)
# SGLang's defaults (TokenizerMetricsCollector).
_SGLANG_TTFT_BUCKETS = (0.1, 0.2, 0.4, 0.6, 0.8, 1, 2, 4, 6, 8, 10, 20, 40, 60, 80, 100, 200, 400)
_SGLANG_E2E_BUCKETS = (
    0.1,
    0.2,
    0.4,
    0.6,
    0.8,
    1,
    2,
    4,
    6,
    8,
    10,
    20,
    40,
    60,
    80,
    100,
    200,
    400,
    600,
    1200,
    1800,
    2400,
)


class EngineMetrics(abc.ABC):
    """What the simulator records; each engine maps it onto its own metric names."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)

    @abc.abstractmethod
    def set_load(
        self, *, waiting: int, running: int, kv_used_tokens: int, kv_capacity_tokens: int
    ) -> None:
        """Queue depth, running requests and KV-cache occupancy, as of now."""

    @abc.abstractmethod
    def record_prefill(self, *, prompt_tokens: int, cached_tokens: int) -> None:
        """A prompt was prefilled; ``cached_tokens`` of it came from the prefix cache."""

    @abc.abstractmethod
    def record_first_token(self, ttft_s: float) -> None: ...

    @abc.abstractmethod
    def record_generated(self, tokens: int) -> None: ...

    @abc.abstractmethod
    def record_finished(self, *, e2e_s: float, finish_reason: str) -> None: ...


class VllmMetrics(EngineMetrics):
    def __init__(self, model: str) -> None:
        super().__init__()
        names = ("model_name", "engine")
        values = {"model_name": model, "engine": "0"}
        r = self.registry

        def gauge(name: str, doc: str) -> Gauge:
            return Gauge(name, doc, names, registry=r)

        def counter(name: str, doc: str) -> Counter:
            return Counter(name, doc, names, registry=r)

        self.waiting = gauge(
            "vllm:num_requests_waiting", "Number of requests waiting to be processed."
        ).labels(**values)
        self.running = gauge(
            "vllm:num_requests_running", "Number of requests in model execution batches."
        ).labels(**values)
        self.kv_usage = gauge(
            "vllm:kv_cache_usage_perc", "KV-cache usage. 1 means 100 percent usage."
        ).labels(**values)
        self.queries = counter(
            "vllm:prefix_cache_queries",
            "Prefix cache queries, in terms of number of queried tokens.",
        ).labels(**values)
        self.hits = counter(
            "vllm:prefix_cache_hits", "Prefix cache hits, in terms of number of cached tokens."
        ).labels(**values)
        self.prompt = counter("vllm:prompt_tokens", "Number of prefill tokens processed.").labels(
            **values
        )
        self.generation = counter(
            "vllm:generation_tokens", "Number of generation tokens processed."
        ).labels(**values)
        self.ttft = Histogram(
            "vllm:time_to_first_token_seconds",
            "Histogram of time to first token in seconds.",
            names,
            registry=r,
            buckets=_VLLM_TTFT_BUCKETS,
        ).labels(**values)
        self.e2e = Histogram(
            "vllm:e2e_request_latency_seconds",
            "Histogram of e2e request latency in seconds.",
            names,
            registry=r,
            buckets=_VLLM_E2E_BUCKETS,
        ).labels(**values)
        self._success = Counter(
            "vllm:request_success",
            "Count of successfully processed requests.",
            (*names, "finished_reason"),
            registry=r,
        )
        self._values = values

    def set_load(
        self, *, waiting: int, running: int, kv_used_tokens: int, kv_capacity_tokens: int
    ) -> None:
        self.waiting.set(waiting)
        self.running.set(running)
        self.kv_usage.set(_fraction(kv_used_tokens, kv_capacity_tokens))

    def record_prefill(self, *, prompt_tokens: int, cached_tokens: int) -> None:
        self.queries.inc(prompt_tokens)
        self.hits.inc(cached_tokens)
        self.prompt.inc(prompt_tokens)

    def record_first_token(self, ttft_s: float) -> None:
        self.ttft.observe(ttft_s)

    def record_generated(self, tokens: int) -> None:
        self.generation.inc(tokens)

    def record_finished(self, *, e2e_s: float, finish_reason: str) -> None:
        self.e2e.observe(e2e_s)
        self._success.labels(**self._values, finished_reason=finish_reason).inc()


class SglangMetrics(EngineMetrics):
    def __init__(self, model: str) -> None:
        super().__init__()
        sched = {"model_name": model, "engine_type": "unified", "tp_rank": "0", "pp_rank": "0"}
        tok = {"model_name": model, "engine_type": "unified"}
        r = self.registry

        def gauge(name: str, doc: str) -> Gauge:
            return Gauge(name, doc, tuple(sched), registry=r)

        def counter(name: str, doc: str) -> Counter:
            return Counter(name, doc, tuple(tok), registry=r)

        self.running = gauge("sglang:num_running_reqs", "The number of running requests.").labels(
            **sched
        )
        self.queue = gauge(
            "sglang:num_queue_reqs", "The number of requests in the waiting queue."
        ).labels(**sched)
        self.used_tokens = gauge("sglang:num_used_tokens", "The number of used tokens.").labels(
            **sched
        )
        self.token_usage = gauge("sglang:token_usage", "The token usage.").labels(**sched)
        self.hit_rate = gauge("sglang:cache_hit_rate", "The prefix cache hit rate.").labels(**sched)
        self.max_tokens = gauge(
            "sglang:max_total_num_tokens", "Maximum total number of tokens in the KV cache pool."
        ).labels(**sched)
        self.prompt = counter(
            "sglang:prompt_tokens_total", "Number of prefill tokens processed."
        ).labels(**tok)
        self.generation = counter(
            "sglang:generation_tokens_total", "Number of generation tokens processed."
        ).labels(**tok)
        self.cached = counter(
            "sglang:cached_tokens_total", "Number of cached prompt tokens."
        ).labels(**tok)
        self.requests = counter(
            "sglang:num_requests_total", "Number of requests processed."
        ).labels(**tok)
        self.ttft = Histogram(
            "sglang:time_to_first_token_seconds",
            "Histogram of time to first token in seconds.",
            tuple(tok),
            registry=r,
            buckets=_SGLANG_TTFT_BUCKETS,
        ).labels(**tok)
        self.e2e = Histogram(
            "sglang:e2e_request_latency_seconds",
            "Histogram of End-to-end request latency in seconds",
            tuple(tok),
            registry=r,
            buckets=_SGLANG_E2E_BUCKETS,
        ).labels(**tok)

    def set_load(
        self, *, waiting: int, running: int, kv_used_tokens: int, kv_capacity_tokens: int
    ) -> None:
        self.queue.set(waiting)
        self.running.set(running)
        self.used_tokens.set(kv_used_tokens)
        self.max_tokens.set(kv_capacity_tokens)
        self.token_usage.set(_fraction(kv_used_tokens, kv_capacity_tokens))

    def record_prefill(self, *, prompt_tokens: int, cached_tokens: int) -> None:
        self.prompt.inc(prompt_tokens)
        self.cached.inc(cached_tokens)
        self.hit_rate.set(_fraction(cached_tokens, prompt_tokens))

    def record_first_token(self, ttft_s: float) -> None:
        self.ttft.observe(ttft_s)

    def record_generated(self, tokens: int) -> None:
        self.generation.inc(tokens)

    def record_finished(self, *, e2e_s: float, finish_reason: str) -> None:
        self.e2e.observe(e2e_s)
        self.requests.inc()


def _fraction(part: int, whole: int) -> float:
    return min(part / whole, 1.0) if whole > 0 else 0.0


def create_metrics(config: SimConfig) -> EngineMetrics:
    """A fresh metric set, in its own registry, for the engine ``config`` impersonates."""
    if config.engine is EngineKind.SGLANG:
        return SglangMetrics(config.model)
    return VllmMetrics(config.model)
