"""The autoscaler's and the router's metric readers against a real vLLM's ``/metrics``.

Sixteen concurrent requests on a server with four batch slots build a real queue: the
autoscaler's signal collector must see it (queue depth, running requests, KV-cache usage,
prefix-cache hit rate), and so must the router's load watcher. The simulator's vLLM
metrics must keep the real names, types, labels and histogram buckets, and the engine
profile's names must exist on the real server: these tests fail the day either drifts.
"""

from __future__ import annotations

import asyncio
import dataclasses
from typing import Any

import aiohttp
import openai
import pytest
from prometheus_client.parser import text_string_to_metric_families
from real_engine_support import BLOCK_SIZE, MAX_NUM_SEQS, SERVED_NAME, Served, metrics_text, sample

from tierwise.api.model_deployment import EngineName
from tierwise.autoscaler.model import ReplicaSample
from tierwise.autoscaler.signals import PodTarget, SourceConfig, Workload, collect
from tierwise.engines import vllm as vllm_profile
from tierwise.router.loadwatch import parse_engine_load
from tierwise.sim.app import serve_engine
from tierwise.sim.config import EngineKind, SimConfig
from tierwise.sim.latency import PROFILES, Profile

pytestmark = pytest.mark.real_engine

CONCURRENT = 16
# Metrics the issue names, beyond the simulator's: pinned so a vLLM upgrade that renames
# them fails here, not in a cluster.
ALSO_REAL = {
    "vllm:prompt_tokens_cached": "counter",
    "vllm:request_queue_time_seconds": "histogram",
    "vllm:num_preemptions": "counter",
}


def workload(servers: list[Served]) -> Workload:
    pods = tuple(PodTarget(f"pod-{i}", s.url + "/metrics") for i, s in enumerate(servers))
    return Workload(namespace="default", name=SERVED_NAME, engine=EngineName.VLLM, pods=pods)


async def read_pod(http: aiohttp.ClientSession, server: Served) -> ReplicaSample:
    signals = await collect(http, SourceConfig(), workload([server]))
    (sample,) = signals.replicas
    return sample


async def flood(server: Served, prompt: str) -> list[Any]:
    """``CONCURRENT`` greedy completions of 96 tokens each, all sent at once."""
    async with openai.AsyncOpenAI(
        base_url=server.url + "/v1", api_key="unused", max_retries=0, timeout=300
    ) as client:
        return await asyncio.gather(
            *(
                client.completions.create(
                    model=SERVED_NAME,
                    prompt=f"{prompt} {i}",
                    max_tokens=96,
                    temperature=0,
                    extra_body={"ignore_eos": True},
                )
                for i in range(CONCURRENT)
            )
        )


async def test_collector_sees_the_real_queue_running_batch_and_kv_cache(
    vllm_servers: list[Served],
) -> None:
    server = vllm_servers[1]
    prompt = "system prompt shared by every request of the flood " * 3
    peak: list[ReplicaSample] = []
    router_queue: list[float] = []
    async with aiohttp.ClientSession() as http:
        before = await read_pod(http, server)
        hits_before = sample(server.url, "vllm:prefix_cache_hits_total")
        task = asyncio.create_task(flood(server, prompt))
        while not task.done():
            peak.append(await read_pod(http, server))
            async with http.get(server.url + "/metrics") as response:
                router_queue.append(parse_engine_load(await response.text()).queue_depth or 0.0)
            await asyncio.sleep(0.05)
        answers = await task
        after = await read_pod(http, server)
    # The shared prompt is cached after the first wave, so later waves hit it.
    assert (
        sample(server.url, "vllm:prefix_cache_hits_total") - hits_before
        >= CONCURRENT // 2 * BLOCK_SIZE
    )
    assert all(a.usage.completion_tokens == 96 for a in answers)
    deepest = max(peak, key=lambda s: s.queue_depth or 0.0)
    assert (deepest.queue_depth or 0) >= CONCURRENT - MAX_NUM_SEQS - 4
    assert max(s.running_requests or 0 for s in peak) == MAX_NUM_SEQS
    assert max(s.kv_cache_usage or 0 for s in peak) > 0
    assert max(router_queue) >= CONCURRENT - MAX_NUM_SEQS - 4
    assert (after.queue_depth, after.running_requests, after.kv_cache_usage) == (0, 0, 0)
    sent = sum(a.usage.prompt_tokens for a in answers)
    assert after.prompt_tokens_total == (before.prompt_tokens_total or 0) + sent
    # The collector's hit rate is vLLM's own token counters' ratio.
    hits, queries = (
        sample(server.url, f"vllm:prefix_cache_{n}_total") for n in ("hits", "queries")
    )
    assert after.prefix_cache_hit_rate == pytest.approx(hits / queries)


