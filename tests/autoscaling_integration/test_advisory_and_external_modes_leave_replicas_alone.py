"""``advisory`` reports the decision it would apply (status, event, metrics) and leaves
replicas alone; ``external`` never writes replicas (an HPA's scale stays) and says so."""

from __future__ import annotations

import asyncio
import time

import kubernetes.client
from scaling_helpers import GVP, NS, event_reasons, md, ready_urls, spec_replicas, status

from tierwise.controller.runner import OperatorThread
from tierwise.local.testing import wait_for
from tierwise.sim.driver import DriveOptions, drive
from tierwise.sim.traffic import TrafficShape, generate


def _load(url: str, model: str) -> None:
    shape = TrafficShape(output_tokens=(30, 50), chat_user_words=(20, 60))
    requests = generate("chat", 40, seed=3, shape=shape)
    options = DriveOptions(model=model, concurrency=20, stream=False, respect_arrivals=False)
    results = asyncio.run(drive(url, requests, options))
    assert all(r.ok for r in results)


def _metric(operator: OperatorThread, name: str, **labels: str) -> float | None:
    value = operator.metrics.registry.get_sample_value(name, labels)
    return None if value is None else float(value)


def test_advisory_mode_reports_a_scale_up_and_changes_nothing(
    api: kubernetes.client.ApiClient, operator: OperatorThread
) -> None:
    name = "advice"
    custom = kubernetes.client.CustomObjectsApi(api)
    custom.create_namespaced_custom_object(*GVP, md(name, mode="advisory", min=1, max=3))
    url = wait_for(lambda: ready_urls(api, name), timeout=30, message="a ready replica")[0]
    _load(url, name)  # straight to the engine: 20 in flight, 2 batch slots
    advice = [m for r, m in event_reasons(api, name) if r == "AutoscalerAdvice"]
    assert advice
    assert advice[0].startswith("would scale 1 -> ")
    assert "QueueDepth" in advice[0]
    assert spec_replicas(api, name) == 1
    observed = status(api, name)
    assert "advisory:" in observed["lastScaleReason"]
    assert observed["advisedReplicas"] >= 1  # advice is in status (its value: unit-tested)
    ups = _metric(
        operator,
        "tierwise_operator_scale_decisions_total",
        direction="up",
        reason="QueueDepth",
        mode="advisory",
    )
    assert ups is not None
    assert ups >= 1
    writes = [e for e in event_reasons(api, name) if e[0].startswith("Scaled")]
    assert writes == []


def test_external_mode_never_writes_replicas_and_says_so(
    api: kubernetes.client.ApiClient, operator: OperatorThread
) -> None:
    name, hpa_replicas = "external", 2
    custom = kubernetes.client.CustomObjectsApi(api)
    custom.create_namespaced_custom_object(*GVP, md(name, mode="external", min=1, max=3))
    apps = kubernetes.client.AppsV1Api(api)
    wait_for(lambda: _exists(apps, name), timeout=15, message="the Deployment")
    # an HPA writes the scale subresource; Tierwise must not take it back
    apps.patch_namespaced_deployment_scale(
        name, NS, {"spec": {"replicas": hpa_replicas}},
        _content_type="application/merge-patch+json",
    )  # fmt: skip
    wait_for(
        lambda: "ExternalOwner" in (status(api, name).get("lastScaleReason") or ""),
        timeout=15,
        message="ExternalOwner in status",
    )
    time.sleep(2.5)  # two more decisions
    assert spec_replicas(api, name) == hpa_replicas
    assert (
        "desiredReplicas" not in status(api, name)
        or status(api, name)["desiredReplicas"] == hpa_replicas
    )
    assert [r for r, _ in event_reasons(api, name) if r.startswith("Scaled")] == []


def _exists(apps: kubernetes.client.AppsV1Api, name: str) -> bool:
    try:
        apps.read_namespaced_deployment(name, NS)
    except kubernetes.client.ApiException:
        return False
    return True
