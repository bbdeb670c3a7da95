"""Workloads are deterministic per seed and have the promised shapes; the driver measures."""

from __future__ import annotations

import itertools
import time
from collections import defaultdict

import pytest

from tierwise.sim.driver import DriveOptions, drive, percentile, summarize
from tierwise.sim.traffic import TrafficShape, Workload, generate


@pytest.mark.parametrize("workload", list(Workload))
def test_same_seed_same_requests_other_seed_other_requests(workload: Workload) -> None:
    assert generate(workload, 30, seed=1) == generate(workload, 30, seed=1)
    assert generate(workload, 30, seed=1) != generate(workload, 30, seed=2)
    assert len(generate(workload, 30, seed=1)) == 30
    assert generate(workload, 0, seed=1) == []


def test_agentic_sessions_share_long_system_prompts_and_grow_by_turn() -> None:
    requests = generate(Workload.AGENTIC, 60, seed=3)
    sessions = defaultdict(list)
    for request in requests:
        sessions[request.session_id].append(request)
    assert len(sessions) < 30
    systems = {r.messages[0]["content"] for r in requests}
    assert len(systems) <= TrafficShape().agentic_system_prompts
    assert all(r.tools == requests[0].tools and r.tools for r in requests)
    for turns in sessions.values():
        assert [r.turn for r in turns] == list(range(len(turns)))
        for earlier, later in itertools.pairwise(turns):
            assert later.messages[: len(earlier.messages)] == earlier.messages


def test_bursts_arrive_together() -> None:
    shape = TrafficShape(burst_size=5, burst_interval_s=0.5)
    arrivals = [r.arrival_s for r in generate(Workload.BURST, 12, seed=0, shape=shape)]
    assert arrivals == [0.0] * 5 + [0.5] * 5 + [1.0] * 2


def test_percentile_uses_nearest_rank() -> None:
    assert percentile([], 50) == 0.0
    assert percentile([3.0, 1.0, 2.0], 50) == 2.0
    assert percentile([float(i) for i in range(1, 101)], 99) == 99.0


async def test_driver_runs_agentic_sessions_and_sees_prefix_hits(vllm_url: str) -> None:
    requests = generate(Workload.AGENTIC, 24, seed=5)
    began = time.monotonic()
    results = await drive(vllm_url, requests, DriveOptions(model="sim-model", concurrency=4))
    summary = summarize(results, time.monotonic() - began)
    assert [r.request_id for r in results] == [r.id for r in requests]
    assert summary.count == 24
    assert summary.errors == 0
    assert all(r.ttft_s is not None for r in results)
    assert [r.completion_tokens for r in results] == [r.max_tokens for r in requests]
    assert summary.cached_token_fraction > 0.5
    assert "requests 24" in summary.format()


async def test_driver_reports_http_errors_and_unreachable_servers(vllm_url: str) -> None:
    requests = generate(Workload.CHAT, 3, seed=0)
    wrong_model = await drive(vllm_url, requests, DriveOptions(model="nope", stream=False))
    assert {r.status for r in wrong_model} == {404}
    assert all("does not exist" in (r.error or "") for r in wrong_model)
    gone = await drive("http://127.0.0.1:9", requests[:1], DriveOptions(model="sim-model"))
    assert gone[0].status == 0
    assert not gone[0].ok
