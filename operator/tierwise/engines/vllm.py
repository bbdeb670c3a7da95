"""vLLM: command line, probes and metric names, checked against vLLM's own source.

Sources (vllm-project/vllm):
- flags: ``vllm/engine/arg_utils.py`` (``EngineArgs.add_cli_args``: ``--served-model-name``,
  ``--tensor-parallel-size``/``-tp``, ``--data-parallel-size``/``-dp``, ``--max-model-len``,
  ``--quantization``/``-q``, ``--revision``, ``--enable-prefix-caching``),
  ``vllm/entrypoints/openai/cli_args.py`` (``--host``, ``--port``, default 8000) and the
  "vllm serve" CLI reference (``vllm serve MODEL``: the model is positional). Booleans are
  ``argparse.BooleanOptionalAction``, so prefix caching is ``--enable-prefix-caching`` or
  ``--no-enable-prefix-caching``; ``FlexibleArgumentParser`` accepts ``_`` for ``-``.
- health: ``vllm/entrypoints/openai/api_server.py``: ``GET /health`` is 200 while the
  engine is alive and 503 once it is dead; there is no separate readiness path, and the
  HTTP server only listens once the model is loaded, so ``/health`` serves all probes.
- metrics: ``vllm/v1/metrics/loggers.py`` (``PrometheusStatLogger``), always on at
  ``/metrics``; counters are declared without ``_total`` and prometheus_client appends it.
"""

from __future__ import annotations

from collections.abc import Sequence

from tierwise.api.model_deployment import EngineName
from tierwise.engines.args import FlagSyntax
from tierwise.engines.base import EngineMetrics, EngineProfile, LaunchConfig

IMAGE = "vllm/vllm-openai:v0.10.2"
PORT = 8000  # vllm/entrypoints/openai/cli_args.py default

# Metric names (vllm/v1/metrics/loggers.py), as scraped.
NUM_REQUESTS_WAITING = "vllm:num_requests_waiting"  # gauge
NUM_REQUESTS_RUNNING = "vllm:num_requests_running"  # gauge
KV_CACHE_USAGE_PERC = "vllm:kv_cache_usage_perc"  # gauge, 0-1 despite the name
GPU_CACHE_USAGE_PERC = "vllm:gpu_cache_usage_perc"  # the same gauge before v0.10
PREFIX_CACHE_QUERIES_TOTAL = "vllm:prefix_cache_queries_total"  # counter, tokens queried
PREFIX_CACHE_HITS_TOTAL = "vllm:prefix_cache_hits_total"  # counter, tokens hit
PROMPT_TOKENS_TOTAL = "vllm:prompt_tokens_total"  # counter
GENERATION_TOKENS_TOTAL = "vllm:generation_tokens_total"  # counter
TIME_TO_FIRST_TOKEN_SECONDS = "vllm:time_to_first_token_seconds"  # histogram

METRICS = EngineMetrics(
    waiting_requests=NUM_REQUESTS_WAITING,
    running_requests=NUM_REQUESTS_RUNNING,
    kv_cache_usage=KV_CACHE_USAGE_PERC,
    kv_cache_usage_former=(GPU_CACHE_USAGE_PERC,),
    prompt_tokens_total=PROMPT_TOKENS_TOTAL,
    generation_tokens_total=GENERATION_TOKENS_TOTAL,
    time_to_first_token_seconds=TIME_TO_FIRST_TOKEN_SECONDS,
    prefix_cache_queries_total=PREFIX_CACHE_QUERIES_TOTAL,
    prefix_cache_hits_total=PREFIX_CACHE_HITS_TOTAL,
)

SYNTAX = FlagSyntax(
    aliases={
        "-tp": "--tensor-parallel-size",
        "-dp": "--data-parallel-size",
        "-q": "--quantization",
    },
    negation_prefix="--no-",
)

RESERVED = {
    "--model": "set spec.model.uri",
    "--served-model-name": "set spec.model.servedName",
    "--tensor-parallel-size": "set spec.engine.tensorParallelSize (GPU limits follow it)",
    "--data-parallel-size": "set spec.resources.gpus to a multiple of tensorParallelSize",
    "--port": f"the engine always listens on {PORT}, where the probes and Service point",
    "--host": "the engine listens on all interfaces so probes and the Service reach it",
}


def flags(launch: LaunchConfig) -> Sequence[tuple[str, ...]]:
    caching = "--enable-prefix-caching" if launch.prefix_caching else "--no-enable-prefix-caching"
    out: list[tuple[str, ...]] = [
        (launch.model,),
        ("--served-model-name", launch.served_name),
        ("--tensor-parallel-size", str(launch.tensor_parallel_size)),
        ("--port", str(PORT)),
        (caching,),
    ]
    if launch.data_parallel_size > 1:
        out.append(("--data-parallel-size", str(launch.data_parallel_size)))
    if launch.context_length is not None:
        out.append(("--max-model-len", str(launch.context_length)))
    if launch.quantization is not None:
        out.append(("--quantization", launch.quantization))
    if launch.revision is not None:
        out.append(("--revision", launch.revision))
    return out


def profile() -> EngineProfile:
    return EngineProfile(
        name=EngineName.VLLM,
        image=IMAGE,
        port=PORT,
        entrypoint=("vllm", "serve"),
        flags=flags,
        syntax=SYNTAX,
        reserved=RESERVED,
        startup_path="/health",
        readiness_path="/health",
        liveness_path="/health",
        metrics=METRICS,
    )
