"""Bodies of the info endpoints (``/v1/models``, SGLang's server and model info).

Why it exists: peers probe these before routing. sglang-router reads
``/get_server_info`` and ``/get_model_info`` (or their newer unprefixed aliases) at start,
and may load a tokenizer from the reported ``model_path``, so the simulator reports a real
local folder holding a minimal ``config.json``.
"""

from __future__ import annotations

import time
from typing import Any

import orjson

from tierwise.sim.config import SimConfig

_STARTED = int(time.time())


def ensure_model_dir(config: SimConfig) -> None:
    """Create the reported model folder with a minimal ``config.json`` if it is missing."""
    folder = config.resolved_model_path()
    folder.mkdir(parents=True, exist_ok=True)
    target = folder / "config.json"
    if not target.exists():
        target.write_bytes(orjson.dumps(_hf_config(config), option=orjson.OPT_INDENT_2))


def _hf_config(config: SimConfig) -> dict[str, Any]:
    return {
        "architectures": ["LlamaForCausalLM"],
        "model_type": "llama",
        "max_position_embeddings": config.context_length,
        "tierwise_simulated": True,
    }


def models(config: SimConfig) -> dict[str, Any]:
    """``GET /v1/models``."""
    card = {
        "id": config.model,
        "object": "model",
        "created": _STARTED,
        "owned_by": config.engine.value,
        "root": str(config.resolved_model_path()),
        "parent": None,
        "max_model_len": config.context_length,
        "permission": [],
    }
    return {"object": "list", "data": [card]}


def model_info(config: SimConfig) -> dict[str, Any]:
    """SGLang's ``/get_model_info`` and ``/model_info``."""
    path = str(config.resolved_model_path())
    return {
        "model_path": path,
        "tokenizer_path": path,
        "is_generation": True,
        "preferred_sampling_params": None,
        "weight_version": "default",
        "has_image_understanding": False,
        "has_audio_understanding": False,
        "model_type": "llama",
        "architectures": ["LlamaForCausalLM"],
    }


def server_info(config: SimConfig, *, running: int, waiting: int) -> dict[str, Any]:
    """SGLang's ``/get_server_info`` and ``/server_info``: server args plus live state."""
    path = str(config.resolved_model_path())
    latency = config.latency
    return {
        "model_path": path,
        "tokenizer_path": path,
        "served_model_name": config.model,
        "context_length": config.context_length,
        "tp_size": 1,
        "dp_size": 1,
        "page_size": config.block_size,
        "max_running_requests": latency.max_running,
        "max_queued_requests": latency.max_queue,
        "max_total_num_tokens": latency.kv_capacity_tokens,
        "disable_radix_cache": config.cache_capacity_blocks == 0,
        "random_seed": config.seed,
        "enable_metrics": True,
        "version": "tierwise-sim",
        "simulated_engine": config.engine.value,
        "internal_states": [{"num_running_reqs": running, "num_queue_reqs": waiting}],
    }
