"""The real operator (real kopf, real HTTP) against the emulated cluster: create, update,
no-op, restart, failure, delete. Wall time about 15 s."""

from __future__ import annotations

import time
from typing import Any

import kubernetes.client
import pytest
from controller_helpers import operator_options

from tierwise.controller.runner import OperatorThread
from tierwise.local.cluster import EmulatedCluster
from tierwise.local.testing import wait_for
from tierwise.local.workloads import HEALTH_ANNOTATION

NS = "models"
GVP = ("tierwise.dev", "v1alpha1", NS, "modeldeployments")
SELECTOR = "tierwise.dev/model-deployment={}"
MERGE = "application/merge-patch+json"


def md(name: str, **spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": "tierwise.dev/v1alpha1",
        "kind": "ModelDeployment",
        "metadata": {"name": name},
        "spec": {
            "model": {"uri": "hf://Qwen/Qwen2.5-0.5B-Instruct"},
            "engine": {"name": "vllm"},
            "replicas": {"min": 2, "max": 3},
            **spec,
        },
    }


def get(custom: kubernetes.client.CustomObjectsApi, name: str) -> dict[str, Any]:
    found: dict[str, Any] = custom.get_namespaced_custom_object(*GVP, name)
    return found


def phase_is(
    custom: kubernetes.client.CustomObjectsApi, name: str, phase: str, generation: int = 1
) -> Any:
    status = get(custom, name).get("status") or {}
    return (
        status.get("phase") == phase and status.get("observedGeneration") == generation and status
    )


def children(api: kubernetes.client.ApiClient, name: str) -> dict[str, Any]:
    selector = SELECTOR.format(name)
    apps, core = kubernetes.client.AppsV1Api(api), kubernetes.client.CoreV1Api(api)
    policy = kubernetes.client.PolicyV1Api(api)
    return {
        "Deployment": apps.list_namespaced_deployment(NS, label_selector=selector).items,
        "Service": core.list_namespaced_service(NS, label_selector=selector).items,
        "PodDisruptionBudget": policy.list_namespaced_pod_disruption_budget(
            NS, label_selector=selector
        ).items,
    }


def settle(operator: OperatorThread, seconds: float = 0.6) -> int:
    """Wait until the operator has made no write for ``seconds``; return its write count."""
    last, since = operator.writes, time.monotonic()
    while time.monotonic() - since < seconds:
        time.sleep(0.05)
        if operator.writes != last:
            last, since = operator.writes, time.monotonic()
    return last


def test_create_makes_owned_children_and_status_converges(
    operator: OperatorThread,
    custom: kubernetes.client.CustomObjectsApi,
    api: kubernetes.client.ApiClient,
) -> None:
    created = custom.create_namespaced_custom_object(*GVP, md("qwen"))
    status = wait_for(lambda: phase_is(custom, "qwen", "Ready"), message="Ready")
    found = children(api, "qwen")
    assert {k: len(v) for k, v in found.items()} == {
        "Deployment": 1,
        "Service": 1,
        "PodDisruptionBudget": 1,
    }
    for objs in found.values():
        (ref,) = objs[0].metadata.owner_references
        assert (ref.kind, ref.uid, ref.controller) == (
            "ModelDeployment",
            created["metadata"]["uid"],
            True,
        )
    assert (status["readyReplicas"], status["desiredReplicas"]) == (2, 2)
    assert status["endpoint"].startswith("http://qwen.models.svc")
    assert {c["type"]: c["status"] for c in status["conditions"]} == {
        "Ready": "True",
        "Progressing": "False",
        "Degraded": "False",
        "Reconciling": "False",
        "Stalled": "False",
    }
    meta = get(custom, "qwen")["metadata"]
    assert meta["finalizers"] == ["tierwise.dev/finalizer"]
    assert all(k.startswith("tierwise.dev/") for k in meta.get("annotations", {}))
    assert "kopf" not in get(custom, "qwen")["status"]
    events = kubernetes.client.CoreV1Api(api).list_namespaced_event(NS).items
    assert {"Created", "PhaseChanged"} <= {
        e.reason for e in events if e.involved_object.name == "qwen"
    }


def test_update_changes_children_in_place(
    operator: OperatorThread,
    custom: kubernetes.client.CustomObjectsApi,
    api: kubernetes.client.ApiClient,
) -> None:
    custom.create_namespaced_custom_object(*GVP, md("qwen"))
    wait_for(lambda: phase_is(custom, "qwen", "Ready"), message="Ready")
    before = {
        k: (v[0].metadata.uid, v[0].metadata.resource_version)
        for k, v in children(api, "qwen").items()
    }
    custom.patch_namespaced_custom_object(
        *GVP, "qwen", {"spec": {"engine": {"name": "vllm", "contextLength": 4096}}}
    )
    wait_for(lambda: phase_is(custom, "qwen", "Ready", generation=2), timeout=15, message="gen 2")
    after = children(api, "qwen")
    assert {k: v[0].metadata.uid for k, v in after.items()} == {k: v[0] for k, v in before.items()}
    command = after["Deployment"][0].spec.template.spec.containers[0]
    assert "4096" in " ".join([*(command.command or []), *(command.args or [])])
    # Only the Deployment changed: the Service and the PDB were not even written.
    assert after["Service"][0].metadata.resource_version == before["Service"][1]
    assert (
        after["PodDisruptionBudget"][0].metadata.resource_version
        == before["PodDisruptionBudget"][1]
    )


