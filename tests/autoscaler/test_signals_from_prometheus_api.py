"""The Prometheus source: one range-selector query per metric, staleness by sample time."""

from __future__ import annotations

import json
import re

import aiohttp
import pytest
from aiohttp import web
from metrics_server import serve

from tierwise.api.model_deployment import EngineName, GPUMetric, MetricsSource
from tierwise.autoscaler.prometheus import pod_regex, selector
from tierwise.autoscaler.signals import PodTarget, SourceConfig, Workload, collect

NOW = 1_700_000_000.0


def matrix(*series: tuple[dict[str, str], float, float]) -> dict[str, object]:
    result = [
        {"metric": labels, "values": [[at - 15, "0"], [at, str(v)]]} for labels, v, at in series
    ]
    return {"status": "success", "data": {"resultType": "matrix", "result": result}}


class FakePrometheus:
    """Answers by metric name; records every query."""

    def __init__(self, answers: dict[str, dict[str, object]]) -> None:
        self.answers = answers
        self.queries: list[str] = []

    def __call__(self, request: web.Request) -> web.Response:
        query = request.query["query"]
        self.queries.append(query)
        name = query.split("{", 1)[0]
        if "exported_pod" in query:
            name += ":exported"
        body = self.answers.get(name, matrix())
        return web.Response(text=json.dumps(body), content_type="application/json")


WL = Workload(
    namespace="ns",
    name="qwen",
    engine=EngineName.VLLM,
    pods=(PodTarget("qwen-a", "unused"), PodTarget("qwen-b.x", "unused")),
)


async def test_values_per_pod_and_stale_series_missing() -> None:
    pod_a = {"pod": "qwen-a", "namespace": "ns", "engine": "0"}
    pod_b = {"pod": "qwen-b.x", "namespace": "ns", "engine": "0"}
    fake = FakePrometheus(
        {
            "vllm:num_requests_waiting": matrix((pod_a, 3, NOW - 5), (pod_b, 9, NOW - 300)),
            "vllm:num_requests_running": matrix((pod_a, 1, NOW - 5), (pod_b, 2, NOW - 5)),
            "vllm:kv_cache_usage_perc": matrix((pod_a, 0.5, NOW - 5)),
            "DCGM_FI_DEV_GPU_UTIL:exported": matrix(
                ({"exported_pod": "qwen-a", "exported_namespace": "ns", "pod": "dcgm-1"}, 80, NOW)
            ),
            "tierwise_router_pending_requests": matrix(
                ({"namespace": "ns", "model_deployment": "qwen"}, 4, NOW - 2)
            ),
        }
    )
    async with serve({"/api/v1/query": fake}) as base, aiohttp.ClientSession() as session:
        metrics = MetricsSource(source="prometheus", prometheus_url=base, stale_after="60s")
        config = SourceConfig.from_spec(metrics, gpu_metric=GPUMetric.GPU_UTIL)
        signals = await collect(session, config, WL, now=NOW)
    a, b = signals.replicas
    assert (a.queue_depth, a.running_requests, a.kv_cache_usage, a.gpu_utilization) == (
        3.0,
        1.0,
        0.5,
        80.0,
    )
    assert (b.queue_depth, b.running_requests, b.kv_cache_usage, b.gpu_utilization) == (
        None,
        2.0,
        None,
        None,
    )
    assert signals.demand == 4.0
    assert any("qwen-b.x" in p and "stale" in p for p in signals.problems)
    waiting = next(q for q in fake.queries if q.startswith("vllm:num_requests_waiting"))
    assert waiting == 'vllm:num_requests_waiting{namespace="ns",pod=~"qwen-a|qwen-b[.]x"}[60s]'


async def test_prometheus_errors_are_reported_not_zeroed() -> None:
    def failing(request: web.Request) -> web.Response:
        return web.json_response({"status": "error", "error": "parse error"}, status=400)

    async with serve({"/api/v1/query": failing}) as base, aiohttp.ClientSession() as session:
        metrics = MetricsSource(source="prometheus", prometheus_url=base)
        signals = await collect(session, SourceConfig.from_spec(metrics), WL, now=NOW)
    assert all(r.queue_depth is None and r.kv_cache_usage is None for r in signals.replicas)
    assert signals.demand is None
    assert any("parse error" in p for p in signals.problems)


@pytest.mark.parametrize(
    ("labels", "want"),
    [
        ({}, "m{}[60s]"),
        ({"a": "x"}, 'm{a="x"}[60s]'),
        ({"a": 'q"uo\\te'}, 'm{a="q\\"uo\\\\te"}[60s]'),
        ({"pod": pod_regex(["p-1", "p.2", "ünï"])}, 'm{pod=~"p-1|p[.]2|ünï"}[60s]'),
    ],
)
def test_selectors_quote_label_values(labels: dict[str, str], want: str) -> None:
    assert selector("m", labels, window_s=59.2) == want
    assert re.fullmatch(r"m\{.*\}\[60s\]", want)


async def test_auto_prefers_sm_activity_and_reads_ratios_as_percent() -> None:
    pod_a = {"exported_pod": "qwen-a", "exported_namespace": "ns", "pod": "dcgm-1"}
    pod_b = {"exported_pod": "qwen-b.x", "exported_namespace": "ns", "pod": "dcgm-2"}
    fake = FakePrometheus(
        {
            "DCGM_FI_PROF_SM_ACTIVE:exported": matrix((pod_a, 0.6, NOW)),
            "DCGM_FI_PROF_PIPE_TENSOR_ACTIVE:exported": matrix(
                (pod_a, 0.1, NOW), (pod_b, 0.3, NOW)
            ),
            "DCGM_FI_DEV_GPU_UTIL:exported": matrix((pod_a, 100, NOW)),
        }
    )
    async with serve({"/api/v1/query": fake}) as base, aiohttp.ClientSession() as session:
        metrics = MetricsSource(source="prometheus", prometheus_url=base)
        signals = await collect(session, SourceConfig.from_spec(metrics), WL, now=NOW)
    a, b = signals.replicas
    assert (a.gpu_utilization, a.gpu_metric) == (60.0, "DCGM_FI_PROF_SM_ACTIVE")
    assert (b.gpu_utilization, b.gpu_metric) == (30.0, "DCGM_FI_PROF_PIPE_TENSOR_ACTIVE")
    assert not any(q.startswith("DCGM_FI_DEV_GPU_UTIL") for q in fake.queries)
