"""The real operator reconciles RoutingPolicies on the emulated cluster (fake pods): router
objects owned by the policy, status that follows its ModelDeployments, Degraded naming a
missing one while the rest keeps serving, no write on a second pass or after a restart,
children gone with the policy, and no key value anywhere."""

from __future__ import annotations

import json
import time
from typing import Any

import kubernetes.client
import pytest
from controller_helpers import operator_options
from policy_helpers import CANARY_KEY, policy_spec

from tierwise.controller.runner import OperatorThread
from tierwise.local.cluster import EmulatedCluster
from tierwise.local.testing import wait_for

NS = "models"
MD = ("tierwise.dev", "v1alpha1", NS, "modeldeployments")
RP = ("tierwise.dev", "v1alpha1", NS, "routingpolicies")
SELECTOR = "tierwise.dev/routing-policy=three,app.kubernetes.io/managed-by=tierwise"


def _md(name: str) -> dict[str, Any]:
    return {
        "apiVersion": "tierwise.dev/v1alpha1",
        "kind": "ModelDeployment",
        "metadata": {"name": name},
        "spec": {
            "model": {"uri": f"hf://org/{name}"},
            "engine": {"name": "vllm"},
            "cost": {"perGPUHour": 2.0},
        },
    }


def _rp(**spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": "tierwise.dev/v1alpha1",
        "kind": "RoutingPolicy",
        "metadata": {"name": "three"},
        "spec": {**policy_spec(), **spec},
    }


def _status(custom: kubernetes.client.CustomObjectsApi) -> dict[str, Any]:
    found: dict[str, Any] = custom.get_namespaced_custom_object(*RP, "three")
    return found.get("status") or {}


def _condition(status: dict[str, Any], kind: str) -> dict[str, Any]:
    return next((c for c in status.get("conditions") or [] if c["type"] == kind), {})


def _ready(custom: kubernetes.client.CustomObjectsApi, generation: int = 1) -> Any:
    status = _status(custom)
    ok = _condition(status, "Ready").get("status") == "True"
    return ok and status.get("observedGeneration") == generation and status


def _settle(operator: OperatorThread, seconds: float = 0.8) -> int:
    last, since = operator.writes, time.monotonic()
    while time.monotonic() - since < seconds:
        time.sleep(0.05)
        if operator.writes != last:
            last, since = operator.writes, time.monotonic()
    return last


@pytest.fixture
def setup(
    core: kubernetes.client.CoreV1Api, custom: kubernetes.client.CustomObjectsApi
) -> kubernetes.client.CustomObjectsApi:
    core.create_namespaced_secret(
        NS,
        {"metadata": {"name": "frontier-key"}, "stringData": {"api-key": CANARY_KEY}},
    )
    for name in ("small-llm", "mid-llm"):
        custom.create_namespaced_custom_object(*MD, _md(name))
    return custom


def test_policy_gets_its_router_and_a_ready_status(
    operator: OperatorThread,
    setup: kubernetes.client.CustomObjectsApi,
    api: kubernetes.client.ApiClient,
) -> None:
    created = setup.create_namespaced_custom_object(*RP, _rp())
    status = wait_for(lambda: _ready(setup), timeout=20, message="policy Ready")
    assert (status["readyTiers"], status["readyRouters"]) == ("3/3", "2/2")
    assert status["endpoint"] == "http://three-router.models.svc:80/v1"
    core, apps = kubernetes.client.CoreV1Api(api), kubernetes.client.AppsV1Api(api)
    config_map = core.read_namespaced_config_map("three-router", NS)
    document = json.loads(config_map.data["policy.json"])
    assert status["tableVersion"] == document["version"]
    assert sorted(document["backends"]) == ["mid-llm", "small-llm"]
    deployment = apps.read_namespaced_deployment("three-router", NS)
    (owner,) = deployment.metadata.owner_references
    assert (owner.kind, owner.uid) == ("RoutingPolicy", created["metadata"]["uid"])
    assert deployment.spec.replicas == 2
    events = {e.reason for e in core.list_namespaced_event(NS).items
              if e.involved_object.name == "three"}  # fmt: skip
    assert {"Created", "TableChanged"} <= events


def test_a_deleted_model_degrades_the_policy_and_its_return_restores_it(
    operator: OperatorThread, setup: kubernetes.client.CustomObjectsApi
) -> None:
    setup.create_namespaced_custom_object(*RP, _rp())
    wait_for(lambda: _ready(setup), timeout=20, message="policy Ready")
    setup.delete_namespaced_custom_object(*MD, "mid-llm")

    def degraded() -> Any:
        status = _status(setup)
        cond = _condition(status, "Degraded")
        return cond.get("reason") == "MissingModelDeployment" and status

    status = wait_for(degraded, timeout=20, message="Degraded naming mid-llm")
    message = _condition(status, "Degraded")["message"]
    assert "spec.tiers[1].backends[0].modelDeployment" in message
    assert "'mid-llm' does not exist" in message
    assert status["readyTiers"] == "2/3"
    setup.create_namespaced_custom_object(*MD, _md("mid-llm"))
    wait_for(lambda: _ready(setup), timeout=20, message="Ready again")


def test_a_second_reconcile_and_a_restart_write_nothing(
    cluster: EmulatedCluster, operator: OperatorThread, setup: kubernetes.client.CustomObjectsApi
) -> None:
    setup.create_namespaced_custom_object(*RP, _rp())
    wait_for(lambda: _ready(setup), timeout=20, message="policy Ready")
    writes = _settle(operator)
    operator.__exit__(None, None, None)
    assert operator.writes == writes
    with OperatorThread(operator_options(cluster)) as restarted:
        time.sleep(1.0)  # resume and the first child events
        assert _settle(restarted, 1.0) == 0


def test_deleting_the_policy_removes_its_router_objects(
    operator: OperatorThread,
    setup: kubernetes.client.CustomObjectsApi,
    api: kubernetes.client.ApiClient,
) -> None:
    setup.create_namespaced_custom_object(*RP, _rp())
    wait_for(lambda: _ready(setup), timeout=20, message="policy Ready")
    setup.delete_namespaced_custom_object(*RP, "three")
    core, apps = kubernetes.client.CoreV1Api(api), kubernetes.client.AppsV1Api(api)

    def gone() -> bool:
        left = core.list_namespaced_config_map(NS, label_selector=SELECTOR).items
        left += apps.list_namespaced_deployment(NS, label_selector=SELECTOR).items
        left += core.list_namespaced_service(NS, label_selector=SELECTOR).items
        return not left

    wait_for(gone, timeout=15, message="router objects garbage-collected")


def test_no_key_value_in_configmap_status_events_or_children(
    operator: OperatorThread,
    setup: kubernetes.client.CustomObjectsApi,
    api: kubernetes.client.ApiClient,
) -> None:
    setup.create_namespaced_custom_object(*RP, _rp())
    wait_for(lambda: _ready(setup), timeout=20, message="policy Ready")
    core, apps = kubernetes.client.CoreV1Api(api), kubernetes.client.AppsV1Api(api)
    dumped = [
        setup.get_namespaced_custom_object(*RP, "three"),
        *core.list_namespaced_config_map(NS).items,
        *core.list_namespaced_event(NS).items,
        *apps.list_namespaced_deployment(NS).items,
    ]
    text = json.dumps(api.sanitize_for_serialization(dumped))
    assert CANARY_KEY not in text
    assert "frontier-key" in text
