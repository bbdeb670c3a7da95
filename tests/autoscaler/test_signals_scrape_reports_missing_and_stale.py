"""Scraping engine, DCGM and router endpoints: values read, failures named, nothing zeroed."""

from __future__ import annotations

import aiohttp
import pytest
from metrics_server import Route, serve
from prometheus_client import generate_latest

from tierwise.api.model_deployment import EngineName, GPUMetric, MetricsSource
from tierwise.autoscaler.model import Signal
from tierwise.autoscaler.signals import PodTarget, SourceConfig, Workload, collect
from tierwise.sim.metrics import SglangMetrics, VllmMetrics

NOW = 1_700_000_000.0


def vllm_body(waiting: int, running: int, kv_used: int, *, hits: int = 0, queries: int = 0) -> str:
    metrics = VllmMetrics("qwen")
    metrics.set_load(
        waiting=waiting, running=running, kv_used_tokens=kv_used, kv_capacity_tokens=100
    )
    metrics.record_prefill(prompt_tokens=queries, cached_tokens=hits)
    return generate_latest(metrics.registry).decode()


def sglang_body(waiting: int, running: int, kv_used: int) -> str:
    metrics = SglangMetrics("qwen")
    metrics.set_load(
        waiting=waiting, running=running, kv_used_tokens=kv_used, kv_capacity_tokens=100
    )
    metrics.record_prefill(prompt_tokens=10, cached_tokens=4)
    return generate_latest(metrics.registry).decode()


def dcgm_body(*rows: tuple[str, str, float], metric: str = "DCGM_FI_DEV_GPU_UTIL") -> str:
    lines = [f"# TYPE {metric} gauge"]
    for gpu, (pod, ns, value) in enumerate(rows):
        lines.append(
            f'{metric}{{gpu="{gpu}",UUID="GPU-{gpu}",pod="{pod}",namespace="{ns}",'
            f'container="engine"}} {value}'
        )
    return "\n".join(lines) + "\n"


def workload(base: str, *pods: str, engine: EngineName = EngineName.VLLM) -> Workload:
    targets = tuple(PodTarget(p, f"{base}/{p}/metrics", node="node-1") for p in pods)
    return Workload(namespace="ns", name="qwen", engine=engine, pods=targets)


async def test_vllm_pods_are_read_and_failures_reported_per_pod() -> None:
    routes = {
        "/ok/metrics": Route(vllm_body(3, 2, 50, hits=30, queries=120)),
        "/err/metrics": Route(status=500),
        "/slow/metrics": Route(vllm_body(1, 1, 1), delay=1.0),
        "/bad/metrics": Route("vllm:num_requests_waiting{oops 1\n"),
    }
    async with serve(routes) as base, aiohttp.ClientSession() as session:
        config = SourceConfig(timeout=0.3)
        signals = await collect(
            session, config, workload(base, "ok", "err", "slow", "bad"), now=NOW
        )
    ok, err, slow, bad = signals.replicas
    assert (ok.queue_depth, ok.running_requests, ok.kv_cache_usage) == (3.0, 2.0, 0.5)
    assert ok.prefix_cache_hit_rate == pytest.approx(0.25)
    assert ok.prompt_tokens_total == 120.0
    for broken in (err, slow, bad):
        assert broken.queue_depth is None
        assert broken.kv_cache_usage is None
    problems = "\n".join(signals.problems)
    assert "err: HTTP 500" in problems
    assert "slow: timeout after 0.3s" in problems
    assert "bad: ExpositionError" in problems
    assert Signal.QUEUE_DEPTH in signals.missing
    assert signals.known(Signal.QUEUE_DEPTH) == [3.0]


