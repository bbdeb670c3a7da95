"""Router demand counts for a ModelDeployment only from series of its own namespace; a
series without a namespace label (a router older than the label) still counts.

The series are the router's own exposition (``RouterMetrics``) read through the
operator's text reader, so both sides of the contract in ``autoscaler.demand`` are used.
"""

from __future__ import annotations

import pytest
from prometheus_client import generate_latest

from tierwise.api.model_deployment import EngineName
from tierwise.autoscaler import demand
from tierwise.autoscaler.exposition import Sample, parse
from tierwise.autoscaler.signals import Workload, combine_demand
from tierwise.router.metrics import RouterMetrics

NAMES = [demand.PENDING_REQUESTS, demand.LAST_REQUEST_TIMESTAMP]


def _router(namespace: str, pending: dict[str, int], last: float) -> dict[str, list[Sample]]:
    metrics = RouterMetrics(namespace)
    metrics.pending_by_model.update(pending)
    metrics.last_request_at.update({model: last for model in pending})
    return parse(generate_latest(metrics.registry).decode(), NAMES)


def _unlabelled(model: str, pending: int, last: float) -> dict[str, list[Sample]]:
    text = (
        f'{demand.PENDING_REQUESTS}{{model_deployment="{model}"}} {pending}\n'
        f'{demand.LAST_REQUEST_TIMESTAMP}{{model_deployment="{model}"}} {last}\n'
    )
    return parse(text, NAMES)


@pytest.mark.parametrize(
    ("namespace", "expected_pending", "expected_last"),
    [
        ("models", 3.0 + 1.0, 300.0),  # its router plus the unlabelled one
        ("team-a", 5.0 + 1.0, 200.0),
        ("ünï", 7.0 + 1.0, 200.0),
        ("elsewhere", 1.0, 200.0),  # only the unlabelled router
    ],
)
def test_only_the_workloads_namespace_counts(
    namespace: str, expected_pending: float, expected_last: float
) -> None:
    results = [
        _router("models", {"chat": 3, "other": 11}, 300.0),
        _router("team-a", {"chat": 5}, 100.0),
        _router("ünï", {"chat": 7}, 150.0),
        _unlabelled("chat", 1, 200.0),
    ]
    urls = [f"http://router-{i}" for i in range(len(results))]
    workload = Workload(namespace, "chat", EngineName.VLLM)
    pending, last, problems = combine_demand(urls, results, workload)
    assert (pending, last, problems) == (expected_pending, expected_last, [])


@pytest.mark.parametrize("model", ["chat", "", "模型"])
def test_a_router_in_another_namespace_holds_nothing_for_the_model(model: str) -> None:
    results = [_router("team-a", {model: 4} if model else {}, 100.0)]
    workload = Workload("models", model or "chat", EngineName.VLLM)
    assert combine_demand(["http://r"], results, workload) == (0.0, None, [])
