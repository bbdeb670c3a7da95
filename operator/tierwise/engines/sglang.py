"""SGLang: command line, probes and metric names, checked against SGLang's own source.

Sources (sgl-project/sglang):
- flags: ``python/sglang/srt/server_args.py`` (``ServerArgs.add_cli_args``; port default
  30000) and ``docs/advanced_features/server_arguments.md``;
- health: ``python/sglang/srt/entrypoints/http_server.py``: ``/health`` answers 503 while
  the server is starting and while it shuts down gracefully, 200 otherwise;
  ``/health_generate`` additionally runs a one-token generation when the scheduler is idle
  (a no-op while it is busy), so it catches a hung scheduler;
- metrics: ``python/sglang/srt/metrics/collector.py`` and
  ``docs/references/production_metrics.md``, exposed with ``--enable-metrics``.

RadixAttention (SGLang's prefix cache) is on by default in SGLang; Tierwise only adds
``--disable-radix-cache`` when ``spec.engine.prefixCaching`` is false.
"""

from __future__ import annotations

from collections.abc import Sequence

from tierwise.api.model_deployment import EngineName
from tierwise.engines.args import FlagSyntax
from tierwise.engines.base import EngineMetrics, EngineProfile, LaunchConfig

IMAGE = "lmsysorg/sglang:v0.5.2-cu126"
PORT = 30000  # ServerArgs.port default

# Metric names (python/sglang/srt/metrics/collector.py). Gauges unless noted.
NUM_QUEUE_REQS = "sglang:num_queue_reqs"
NUM_RUNNING_REQS = "sglang:num_running_reqs"
TOKEN_USAGE = "sglang:token_usage"  # KV-cache (token pool) usage, 0-1
CACHE_HIT_RATE = "sglang:cache_hit_rate"  # RadixAttention prefix hit rate, 0-1
PROMPT_TOKENS_TOTAL = "sglang:prompt_tokens_total"  # counter
GENERATION_TOKENS_TOTAL = "sglang:generation_tokens_total"  # counter
TIME_TO_FIRST_TOKEN_SECONDS = "sglang:time_to_first_token_seconds"  # histogram

METRICS = EngineMetrics(
    waiting_requests=NUM_QUEUE_REQS,
    running_requests=NUM_RUNNING_REQS,
    kv_cache_usage=TOKEN_USAGE,
    prompt_tokens_total=PROMPT_TOKENS_TOTAL,
    generation_tokens_total=GENERATION_TOKENS_TOTAL,
    time_to_first_token_seconds=TIME_TO_FIRST_TOKEN_SECONDS,
    prefix_cache_hit_rate=CACHE_HIT_RATE,
)

# server_args.py (checked in the 0.5.2 wheel the default image ships) declares
# ``--tensor-parallel-size``/``--tp-size``, ``--data-parallel-size``/``--dp-size`` and
# ``--model-path``/``--model``. SGLang's docs write ``--tp 2``, which works only as
# argparse's unique-prefix abbreviation of ``--tp-size``; Tierwise emits the declared
# ``--tp-size`` so a future ``--tp-*`` flag cannot make its command ambiguous, and treats
# the abbreviations users write (``--tp``, ``--dp``) as the same flag.
SYNTAX = FlagSyntax(
    aliases={
        "--tp": "--tp-size",
        "--tensor-parallel-size": "--tp-size",
        "--dp": "--dp-size",
        "--data-parallel-size": "--dp-size",
        "--model": "--model-path",
    }
)

RESERVED = {
    "--model-path": "set spec.model.uri",
    "--served-model-name": "set spec.model.servedName",
    "--tp-size": "set spec.engine.tensorParallelSize (GPU limits follow it)",
    "--dp-size": "set spec.resources.gpus to a multiple of tensorParallelSize",
    "--port": f"the engine always listens on {PORT}, where the probes and Service point",
    "--host": "the engine always listens on 0.0.0.0 so probes and the Service reach it",
}


def flags(launch: LaunchConfig) -> Sequence[tuple[str, ...]]:
    out: list[tuple[str, ...]] = [
        ("--model-path", launch.model),
        ("--served-model-name", launch.served_name),
        ("--tp-size", str(launch.tensor_parallel_size)),
        ("--host", "0.0.0.0"),  # the pod IP must be reachable, not only loopback
        ("--port", str(PORT)),
        ("--enable-metrics",),
    ]
    if launch.data_parallel_size > 1:
        out.append(("--dp-size", str(launch.data_parallel_size)))
    if not launch.prefix_caching:
        out.append(("--disable-radix-cache",))
    if launch.context_length is not None:
        out.append(("--context-length", str(launch.context_length)))
    if launch.quantization is not None:
        out.append(("--quantization", launch.quantization))
    if launch.revision is not None:
        out.append(("--revision", launch.revision))
    return out


def profile() -> EngineProfile:
    return EngineProfile(
        name=EngineName.SGLANG,
        image=IMAGE,
        port=PORT,
        entrypoint=("python3", "-m", "sglang.launch_server"),
        flags=flags,
        syntax=SYNTAX,
        reserved=RESERVED,
        startup_path="/health",
        readiness_path="/health",
        liveness_path="/health_generate",
        metrics=METRICS,
    )
