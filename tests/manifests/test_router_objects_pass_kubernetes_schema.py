"""Every router object and every injected pod is valid for a recent Kubernetes release
(strict schema: an unknown or misspelt field fails), for the examples, the golden inputs and
generated policies and pods."""

from __future__ import annotations

import copy
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from render_helpers import validate_object
from router_helpers import (
    EXAMPLES,
    GOLDEN_CASES,
    OWNER_UID,
    ROUTER_KINDS,
    app_pods,
    load_inputs,
    policies_in,
    routing_policies,
)

from tierwise.api.routing_policy import RoutingPolicy
from tierwise.manifests.labels import label_value
from tierwise.manifests.router import RouterRenderSettings, render_routing_policy
from tierwise.manifests.router_config import router_config
from tierwise.manifests.sidecar import inject_sidecar

WITH_POD_MONITOR = RouterRenderSettings(pod_monitor=True)


def example_policies() -> list[str]:
    inputs = load_inputs(EXAMPLES)
    return sorted(rp.metadata.name for rp in inputs.policies)


@pytest.mark.parametrize("name", example_policies())
@pytest.mark.parametrize("pod_monitor", [False, True])
def test_example_policies_render_to_valid_objects(name: str, pod_monitor: bool) -> None:
    inputs = load_inputs(EXAMPLES)
    (rp,) = [p for p in inputs.policies if p.metadata.name == name]
    config = router_config(rp, {md.metadata.name: md for md in inputs.deployments})
    chosen = RouterRenderSettings(pod_monitor=pod_monitor)
    for obj in render_routing_policy(rp, config, settings=chosen, owner_uid=OWNER_UID):
        validate_object(obj)


@pytest.mark.parametrize("case", sorted(GOLDEN_CASES))
def test_golden_inputs_render_to_valid_objects_and_pods(case: str) -> None:
    source, kwargs = GOLDEN_CASES[case]
    inputs = load_inputs(source)
    for obj in inputs.render(**{**kwargs, "owner_uid": OWNER_UID}):
        validate_object(obj)
    for pod in inputs.pods:
        validate_object(pod)  # the input itself, so a failure below is the injection's
        injected = inject_sidecar(pod, inputs.policy)
        assert injected is not None
        validate_object(injected)


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(routing_policies(), st.booleans(), st.lists(st.sampled_from(["a", "b", "web"])))
def test_generated_policies_render_to_valid_objects(
    rp: RoutingPolicy, pod_monitor: bool, accounts: list[str]
) -> None:
    chosen = RouterRenderSettings(pod_monitor=pod_monitor)
    config = router_config(rp, {})
    objects = render_routing_policy(
        rp, config, settings=chosen, owner_uid="uid-1", sidecar_service_accounts=accounts
    )
    for obj in objects:
        validate_object(obj)


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.data(), policies_in("sidecar"))
def test_generated_pods_stay_valid_once_injected(data: st.DataObject, rp: RoutingPolicy) -> None:
    pod = data.draw(app_pods(label_value(rp.metadata.name)))
    injected = inject_sidecar(pod, rp)
    assert injected is not None
    validate_object(injected)


def _with_typo(obj: dict[str, Any]) -> dict[str, Any]:
    broken = copy.deepcopy(obj)
    target = broken.get("spec") or broken.get("roleRef") or broken["metadata"]
    if broken["kind"] == "Role":
        target = broken["rules"][0]
    target["replicaz"] = 2
    return broken


@pytest.mark.parametrize("kind", ROUTER_KINDS)
def test_the_validator_rejects_an_unknown_field_in_every_router_kind(kind: str) -> None:
    """Guards the guard: a strict schema must notice a misspelt field in every kind."""
    source, kwargs = GOLDEN_CASES["03-three-tier-routing"]
    objects = load_inputs(source).render(**kwargs)
    obj = next(o for o in objects if o["kind"] == kind)
    with pytest.raises(Exception, match="replicaz"):
        validate_object(_with_typo(obj))
