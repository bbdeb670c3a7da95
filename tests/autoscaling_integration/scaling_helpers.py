"""ModelDeployment bodies and cluster reads shared by the autoscaling integration tests."""

from __future__ import annotations

import time
from typing import Any

import kubernetes.client

NS = "models"
GVP = ("tierwise.dev", "v1alpha1", NS, "modeldeployments")
DELETION_COST = "controller.kubernetes.io/pod-deletion-cost"

FAST = {
    "interval": "1s",
    "scaleDownWindow": "3s",
    "scaleToZeroAfter": "4s",
    "targetQueueDepth": 3,
    "metrics": {"staleAfter": "5s"},
}
"""Autoscaling fast enough for a test: decisions every second, short windows."""


def md(name: str, *, mode: str = "tierwise", min: int = 1, max: int = 3) -> dict[str, Any]:
    return {
        "apiVersion": "tierwise.dev/v1alpha1",
        "kind": "ModelDeployment",
        "metadata": {"name": name, "namespace": NS},
        "spec": {
            "model": {"uri": "hf://Qwen/Qwen2.5-0.5B", "servedName": name},
            "engine": {"name": "vllm"},
            "replicas": {"min": min, "max": max},
            "autoscaling": {**FAST, "mode": mode},
        },
    }


def spec_replicas(api: kubernetes.client.ApiClient, name: str) -> int:
    deployment = kubernetes.client.AppsV1Api(api).read_namespaced_deployment(name, NS)
    return int(deployment.spec.replicas)


def status(api: kubernetes.client.ApiClient, name: str) -> dict[str, Any]:
    custom = kubernetes.client.CustomObjectsApi(api)
    body: dict[str, Any] = custom.get_namespaced_custom_object(*GVP, name)
    return dict(body.get("status") or {})


def ready_urls(api: kubernetes.client.ApiClient, name: str) -> list[str]:
    """The ready endpoints of the ModelDeployment's Service, as the router discovers them
    (its EndpointSlices; terminating and unready endpoints left out)."""
    discovery = kubernetes.client.DiscoveryV1Api(api)
    slices = discovery.list_namespaced_endpoint_slice(
        NS, label_selector=f"tierwise.dev/model-deployment={name}"
    )
    urls = {
        f"http://{address}:{port.port}"
        for piece in slices.items
        for port in piece.ports or []
        if port.name == "http"
        for endpoint in piece.endpoints or []
        if (endpoint.conditions is None or endpoint.conditions.ready is not False)
        for address in endpoint.addresses
    }
    return sorted(urls)


def event_reasons(api: kubernetes.client.ApiClient, name: str) -> list[tuple[str, str]]:
    core = kubernetes.client.CoreV1Api(api)
    events = core.list_namespaced_event(NS, field_selector=f"involvedObject.name={name}")
    return [(e.reason, e.message) for e in events.items]


def pods(api: kubernetes.client.ApiClient, name: str) -> list[Any]:
    core = kubernetes.client.CoreV1Api(api)
    selector = f"tierwise.dev/model-deployment={name}"
    return [
        p for p in core.list_namespaced_pod(NS, label_selector=selector).items
        if p.metadata.deletion_timestamp is None
    ]  # fmt: skip


def replicas_history(api: kubernetes.client.ApiClient, name: str, until: float) -> list[int]:
    """``spec.replicas`` sampled every 0.2 s until the monotonic time ``until``."""
    seen: list[int] = []
    while time.monotonic() < until:
        seen.append(spec_replicas(api, name))
        time.sleep(0.2)
    return seen
