"""Metric names: each profile points at its module's constants, the names follow the
engines' conventions, and the simulator (which mirrors the real engines' /metrics) exposes
every one of them."""

from __future__ import annotations

import dataclasses

import pytest

from tierwise.api.model_deployment import EngineName
from tierwise.engines import engine_for, sglang, vllm


@pytest.mark.parametrize("engine", list(EngineName))
def test_every_metric_name_is_namespaced_by_its_engine(engine: EngineName) -> None:
    metrics = dataclasses.asdict(engine_for(engine).metrics)
    former = metrics.pop("kv_cache_usage_former")
    names = [n for n in metrics.values() if n is not None]
    assert names
    assert all(n.startswith(f"{engine.value}:") for n in [*names, *former])
    for field, name in metrics.items():
        if name is not None and field.endswith("_total"):
            assert name.endswith("_total")


def test_vllm_reports_prefix_cache_as_counters_and_sglang_as_a_rate() -> None:
    assert vllm.METRICS.prefix_cache_hits_total == vllm.PREFIX_CACHE_HITS_TOTAL
    assert vllm.METRICS.prefix_cache_queries_total == vllm.PREFIX_CACHE_QUERIES_TOTAL
    assert vllm.METRICS.prefix_cache_hit_rate is None
    assert sglang.METRICS.prefix_cache_hit_rate == sglang.CACHE_HIT_RATE
    assert sglang.METRICS.prefix_cache_hits_total is None


@pytest.mark.parametrize("engine", list(EngineName))
def test_the_simulator_exposes_every_name(engine: EngineName) -> None:
    sim_metrics = pytest.importorskip("tierwise.sim.metrics")
    sim_config = pytest.importorskip("tierwise.sim.config")
    from prometheus_client import generate_latest

    config = sim_config.SimConfig(engine=sim_config.EngineKind(engine.value), model="m")
    exposed = generate_latest(sim_metrics.create_metrics(config).registry).decode()
    sample_names = {
        line.split("{")[0].split(" ")[0]
        for line in exposed.splitlines()
        if line and not line.startswith("#")
    }
    current = dataclasses.asdict(engine_for(engine).metrics)
    current.pop("kv_cache_usage_former")  # older engine versions' names: not served today
    for name in current.values():
        if name is None:
            continue
        assert name in sample_names or f"{name}_bucket" in sample_names, name