async def test_sglang_names_are_read() -> None:
    routes = {"/s/metrics": Route(sglang_body(4, 7, 25))}
    async with serve(routes) as base, aiohttp.ClientSession() as session:
        wl = workload(base, "s", engine=EngineName.SGLANG)
        signals = await collect(session, SourceConfig(), wl, now=NOW)
    (sample,) = signals.replicas
    assert (sample.queue_depth, sample.running_requests, sample.kv_cache_usage) == (4.0, 7.0, 0.25)
    assert sample.prefix_cache_hit_rate == pytest.approx(0.4)


@pytest.mark.parametrize(
    ("age", "fresh"), [(5.0, True), (59.0, True), (61.0, False), (3600.0, False)]
)
async def test_timestamped_values_older_than_stale_after_are_missing(
    age: float, fresh: bool
) -> None:
    stamp = int((NOW - age) * 1000)
    body = (
        f'vllm:num_requests_waiting{{engine="0"}} 2 {stamp}\n'
        f'vllm:num_requests_running{{engine="0"}} 1 {stamp}\n'
        f'vllm:kv_cache_usage_perc{{engine="0"}} 0.5\n'
    )
    async with serve({"/p/metrics": Route(body)}) as base, aiohttp.ClientSession() as session:
        config = SourceConfig.from_spec(MetricsSource(stale_after="60s"))
        signals = await collect(session, config, workload(base, "p"), now=NOW)
    (sample,) = signals.replicas
    assert sample.queue_depth == (2.0 if fresh else None)
    assert sample.kv_cache_usage == 0.5
    assert any("stale" in p for p in signals.problems) is not fresh


async def test_gpu_utilisation_from_the_nodes_dcgm_exporter() -> None:
    dcgm = dcgm_body(("a", "ns", 100.0), ("a", "ns", 50.0), ("a", "other-ns", 0.0), ("x", "ns", 5))
    routes = {"/a/metrics": Route(vllm_body(0, 0, 0)), "/b/metrics": Route(vllm_body(0, 0, 0))}
    routes["/dcgm"] = Route(dcgm)
    async with serve(routes) as base, aiohttp.ClientSession() as session:
        config = SourceConfig(dcgm_urls={"node-1": f"{base}/dcgm"}, gpu_metric=GPUMetric.GPU_UTIL)
        signals = await collect(session, config, workload(base, "a", "b"), now=NOW)
    a, b = signals.replicas
    assert (a.gpu_utilization, a.gpu_metric) == (75.0, "DCGM_FI_DEV_GPU_UTIL")
    assert b.gpu_utilization is None
    assert "b: no DCGM_FI_DEV_GPU_UTIL" in signals.problems


async def test_auto_reads_sm_activity_then_tensor_activity_as_percent_never_gpu_util() -> None:
    dcgm = (
        dcgm_body(("a", "ns", 0.4), ("a", "ns", 0.2), metric="DCGM_FI_PROF_SM_ACTIVE")
        + dcgm_body(("a", "ns", 0.9), ("b", "ns", 0.25), metric="DCGM_FI_PROF_PIPE_TENSOR_ACTIVE")
        + dcgm_body(("a", "ns", 100), ("b", "ns", 100), ("c", "ns", 100))
    )
    pods = ("a", "b", "c")
    routes = {f"/{p}/metrics": Route(vllm_body(0, 1, 10)) for p in pods}
    routes["/dcgm"] = Route(dcgm)
    async with serve(routes) as base, aiohttp.ClientSession() as session:
        config = SourceConfig(dcgm_shared_urls=(f"{base}/dcgm",))
        signals = await collect(session, config, workload(base, *pods), now=NOW)
    a, b, c = signals.replicas
    assert (a.gpu_utilization, a.gpu_metric) == (pytest.approx(30.0), "DCGM_FI_PROF_SM_ACTIVE")
    assert (b.gpu_utilization, b.gpu_metric) == (25.0, "DCGM_FI_PROF_PIPE_TENSOR_ACTIVE")
    assert c.gpu_utilization is None
    assert "c: no DCGM_FI_PROF_SM_ACTIVE or DCGM_FI_PROF_PIPE_TENSOR_ACTIVE" in signals.problems