async def test_collector_reads_every_replica_with_no_problems(vllm_servers: list[Served]) -> None:
    async with aiohttp.ClientSession() as http:
        signals = await collect(http, SourceConfig(), workload(vllm_servers))
    assert [r.pod for r in signals.replicas] == ["pod-0", "pod-1"]
    for replica in signals.replicas:
        assert replica.queue_depth is not None
        assert replica.running_requests is not None
        assert replica.kv_cache_usage is not None
        assert 0 <= replica.kv_cache_usage <= 1
        assert replica.prompt_tokens_total is not None
    assert not [p for p in signals.problems if p.startswith("pod-")]


def describe(text: str) -> dict[str, tuple[str, frozenset[str], tuple[float, ...]]]:
    """family -> (type, label names, histogram bucket bounds) of a /metrics text."""
    out = {}
    for family in text_string_to_metric_families(text):
        labels = frozenset(k for s in family.samples for k in s.labels if k != "le")
        buckets = sorted({float(s.labels["le"]) for s in family.samples if "le" in s.labels})
        out[family.name] = (family.type, labels, tuple(buckets))
    return out


async def simulator_metrics() -> str:
    config = SimConfig(engine=EngineKind.VLLM, model=SERVED_NAME, latency=PROFILES[Profile.ZERO])
    async with serve_engine(config) as url, aiohttp.ClientSession() as http:
        body = {"model": SERVED_NAME, "prompt": "hello", "max_tokens": 2}
        async with http.post(url + "/v1/completions", json=body) as response:
            assert response.status == 200
        async with http.get(url + "/metrics") as response:
            return await response.text()


async def test_simulator_metrics_match_the_real_names_types_labels_and_buckets(
    vllm_servers: list[Served],
) -> None:
    real = describe(metrics_text(vllm_servers[0].url))
    sim = describe(await simulator_metrics())
    assert sim, "the simulator exposed nothing"
    for name, (kind, labels, buckets) in sim.items():
        assert name in real, f"{name}: the simulator has it, real vLLM does not"
        assert real[name] == (kind, labels, buckets), name


def test_the_engine_profile_names_exist_on_real_vllm(vllm_servers: list[Served]) -> None:
    families = describe(metrics_text(vllm_servers[0].url))
    samples = {
        s.name
        for family in text_string_to_metric_families(metrics_text(vllm_servers[0].url))
        for s in family.samples
    }
    names = dataclasses.asdict(vllm_profile.METRICS)
    former = names.pop("kv_cache_usage_former")  # names older vLLM versions served
    for field, name in names.items():
        if name is not None:
            assert name in samples or f"{name}_bucket" in samples, (field, name)
    assert not set(former) & samples, "a former name is served again: not former"
    for name, kind in ALSO_REAL.items():
        assert families[name][0] == kind, name


def test_router_load_watcher_reads_an_idle_real_engine(vllm_servers: list[Served]) -> None:
    load = parse_engine_load(metrics_text(vllm_servers[0].url))
    assert load.queue_depth == 0
    assert load.kv_cache_usage is not None
