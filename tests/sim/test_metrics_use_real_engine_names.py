"""``/metrics`` parsed with prometheus_client's parser: real names, types and labels."""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractAsyncContextManager

import aiohttp
import pytest
from prometheus_client.parser import text_string_to_metric_families

from tierwise.sim.config import EngineKind, SimConfig

Serve = Callable[[SimConfig], AbstractAsyncContextManager[str]]

EXPECTED = {
    EngineKind.VLLM: {
        "vllm:num_requests_waiting": "gauge",
        "vllm:num_requests_running": "gauge",
        "vllm:kv_cache_usage_perc": "gauge",
        "vllm:prefix_cache_queries": "counter",
        "vllm:prefix_cache_hits": "counter",
        "vllm:prompt_tokens": "counter",
        "vllm:generation_tokens": "counter",
        "vllm:time_to_first_token_seconds": "histogram",
    },
    EngineKind.SGLANG: {
        "sglang:num_running_reqs": "gauge",
        "sglang:num_queue_reqs": "gauge",
        "sglang:token_usage": "gauge",
        "sglang:cache_hit_rate": "gauge",
        "sglang:prompt_tokens": "counter",
        "sglang:generation_tokens": "counter",
        "sglang:time_to_first_token_seconds": "histogram",
    },
}
LABELS = {
    "vllm:num_requests_waiting": {"model_name": "sim-model", "engine": "0"},
    "sglang:num_queue_reqs": {
        "model_name": "sim-model",
        "engine_type": "unified",
        "tp_rank": "0",
        "pp_rank": "0",
    },
    "sglang:prompt_tokens_total": {"model_name": "sim-model", "engine_type": "unified"},
}


async def scrape(http: aiohttp.ClientSession, url: str) -> dict[str, tuple[str, dict[str, float]]]:
    """family name -> (type, {sample name: value}) plus label sets in ``LABELS``."""
    async with http.get(url + "/metrics") as response:
        assert response.status == 200
        assert response.headers["Content-Type"].startswith("text/plain")
        text = await response.text()
    families = {}
    for family in text_string_to_metric_families(text):
        samples = {}
        for sample in family.samples:
            if sample.name in LABELS:
                assert sample.labels == LABELS[sample.name]
            samples[sample.name] = sample.value
        families[family.name] = (family.type, samples)
    return families


@pytest.mark.parametrize("engine", list(EngineKind))
async def test_metrics_have_the_engine_names_and_types(
    engine: EngineKind, serve: Serve, make_config: Callable[..., SimConfig]
) -> None:
    async with serve(make_config(engine)) as url, aiohttp.ClientSession() as http:
        body = {"model": "sim-model", "prompt": "hello " * 40, "max_tokens": 4}
        async with http.post(url + "/v1/completions", json=body) as response:
            assert response.status == 200
        families = await scrape(http, url)
    for name, kind in EXPECTED[engine].items():
        assert families[name][0] == kind, name
    prefix = engine.value
    prompt_total = families[f"{prefix}:prompt_tokens"][1][f"{prefix}:prompt_tokens_total"]
    assert prompt_total == 80
    generated = families[f"{prefix}:generation_tokens"][1][f"{prefix}:generation_tokens_total"]
    assert generated == 4
    ttft = families[f"{prefix}:time_to_first_token_seconds"][1]
    assert ttft[f"{prefix}:time_to_first_token_seconds_count"] == 1


async def test_vllm_prefix_cache_counters_count_tokens(
    serve: Serve, make_config: Callable[..., SimConfig]
) -> None:
    async with serve(make_config()) as url, aiohttp.ClientSession() as http:
        body = {"model": "sim-model", "prompt": "word " * 64, "max_tokens": 1}
        for _ in range(2):
            async with http.post(url + "/v1/completions", json=body) as response:
                assert response.status == 200
        families = await scrape(http, url)
    queries = families["vllm:prefix_cache_queries"][1]["vllm:prefix_cache_queries_total"]
    hits = families["vllm:prefix_cache_hits"][1]["vllm:prefix_cache_hits_total"]
    assert queries == 128
    assert hits == 48  # 63 reusable tokens (the last is recomputed) -> 3 full 16-token blocks
