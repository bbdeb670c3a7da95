"""Collect a ModelDeployment's autoscaling signals: the I/O edge of the autoscaler.

Why it exists: the policy needs per-replica queue depth, running requests, KV-cache usage and
GPU utilisation, and the router's demand, read the same way whether or not the cluster runs
Prometheus. Two sources:

* ``scrape`` (default): GET each ready engine pod's ``/metrics`` concurrently (one shared
  aiohttp session, a short timeout per request), the dcgm-exporters the operator was given
  (``--dcgm-url``: one per node, or shared ones read for every pod), and the router pods'
  ``/metrics`` for demand. Works with no Prometheus at all.
* ``prometheus``: instant queries of ``metric{namespace,pod=~...}[staleAfter]`` against
  ``/api/v1/query``; a range selector returns the raw samples with their own timestamps, so
  staleness is judged on when the engine reported, not when Prometheus was asked.

Whatever fails (timeout, refused, malformed, stale, absent) becomes ``None`` plus a line in
:attr:`Signals.problems`; it is never read as zero. Metric names come from
:mod:`tierwise.engines` (the engine profiles), DCGM's from dcgm-exporter.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import aiohttp

from tierwise.api.common import parse_duration
from tierwise.api.model_deployment import EngineName, GPUMetric, MetricsSource, MetricsSourceType
from tierwise.autoscaler import demand, exposition, prometheus
from tierwise.autoscaler.exposition import Sample
from tierwise.autoscaler.model import ReplicaSample, Signals
from tierwise.autoscaler.series import engine_names, gpu_by_pod, gpu_metric_names, replica_sample
from tierwise.engines import engine_for

DEFAULT_TIMEOUT_S = 2.0


@dataclass(frozen=True, slots=True)
class PodTarget:
    """A ready engine pod: its name, its metrics URL and the node it runs on."""

    name: str
    metrics_url: str
    node: str | None = None


@dataclass(frozen=True, slots=True)
class Workload:
    """What to read: one ModelDeployment's ready pods."""

    namespace: str
    name: str
    engine: EngineName
    pods: tuple[PodTarget, ...] = ()


@dataclass(frozen=True, slots=True)
class SourceConfig:
    """Where signals come from (``spec.autoscaling.metrics`` plus operator settings)."""

    source: MetricsSourceType = MetricsSourceType.SCRAPE
    prometheus_url: str | None = None
    stale_after: float = 60.0
    timeout: float = DEFAULT_TIMEOUT_S
    router_urls: tuple[str, ...] = ()
    """The router pods' /metrics URLs (the demand signal); the operator finds them."""
    dcgm_urls: Mapping[str, str] = field(default_factory=dict)
    """Node name -> dcgm-exporter /metrics URL, for the GPU signal in scrape mode."""
    dcgm_shared_urls: tuple[str, ...] = ()
    """dcgm-exporter /metrics URLs read whatever node the pods run on (series are matched
    to pods by their labels)."""
    gpu_metric: GPUMetric = GPUMetric.AUTO
    """Which DCGM series is the GPU signal (``spec.autoscaling.gpuMetric``)."""

    @classmethod
    def from_spec(
        cls,
        metrics: MetricsSource,
        *,
        router_urls: Sequence[str] = (),
        dcgm_urls: Mapping[str, str] | None = None,
        dcgm_shared_urls: Sequence[str] = (),
        gpu_metric: GPUMetric = GPUMetric.AUTO,
        timeout: float = DEFAULT_TIMEOUT_S,
    ) -> SourceConfig:
        return cls(
            source=metrics.source,
            prometheus_url=metrics.prometheus_url,
            stale_after=parse_duration(metrics.stale_after),
            timeout=timeout,
            router_urls=tuple(router_urls),
            dcgm_urls=dict(dcgm_urls or {}),
            dcgm_shared_urls=tuple(dcgm_shared_urls),
            gpu_metric=gpu_metric,
        )


async def collect(
    session: aiohttp.ClientSession,
    config: SourceConfig,
    workload: Workload,
    *,
    now: float | None = None,
) -> Signals:
    """One reading of ``workload``'s signals; ``now`` (epoch seconds) defaults to the clock."""
    at = time.time() if now is None else now
    if config.source is MetricsSourceType.PROMETHEUS and config.prometheus_url:
        replicas_task = prometheus.replicas(session, config, workload, now=at)
    else:
        replicas_task = _scrape_replicas(session, config, workload, now=at)
    (replicas, problems), (pending, last, demand_problems) = await asyncio.gather(
        replicas_task, _demand(session, config, workload, now=at)
    )
    return Signals(
        observed_at=at,
        replicas=replicas,
        demand=pending,
        last_request_at=last,
        problems=(*problems, *demand_problems),
    )


async def fetch_text(session: aiohttp.ClientSession, url: str, *, timeout_s: float) -> str:
    """The body of a 200 response; anything else raises ``aiohttp.ClientError`` or timeout."""
    async with session.get(url, timeout=aiohttp.ClientTimeout(total=timeout_s)) as response:
        response.raise_for_status()
        return await response.text()


