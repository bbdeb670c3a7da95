"""The Prometheus source of autoscaling signals: PromQL over the HTTP API.

Why it exists: where Prometheus already scrapes the engines (a PodMonitor, or the pods'
``prometheus.io`` annotations) and dcgm-exporter, the operator can ask it instead of every
pod. Each metric is one instant query of a range selector, ``name{namespace="NS",
pod=~"a|b"}[STALE]``: the answer is a matrix of raw samples with the engine's own scrape
timestamps, so a series Prometheus stopped receiving reads stale, not as its last value.
Series are grouped by their ``pod`` label and reduced like scraped ones
(:mod:`tierwise.autoscaler.series`). dcgm-exporter's series name the workload pod in
``exported_pod`` behind a ServiceMonitor (``pod`` is the exporter itself) or in ``pod`` with
``honorLabels``; both are asked.
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any
from urllib.parse import urlencode

import aiohttp

from tierwise.autoscaler import demand as names
from tierwise.autoscaler.exposition import Sample
from tierwise.autoscaler.model import ReplicaSample
from tierwise.autoscaler.series import engine_names, gpu_by_pod, gpu_metric_names, replica_sample
from tierwise.engines import engine_for

if TYPE_CHECKING:
    from tierwise.autoscaler.signals import SourceConfig, Workload


class PrometheusError(Exception):
    """The query failed or Prometheus answered with an error."""


def selector(name: str, labels: dict[str, str], *, window_s: float) -> str:
    """``name{k="v",...}[Ns]``; values ending in ``~`` match as a regex (``k=~"..."``)."""
    parts = []
    for key, value in labels.items():
        op, text = ("=~", value[:-1]) if value.endswith("~") else ("=", value)
        escaped = text.replace("\\", "\\\\").replace('"', '\\"')
        parts.append(f'{key}{op}"{escaped}"')
    return f"{name}{{{','.join(parts)}}}[{max(1, math.ceil(window_s))}s]"


def pod_regex(pods: Sequence[str]) -> str:
    """An RE2 alternation of pod names (DNS names: only ``.`` needs quoting), as ``...~``."""
    return "|".join(p.replace(".", "[.]") for p in pods) + "~"


async def query(
    session: aiohttp.ClientSession, base_url: str, promql: str, *, timeout_s: float
) -> list[Sample]:
    """The newest sample of each series a range-selector query returns."""
    url = f"{base_url.rstrip('/')}/api/v1/query?{urlencode({'query': promql})}"
    try:
        async with session.get(url, timeout=aiohttp.ClientTimeout(total=timeout_s)) as response:
            body: Any = await response.json(content_type=None)
    except (aiohttp.ClientError, TimeoutError, ValueError) as err:
        raise PrometheusError(f"{type(err).__name__}: {err}" if str(err) else "timeout") from err
    if not isinstance(body, dict) or body.get("status") != "success":
        error = body.get("error", "bad answer") if isinstance(body, dict) else "bad answer"
        raise PrometheusError(str(error))
    return [_newest(item) for item in body["data"].get("result", []) if item.get("values")]


def _newest(item: dict[str, Any]) -> Sample:
    stamp, value = item["values"][-1]
    return Sample(labels=dict(item["metric"]), value=float(value), timestamp=float(stamp))


async def replicas(
    session: aiohttp.ClientSession, config: SourceConfig, workload: Workload, *, now: float
) -> tuple[tuple[ReplicaSample, ...], list[str]]:
    """One sample per pod of ``workload`` from Prometheus."""
    if not workload.pods or not config.prometheus_url:
        return (), []
    metrics = engine_for(workload.engine).metrics
    wanted = engine_names(metrics)
    labels = {"namespace": workload.namespace, "pod": pod_regex([p.name for p in workload.pods])}
    engine_results, (found, gpu_problems) = await asyncio.gather(
        asyncio.gather(
            *(
                _try(session, config, selector(n, labels, window_s=config.stale_after))
                for n in wanted
            )
        ),
        _gpu(session, config, workload),
    )
    problems = [r for r in engine_results if isinstance(r, str)] + gpu_problems
    by_pod: dict[str, dict[str, list[Sample]]] = {}
    for name, result in zip(wanted, engine_results, strict=True):
        for s in result if isinstance(result, list) else []:
            by_pod.setdefault(s.labels.get("pod", ""), {}).setdefault(name, []).append(s)
    gpus = gpu_by_pod(
        found,
        gpu_metric_names(config.gpu_metric),
        namespace=workload.namespace,
        now=now,
        stale_after=config.stale_after,
    )
    samples: list[ReplicaSample] = []
    for pod in workload.pods:
        sample, pod_problems = replica_sample(
            pod.name,
            by_pod.get(pod.name, {}),
            metrics=metrics,
            now=now,
            stale_after=config.stale_after,
            gpu=gpus.get(pod.name),
        )
        samples.append(sample)
        problems.extend(pod_problems)
    return tuple(samples), problems


async def _gpu(
    session: aiohttp.ClientSession, config: SourceConfig, workload: Workload
) -> tuple[dict[str, list[Sample]], list[str]]:
    """The series of every DCGM metric ``gpuMetric`` may read, and a problem per failure
    (the metrics are asked concurrently; the preference is applied per pod later)."""
    names = gpu_metric_names(config.gpu_metric)
    results = await asyncio.gather(*(_gpu_series(session, config, workload, n) for n in names))
    found = {n: r for n, r in zip(names, results, strict=True) if isinstance(r, list)}
    problems = [r for r in results if isinstance(r, str)]
    if not problems and not any(found.values()):
        problems.append(f"gpuUtilization: no {' or '.join(names)} series in Prometheus")
    return found, problems


async def _gpu_series(
    session: aiohttp.ClientSession, config: SourceConfig, workload: Workload, name: str
) -> list[Sample] | str:
    pods = pod_regex([p.name for p in workload.pods])
    window = config.stale_after
    exported = {"exported_namespace": workload.namespace, "exported_pod": pods}
    found = await _try(session, config, selector(name, exported, window_s=window))
    if isinstance(found, list) and found:
        return found
    direct = {"namespace": workload.namespace, "pod": pods}
    return await _try(session, config, selector(name, direct, window_s=window))


async def demand(
    session: aiohttp.ClientSession, config: SourceConfig, workload: Workload, *, now: float
) -> tuple[float | None, float | None, list[str]]:
    """Router demand through Prometheus (slower than scraping the routers; see the docs)."""
    labels = {
        names.NAMESPACE_LABEL: workload.namespace,
        names.MODEL_DEPLOYMENT_LABEL: workload.name,
    }
    window = config.stale_after
    pending, last = await asyncio.gather(
        _try(session, config, selector(names.PENDING_REQUESTS, labels, window_s=window)),
        _try(session, config, selector(names.LAST_REQUEST_TIMESTAMP, labels, window_s=window)),
    )
    if isinstance(pending, str):
        return None, None, [f"routerDemand: {pending}"]
    fresh = [s.value for s in pending if now - (s.timestamp or now) <= window]
    stamps = [s.value for s in last if s.value > 0] if isinstance(last, list) else []
    return sum(fresh), (max(stamps) if stamps else None), []


async def _try(
    session: aiohttp.ClientSession, config: SourceConfig, promql: str
) -> list[Sample] | str:
    assert config.prometheus_url is not None
    try:
        return await query(session, config.prometheus_url, promql, timeout_s=config.timeout)
    except PrometheusError as err:
        return f"prometheus query {promql!r}: {err}"