@pytest.mark.parametrize(
    ("metric", "want"),
    [(GPUMetric.SM_ACTIVE, 40.0), (GPUMetric.TENSOR_ACTIVE, 90.0), (GPUMetric.GPU_UTIL, 100.0)],
)
async def test_a_named_gpu_metric_is_the_only_one_read(metric: GPUMetric, want: float) -> None:
    dcgm = (
        dcgm_body(("a", "ns", 0.4), metric="DCGM_FI_PROF_SM_ACTIVE")
        + dcgm_body(("a", "ns", 0.9), metric="DCGM_FI_PROF_PIPE_TENSOR_ACTIVE")
        + dcgm_body(("a", "ns", 100))
    )
    routes = {"/a/metrics": Route(vllm_body(0, 1, 10)), "/dcgm": Route(dcgm)}
    async with serve(routes) as base, aiohttp.ClientSession() as session:
        config = SourceConfig(dcgm_urls={"node-1": f"{base}/dcgm"}, gpu_metric=metric)
        signals = await collect(session, config, workload(base, "a"), now=NOW)
    assert signals.replicas[0].gpu_utilization == pytest.approx(want)


async def test_an_exporter_for_another_node_is_not_asked() -> None:
    routes = {"/a/metrics": Route(vllm_body(0, 1, 10)), "/dcgm": Route(status=500)}
    async with serve(routes) as base, aiohttp.ClientSession() as session:
        config = SourceConfig(dcgm_urls={"node-2": f"{base}/dcgm"})
        signals = await collect(session, config, workload(base, "a"), now=NOW)
    assert "gpuUtilization: no dcgm-exporter configured" in signals.problems


async def test_without_dcgm_gpu_utilisation_is_missing_not_zero() -> None:
    routes = {"/a/metrics": Route(vllm_body(0, 0, 0))}
    async with serve(routes) as base, aiohttp.ClientSession() as session:
        signals = await collect(session, SourceConfig(), workload(base, "a"), now=NOW)
    assert signals.replicas[0].gpu_utilization is None
    assert Signal.GPU_UTILIZATION in signals.missing


def router_body(*rows: tuple[str, str, float]) -> str:
    lines = [
        f'tierwise_router_pending_requests{{namespace="{ns}",model_deployment="{md}"}} {v}'
        for ns, md, v in rows
    ]
    lines.append(
        'tierwise_router_last_request_timestamp_seconds{namespace="ns",model_deployment="qwen"} '
        f"{NOW - 30}"
    )
    return "\n".join(lines) + "\n"


@pytest.mark.parametrize(
    ("routers", "demand"),
    [
        ([Route(router_body(("ns", "qwen", 2), ("ns", "other", 9), ("ns2", "qwen", 5)))], 2.0),
        ([Route(router_body(("ns", "qwen", 2))), Route(router_body(("ns", "qwen", 1)))], 3.0),
        ([Route(router_body(("ns", "qwen", 2))), Route(status=503)], 2.0),  # enough to wake
        ([Route(router_body(("ns", "qwen", 0))), Route(status=503)], None),  # might hide some
        ([Route(router_body(("ns", "other", 4)))], 0.0),  # reachable, holds none for qwen
        ([], None),
    ],
)
async def test_router_demand_is_summed_and_unknown_when_unreadable(
    routers: list[Route], demand: float | None
) -> None:
    routes = {f"/router-{i}": r for i, r in enumerate(routers)}
    async with serve(routes) as base, aiohttp.ClientSession() as session:
        config = SourceConfig(router_urls=tuple(f"{base}{path}" for path in routes))
        signals = await collect(session, config, Workload("ns", "qwen", EngineName.VLLM), now=NOW)
    assert signals.demand == demand
    assert (Signal.ROUTER_DEMAND in signals.missing) is (demand is None)
    if any(r.status == 200 for r in routers):
        assert signals.last_request_at == NOW - 30
