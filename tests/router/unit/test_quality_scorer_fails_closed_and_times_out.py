"""The tier classifier on the request path: scores come from a worker thread; a slow
model, a full queue or a missing model yields no scores (the default decision) and is
counted by reason; a missing artefact leaves the scorer failed with the reason."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
from prometheus_client import CollectorRegistry, generate_latest

from tierwise.api.routing_policy import RoutingPolicy
from tierwise.router.classifier_metrics import ClassifierMetrics
from tierwise.router.tier_quality_service import (
    ClassifierState,
    ClassifierStatus,
    QualityScorer,
)


class FakeModel:
    def __init__(self, gate: threading.Event | None = None) -> None:
        self.gate = gate
        self.threads: set[str] = set()

    def scores(self, text: str) -> dict[str, float]:
        self.threads.add(threading.current_thread().name)
        if self.gate is not None:
            self.gate.wait(5)
        return {"small": 0.7}


@pytest.fixture
def executor() -> Iterator[ThreadPoolExecutor]:
    pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="tier-quality")
    yield pool
    pool.shutdown(wait=True)


def scorer(
    model: Any, pool: ThreadPoolExecutor, **kw: Any
) -> tuple[QualityScorer, ClassifierMetrics]:
    metrics = ClassifierMetrics(CollectorRegistry())
    status = ClassifierStatus("tierQuality", "tier-quality", ClassifierState.READY)
    return QualityScorer(model, status, executor=pool, metrics=metrics, **kw), metrics


async def test_scores_come_from_the_worker_thread_and_are_observed(
    executor: ThreadPoolExecutor,
) -> None:
    model = FakeModel()
    s, metrics = scorer(model, executor, timeout_s=5.0)
    assert await s.scores("hello") == {"small": 0.7}
    assert all(name.startswith("tier-quality") for name in model.threads)
    cumulative = dict(metrics.predicted["small"].cumulative())
    assert (cumulative["0.6"], cumulative["0.7"]) == (0.0, 1.0)
    assert metrics.misses == {}


async def test_a_slow_model_times_out_to_no_scores(executor: ThreadPoolExecutor) -> None:
    gate = threading.Event()
    s, metrics = scorer(FakeModel(gate), executor, timeout_s=0.02)
    try:
        assert await s.scores("hello") is None
    finally:
        gate.set()
    assert metrics.misses == {"timeout": 1}


async def test_a_full_queue_answers_at_once_without_scores(executor: ThreadPoolExecutor) -> None:
    s, metrics = scorer(FakeModel(), executor, timeout_s=5.0, max_pending=0)
    assert await s.scores("hello") is None
    assert metrics.misses == {"overload": 1}


def test_a_missing_artifact_fails_closed_and_says_why(
    tmp_path: Path, executor: ThreadPoolExecutor
) -> None:
    spec = RoutingPolicy.model_validate(
        {
            "metadata": {"name": "rp"},
            "spec": {
                "tiers": [
                    {"name": "small", "backends": [{"modelDeployment": "a"}]},
                    {"name": "frontier", "backends": [{"modelDeployment": "b"}]},
                ],
                "rules": [{"name": "cal", "tier": "small", "match": {"minPredictedQuality": 0.5}}],
                "classifier": {"tierQuality": {"configMap": {"name": "cm", "key": "k.json"}}},
            },
        }
    ).spec
    metrics = ClassifierMetrics(CollectorRegistry())
    s = QualityScorer.build(spec, classifier_dir=str(tmp_path), executor=executor, metrics=metrics)
    assert s.model is None
    assert s.needed
    assert s.status.state is ClassifierState.FAILED
    assert f"not mounted at {tmp_path}/cm/k.json" in s.status.message
    metrics.set_statuses([s.status])
    registry = CollectorRegistry()
    registry.register(metrics)
    text = generate_latest(registry).decode()
    assert 'classifier="tierQuality",name="tier-quality",state="failed"' in text


class EchoModel:
    def scores(self, text: str) -> dict[str, float]:
        if text == "boom":
            raise ValueError("bad prompt")
        return {"small": len(text) / 100}


async def test_requests_arriving_together_each_get_their_own_scores(
    executor: ThreadPoolExecutor,
) -> None:
    import asyncio

    s, metrics = scorer(EchoModel(), executor, timeout_s=5.0)
    texts = ["a" * n for n in range(1, 21)] + ["boom"]
    results = await asyncio.gather(*(s.scores(t) for t in texts))
    assert results[:-1] == [{"small": n / 100} for n in range(1, 21)]
    assert results[-1] is None
    assert metrics.misses == {"error": 1}