def test_a_second_reconcile_and_a_restart_write_nothing(
    cluster: EmulatedCluster,
    operator: OperatorThread,
    custom: kubernetes.client.CustomObjectsApi,
) -> None:
    custom.create_namespaced_custom_object(*GVP, md("qwen"))
    wait_for(lambda: phase_is(custom, "qwen", "Ready"), message="Ready")
    writes = settle(operator)
    assert operator.reconciler is not None
    plan = operator.call(operator.reconciler.reconcile(get(custom, "qwen")))
    assert plan.writes == 0
    assert operator.writes == writes
    operator.__exit__(None, None, None)
    with OperatorThread(operator_options(cluster)) as restarted:
        assert settle(restarted, 1.0) == 0  # resume found everything in place


def test_restart_midway_converges_without_duplicates(
    cluster: EmulatedCluster,
    custom: kubernetes.client.CustomObjectsApi,
    api: kubernetes.client.ApiClient,
) -> None:
    names = [f"m{i}" for i in range(6)]
    with OperatorThread(operator_options(cluster)) as first:
        for name in names:
            custom.create_namespaced_custom_object(*GVP, md(name))
        wait_for(lambda: first.writes > 0, message="some progress")
    with OperatorThread(operator_options(cluster)):
        for name in names:
            wait_for(
                lambda n=name: phase_is(custom, n, "Ready"), timeout=20, message=f"{name} Ready"
            )
    for name in names:
        assert {k: len(v) for k, v in children(api, name).items()} == {
            "Deployment": 1,
            "Service": 1,
            "PodDisruptionBudget": 1,
        }


def test_failing_pods_degrade_and_recovery_is_seen(
    operator: OperatorThread,
    custom: kubernetes.client.CustomObjectsApi,
    apps: kubernetes.client.AppsV1Api,
) -> None:
    custom.create_namespaced_custom_object(*GVP, md("qwen"))
    wait_for(lambda: phase_is(custom, "qwen", "Ready"), message="Ready")

    def mark(health: str) -> None:
        apps.patch_namespaced_deployment(
            "qwen",
            NS,
            {"metadata": {"annotations": {HEALTH_ANNOTATION: health}}},
            _content_type=MERGE,
        )

    mark("Failing")
    status = wait_for(lambda: phase_is(custom, "qwen", "Failed"), timeout=15, message="Failed")
    degraded = next(c for c in status["conditions"] if c["type"] == "Degraded")
    assert (degraded["status"], degraded["reason"]) == ("True", "PodsFailing")
    assert "CrashLoopBackOff" in degraded["message"]
    mark("Ready")
    wait_for(lambda: phase_is(custom, "qwen", "Ready"), timeout=15, message="Ready again")


@pytest.mark.parametrize(
    ("spec", "field", "reason"),
    [
        (
            {"engine": {"name": "vllm", "args": ["--port", "9000"]}},
            "spec.engine.args[0]",
            "InvalidSpec",
        ),
        (
            {
                "model": {
                    "uri": "hf://Qwen/Qwen3-8B",
                    "tokenSecretRef": {"name": "hf-token", "key": "t"},
                }
            },
            "spec.model.tokenSecretRef.name",
            "MissingReference",
        ),
    ],
)
def test_spec_errors_become_degraded_without_a_crash_loop(
    operator: OperatorThread,
    custom: kubernetes.client.CustomObjectsApi,
    api: kubernetes.client.ApiClient,
    spec: dict[str, Any],
    field: str,
    reason: str,
) -> None:
    custom.create_namespaced_custom_object(*GVP, md("bad", **spec))
    status = wait_for(lambda: phase_is(custom, "bad", "Failed"), message="Failed")
    degraded = next(c for c in status["conditions"] if c["type"] == "Degraded")
    assert (degraded["status"], degraded["reason"]) == ("True", reason)
    assert field in degraded["message"]
    assert children(api, "bad")["Deployment"] == []
    writes = settle(operator, 1.0)
    time.sleep(1.0)
    assert operator.writes == writes  # no retry loop rewriting status or posting events
    events = kubernetes.client.CoreV1Api(api).list_namespaced_event(NS).items
    assert any(e.reason == reason and field in e.message for e in events)


def test_delete_leaves_nothing_behind(
    operator: OperatorThread,
    custom: kubernetes.client.CustomObjectsApi,
    api: kubernetes.client.ApiClient,
) -> None:
    custom.create_namespaced_custom_object(*GVP, md("qwen"))
    wait_for(lambda: phase_is(custom, "qwen", "Ready"), message="Ready")
    custom.delete_namespaced_custom_object(*GVP, "qwen")

    def gone() -> bool:
        names = [o["metadata"]["name"] for o in custom.list_namespaced_custom_object(*GVP)["items"]]
        return "qwen" not in names and not any(children(api, "qwen").values())

    wait_for(gone, timeout=15, message="MD and children gone")
    pods = kubernetes.client.CoreV1Api(api).list_namespaced_pod(
        NS, label_selector=SELECTOR.format("qwen")
    )
    wait_for(
        lambda: (
            not kubernetes.client.CoreV1Api(api)
            .list_namespaced_pod(NS, label_selector=SELECTOR.format("qwen"))
            .items
        ),
        message="pods gone",
    )
    assert pods is not None


def test_metrics_count_reconciles_and_writes(
    operator: OperatorThread,
    custom: kubernetes.client.CustomObjectsApi,
) -> None:
    custom.create_namespaced_custom_object(*GVP, md("qwen"))
    wait_for(lambda: phase_is(custom, "qwen", "Ready"), message="Ready")
    text = operator.metrics.exposition().decode()
    assert 'tierwise_operator_reconciles_total{kind="ModelDeployment",outcome="ok"}' in text
    assert 'tierwise_operator_api_writes_total{kind="Deployment",verb="apply"}' in text
    assert 'tierwise_operator_objects_managed{kind="ModelDeployment"} 1.0' in text
    assert "tierwise_operator_reconcile_duration_seconds_bucket" in text
