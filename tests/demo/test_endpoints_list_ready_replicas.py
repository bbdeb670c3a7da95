"""The endpoint map holds exactly the ready, live replicas of each ModelDeployment, as
``http://IP:PORT`` from the local runner's port annotation. Pure; under a second."""

from __future__ import annotations

from typing import Any

import pytest
import yaml

from tierwise.local.endpoints import endpoints_from_pods, endpoints_yaml, pod_base_url
from tierwise.local.workloads import PORT_ANNOTATION
from tierwise.manifests.labels import MODEL_DEPLOYMENT_LABEL, label_value


def pod(md: str | None, port: str | None = "8001", *, ready: bool = True,
        ip: str | None = "127.0.0.1", deleting: bool = False) -> dict[str, Any]:
    meta: dict[str, Any] = {"name": f"{md}-x", "labels": {}, "annotations": {}}
    if md is not None:
        meta["labels"][MODEL_DEPLOYMENT_LABEL] = md
    if port is not None:
        meta["annotations"][PORT_ANNOTATION] = port
    if deleting:
        meta["deletionTimestamp"] = "2025-01-01T00:00:00Z"
    status: dict[str, Any] = {"conditions": [{"type": "Ready", "status": str(ready)}]}
    if ip is not None:
        status["podIP"] = ip
    return {"metadata": meta, "status": status}


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        (pod("a"), "http://127.0.0.1:8001"),
        (pod("a", ip="::1"), "http://[::1]:8001"),
        (pod("a", ready=False), None),
        (pod("a", deleting=True), None),
        (pod("a", port=None), None),
        (pod("a", port=""), None),
        (pod("a", port="\uff18\uff10"), None),  # full-width digits are not a port
        (pod("a", ip=None), None),
        ({}, None),
    ],
)
def test_pod_base_url(body: dict[str, Any], expected: str | None) -> None:
    assert pod_base_url(body) == expected


def test_groups_by_model_deployment_sorted_without_duplicates() -> None:
    pods = [pod("b", "9002"), pod("a", "9001"), pod("b", "9001"), pod("b", "9002"),
            pod(None, "9009"), pod("a", "9003", ready=False)]
    assert endpoints_from_pods(pods) == {
        "a": ["http://127.0.0.1:9001"],
        "b": ["http://127.0.0.1:9001", "http://127.0.0.1:9002"],
    }


def test_empty_inputs() -> None:
    assert endpoints_from_pods([]) == {}
    assert endpoints_from_pods([], names=["a"]) == {"a": []}


def test_names_limit_the_map_and_restore_long_names() -> None:
    long_name = "m" * 70 + ".ünï"[:1]  # over 63 characters: the label is shortened
    pods = [pod(label_value(long_name), "9001"), pod("other", "9002")]
    assert label_value(long_name) != long_name
    assert endpoints_from_pods(pods, names=[long_name, "idle"]) == {
        "idle": [], long_name: ["http://127.0.0.1:9001"]}


def test_yaml_round_trips_to_the_routers_format() -> None:
    endpoints = {"small-llm": ["http://127.0.0.1:1"], "模型": []}
    assert yaml.safe_load(endpoints_yaml(endpoints)) == endpoints
