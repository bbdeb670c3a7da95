"""A burst raises replicas within the reaction time; quiet lowers them after the window, to
zero when ``replicas.min`` is 0; a request that then arrives is held by the router and
served once the operator, reading the router's demand, has woken a replica."""

from __future__ import annotations

import asyncio
import concurrent.futures
import threading
import time
import urllib.request
from typing import Any

import kubernetes.client
import orjson
from scaling_helpers import (
    DELETION_COST,
    GVP,
    NS,
    event_reasons,
    md,
    pods,
    ready_urls,
    spec_replicas,
    status,
)

from tierwise.autoscaler import demand
from tierwise.autoscaler.exposition import parse
from tierwise.controller.runner import OperatorThread
from tierwise.local.testing import wait_for
from tierwise.sim.driver import DriveOptions, RequestResult, drive
from tierwise.sim.traffic import TrafficShape, generate

NAME = "chat"
REACTION_S = 6.0
"""interval (1 s) + a scrape + the time for the queue to build, with slack for 2 cores."""
WINDOW_S = 3.0


class Sampler:
    """Samples spec.replicas (and whether surviving pods carry a deletion cost) every 0.1 s."""

    def __init__(self, api: kubernetes.client.ApiClient) -> None:
        self.api = api
        self.samples: list[tuple[float, int]] = []
        self.unannotated_after_scale_down: list[str] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        peak = 0
        while not self._stop.wait(0.1):
            replicas = spec_replicas(self.api, NAME)
            self.samples.append((time.monotonic(), replicas))
            peak = max(peak, replicas)
            if 0 < replicas < peak:
                for pod in pods(self.api, NAME):
                    if DELETION_COST not in (pod.metadata.annotations or {}):
                        self.unannotated_after_scale_down.append(pod.metadata.name)

    def first(self, predicate: Any, after: float) -> float | None:
        return next((t for t, n in self.samples if t >= after and predicate(n)), None)

    def __enter__(self) -> Sampler:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join(5)


def _burst(router: str) -> list[RequestResult]:
    shape = TrafficShape(output_tokens=(30, 50), chat_user_words=(20, 60))
    requests = generate("chat", 60, seed=7, shape=shape)
    options = DriveOptions(model=NAME, concurrency=24, stream=False, respect_arrivals=False)
    return asyncio.run(drive(router, requests, options))


def _ask(router: str) -> tuple[int, dict[str, Any]]:
    body = orjson.dumps(
        {"model": NAME, "messages": [{"role": "user", "content": "wake up ☀"}], "max_tokens": 8}
    )
    request = urllib.request.Request(
        router + "/v1/chat/completions", data=body, headers={"content-type": "application/json"}
    )
    with urllib.request.urlopen(request, timeout=40) as response:
        return response.status, orjson.loads(response.read())


def _routable(router: str) -> bool:
    """Whether the router's table has a ready replica of the tier (its endpoints gauge)."""
    with urllib.request.urlopen(router + "/metrics", timeout=2) as response:
        text = response.read().decode()
    samples = parse(text, ["tierwise_router_endpoints"]).get("tierwise_router_endpoints", [])
    return sum(s.value for s in samples if s.labels.get("backend") == NAME) > 0


def _pending(router: str) -> float:
    with urllib.request.urlopen(router + "/metrics", timeout=2) as response:
        text = response.read().decode()
    samples = parse(text, [demand.PENDING_REQUESTS]).get(demand.PENDING_REQUESTS, [])
    wanted = {demand.NAMESPACE_LABEL: NS, demand.MODEL_DEPLOYMENT_LABEL: NAME}
    return sum(s.value for s in samples if s.labels == wanted)


def test_burst_up_quiet_down_to_zero_then_a_held_request_is_served(
    api: kubernetes.client.ApiClient, operator: OperatorThread, router: str
) -> None:
    custom = kubernetes.client.CustomObjectsApi(api)
    custom.create_namespaced_custom_object(*GVP, md(NAME, min=1, max=3))
    wait_for(lambda: len(ready_urls(api, NAME)) == 1, timeout=30, message="one ready replica")
    wait_for(lambda: _routable(router), timeout=10, message="the router has the replica")

    with Sampler(api) as sampler, concurrent.futures.ThreadPoolExecutor(1) as pool:
        burst_at = time.monotonic()
        results = pool.submit(_burst, router).result(timeout=60)
        quiet_at = time.monotonic()
        custom.patch_namespaced_custom_object(
            *GVP, NAME, {"spec": {"replicas": {"min": 0, "max": 3}}}
        )
        wait_for(lambda: spec_replicas(api, NAME) == 0, timeout=30, message="zero replicas")
    assert all(r.ok for r in results), [r.error for r in results if not r.ok][:3]
    rose_at = sampler.first(lambda n: n >= 2, burst_at)
    assert rose_at is not None
    assert rose_at - burst_at <= REACTION_S
    peak = max(n for _, n in sampler.samples)
    assert peak >= 2
    peak_at = sampler.first(lambda n: n == peak, burst_at)
    fell_at = sampler.first(lambda n: n < peak, quiet_at)
    assert peak_at is not None
    assert fell_at is not None
    assert fell_at - peak_at >= WINDOW_S - 0.5  # the peak proposal holds for the window
    assert sampler.unannotated_after_scale_down == []
    reasons = [reason for reason, _ in event_reasons(api, NAME)]
    assert "ScaledUp" in reasons
    assert "ScaledToZero" in reasons

    wait_for(
        lambda: ready_urls(api, NAME) == [],
        timeout=15,
        message=f"no ready replica ({spec_replicas(api, NAME)}, {event_reasons(api, NAME)})",
    )
    wait_for(lambda: not _routable(router), timeout=10, message="the router's tier is empty")
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        answer = pool.submit(_ask, router)
        wait_for(lambda: _pending(router) >= 1, timeout=10, message="the router holds it")
        code, body = answer.result(timeout=45)
    assert code == 200
    assert body["choices"][0]["message"]["content"]
    assert "ScaledFromZero" in [reason for reason, _ in event_reasons(api, NAME)]
    assert spec_replicas(api, NAME) >= 1
    assert status(api, NAME)["lastScaleReason"]