async def scrape(
    session: aiohttp.ClientSession, url: str, names: Sequence[str], *, timeout_s: float
) -> dict[str, list[Sample]] | str:
    """The wanted series at ``url``, or a one-line reason they could not be read."""
    try:
        text = await fetch_text(session, url, timeout_s=timeout_s)
        return exposition.parse(text, names)
    except TimeoutError:
        return f"timeout after {timeout_s:g}s"
    except aiohttp.ClientResponseError as err:
        return f"HTTP {err.status}"
    except (aiohttp.ClientError, exposition.ExpositionError, UnicodeDecodeError) as err:
        return f"{type(err).__name__}: {err}"


async def _scrape_replicas(
    session: aiohttp.ClientSession, config: SourceConfig, workload: Workload, *, now: float
) -> tuple[tuple[ReplicaSample, ...], list[str]]:
    metrics = engine_for(workload.engine).metrics
    names = engine_names(metrics)
    results, (gpus, problems) = await asyncio.gather(
        asyncio.gather(
            *(
                scrape(session, p.metrics_url, names, timeout_s=config.timeout)
                for p in workload.pods
            )
        ),
        _scrape_gpus(session, config, workload, now=now),
    )
    samples: list[ReplicaSample] = []
    for pod, result in zip(workload.pods, results, strict=True):
        if isinstance(result, str):
            problems.append(f"{pod.name}: {result}")
            result = {}
        sample, pod_problems = replica_sample(
            pod.name,
            result,
            metrics=metrics,
            now=now,
            stale_after=config.stale_after,
            gpu=gpus.get(pod.name),
        )
        samples.append(sample)
        problems.extend(pod_problems if result else [])
    return tuple(samples), problems


async def _scrape_gpus(
    session: aiohttp.ClientSession, config: SourceConfig, workload: Workload, *, now: float
) -> tuple[dict[str, tuple[float, str]], list[str]]:
    """The GPU signal per pod from the dcgm-exporters of the pods' nodes and the shared ones."""
    nodes = [p.node for p in workload.pods if p.node is not None]
    per_node = {config.dcgm_urls[n] for n in nodes if n in config.dcgm_urls}
    urls = sorted(per_node | set(config.dcgm_shared_urls))
    if not urls:
        return {}, (["gpuUtilization: no dcgm-exporter configured"] if workload.pods else [])
    names = gpu_metric_names(config.gpu_metric)
    results = await asyncio.gather(
        *(scrape(session, url, names, timeout_s=config.timeout) for url in urls)
    )
    found: dict[str, list[Sample]] = {}
    problems: list[str] = []
    for url, result in zip(urls, results, strict=True):
        if isinstance(result, str):
            problems.append(f"dcgm-exporter {url}: {result}")
            continue
        for name, samples in result.items():
            found.setdefault(name, []).extend(samples)
    gpus = gpu_by_pod(
        found, names, namespace=workload.namespace, now=now, stale_after=config.stale_after
    )
    wanted = " or ".join(names)
    problems.extend(f"{p.name}: no {wanted}" for p in workload.pods if p.name not in gpus)
    return gpus, problems


async def _demand(
    session: aiohttp.ClientSession, config: SourceConfig, workload: Workload, *, now: float
) -> tuple[float | None, float | None, list[str]]:
    """Requests held by the routers for the model (summed), and their last request time."""
    if not config.router_urls:
        if config.source is MetricsSourceType.PROMETHEUS and config.prometheus_url:
            return await prometheus.demand(session, config, workload, now=now)
        return None, None, ["routerDemand: no router metrics endpoint configured"]
    names = [demand.PENDING_REQUESTS, demand.LAST_REQUEST_TIMESTAMP]
    results = await asyncio.gather(
        *(scrape(session, url, names, timeout_s=config.timeout) for url in config.router_urls)
    )
    return combine_demand(config.router_urls, results, workload)


def combine_demand(
    urls: Sequence[str],
    results: Sequence[Mapping[str, list[Sample]] | str],
    workload: Workload,
) -> tuple[float | None, float | None, list[str]]:
    """Sum over the routers that answered; unknown only if none reports demand and one
    failed (a partial sum that is positive is enough to wake a model)."""
    pending = 0.0
    last: float | None = None
    problems: list[str] = []
    for url, result in zip(urls, results, strict=True):
        if isinstance(result, str):
            problems.append(f"router {url}: {result}")
            continue
        for s in result.get(demand.PENDING_REQUESTS, []):
            if _for_model(s, workload):
                pending += s.value
        for s in result.get(demand.LAST_REQUEST_TIMESTAMP, []):
            if _for_model(s, workload) and s.value > 0:
                last = s.value if last is None else max(last, s.value)
    known = pending if pending > 0 or not problems else None
    return known, last, problems


def _for_model(sample: Sample, workload: Workload) -> bool:
    labels = sample.labels
    return (
        labels.get(demand.MODEL_DEPLOYMENT_LABEL) == workload.name
        and labels.get(demand.NAMESPACE_LABEL, workload.namespace) == workload.namespace
    )
