"""The router's pod template (and its startup checksum) changes only when something the router
reads at startup changes; a new policy document reaches the routers through their ConfigMap
watch and must not roll a single pod."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from router_helpers import EXAMPLES, by_kind, load_inputs, policies_in, routing_policy_docs

from tierwise.api.model_deployment import ModelDeployment
from tierwise.api.routing_policy import RoutingPolicy
from tierwise.manifests.router import RouterRenderSettings, render_routing_policy
from tierwise.manifests.router_config import named_model_deployments, router_config
from tierwise.manifests.router_objects import CHECKSUM_ANNOTATION


def model_deployment(name: str, served: str, price: float) -> ModelDeployment:
    return ModelDeployment.model_validate(
        {
            "apiVersion": "tierwise.dev/v1alpha1",
            "kind": "ModelDeployment",
            "metadata": {"name": name},
            "spec": {
                "model": {"uri": "hf://org/model", "servedName": served},
                "engine": {"name": "vllm"},
                "cost": {"perGPUHour": price},
            },
        }
    )


def checksum(deployment: dict[str, Any]) -> str:
    return str(deployment["spec"]["template"]["metadata"]["annotations"][CHECKSUM_ANNOTATION])


@settings(max_examples=60, deadline=None)
@given(policies_in("gateway"))
def test_a_new_policy_document_changes_the_configmap_but_not_the_deployment(
    rp: RoutingPolicy,
) -> None:
    names = named_model_deployments(rp)
    before = render_routing_policy(rp, router_config(rp, {}))
    found = {n: model_deployment(n, f"{n}-served", 1.5) for n in names}
    after = render_routing_policy(rp, router_config(rp, found))
    assert by_kind(before, "Deployment") == by_kind(after, "Deployment")
    if names:  # the ModelDeployments appeared: the document names their Services now
        assert by_kind(before, "ConfigMap") != by_kind(after, "ConfigMap")


def _edit_rules(doc: dict[str, Any]) -> None:
    spec = doc["spec"]
    spec["rules"] = [{"name": "long", "tier": "tier-0", "match": {"minPromptTokens": 900}}]
    spec["fallback"] = {"onOverload": "reject"}
    spec["balancing"] = {"policy": "least-load"}
    spec["allowTierPinning"] = True


@settings(max_examples=60, deadline=None)
@given(routing_policy_docs())
def test_rules_fallback_and_balancing_changes_do_not_roll_pods(doc: dict[str, Any]) -> None:
    doc["spec"]["router"]["mode"] = "gateway"
    rp = RoutingPolicy.model_validate(doc)
    _edit_rules(doc)
    edited = RoutingPolicy.model_validate(doc)
    before = render_routing_policy(rp, router_config(rp, {}))
    after = render_routing_policy(edited, router_config(edited, {}))
    assert by_kind(before, "Deployment") == by_kind(after, "Deployment")
    assert by_kind(before, "ConfigMap") != by_kind(after, "ConfigMap")


def _render_three_tier(
    edit: dict[str, Any], chosen: RouterRenderSettings | None = None
) -> dict[str, Any]:
    inputs = load_inputs(EXAMPLES / "03-three-tier-routing")
    raw = inputs.policy.model_dump(mode="json", by_alias=True, exclude_none=True)
    router = raw["spec"]["router"]
    router.update(edit.get("router", {}))
    if "extra_tier" in edit:
        raw["spec"]["tiers"].append(edit["extra_tier"])
    rp = RoutingPolicy.model_validate(raw)
    chosen = chosen or RouterRenderSettings(image="ghcr.io/tierwise/tierwise:1")
    config = router_config(rp, {md.metadata.name: md for md in inputs.deployments})
    return by_kind(render_routing_policy(rp, config, settings=chosen), "Deployment")


NEW_SECRET_TIER = {
    "name": "second-provider",
    "backends": [
        {
            "external": {
                "baseURL": "https://api.other.example/v1",
                "model": "m",
                "apiKeySecretRef": {"name": "other-key", "key": "api-key"},
            }
        }
    ],
}


@pytest.mark.parametrize(
    ("edit", "chosen"),
    [
        ({"router": {"image": "registry.example.com/router:2"}}, None),
        ({"router": {"port": 9090}}, None),
        ({"extra_tier": NEW_SECRET_TIER}, None),
        ({"router": {"auth": {"apiKeysSecretRef": {"name": "clients", "key": "keys"}}}}, None),
        ({}, RouterRenderSettings(image="ghcr.io/tierwise/tierwise:2")),
        ({}, RouterRenderSettings(image="ghcr.io/tierwise/tierwise:1", shutdown_grace_seconds=50)),
    ],
    ids=["image", "port", "new-secret", "client-auth", "operator-image", "shutdown-grace"],
)
def test_startup_inputs_change_the_checksum(
    edit: dict[str, Any], chosen: RouterRenderSettings | None
) -> None:
    assert checksum(_render_three_tier(edit, chosen)) != checksum(_render_three_tier({}))


def test_replicas_and_resources_change_the_deployment_but_not_the_checksum() -> None:
    """Both are applied by the Deployment controller itself (scaling, a new pod spec); the
    router does not read them, so they are not startup inputs of its own."""
    base = _render_three_tier({})
    scaled = _render_three_tier({"router": {"replicas": 5, "resources": {"cpu": "2"}}})
    assert scaled != base
    assert checksum(scaled) == checksum(base)
