"""Shared builders for the RoutingPolicy controller tests: bodies, a fake apply, facts."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from controller_helpers import merge

from tierwise.api.model_deployment import ModelDeployment
from tierwise.controller.children import Identity, identity_of
from tierwise.controller.plan import Plan
from tierwise.controller.policy_plan import PolicyObserved
from tierwise.controller.policy_status import ModelFacts, PolicyFacts, RouterFacts

POLICY_UID = "0d3c9a1e-0000-4000-8000-0000000000aa"
CANARY_KEY = "sk-canary-3f9c1d7e-never-in-any-object"


def policy_spec(mode: str = "gateway", replicas: int = 2) -> dict[str, Any]:
    return {
        "tiers": [
            {"name": "small", "backends": [{"modelDeployment": "small-llm"}]},
            {"name": "mid", "backends": [{"modelDeployment": "mid-llm"}]},
            {
                "name": "frontier",
                "backends": [
                    {
                        "external": {
                            "baseURL": "https://api.example/v1",
                            "model": "big",
                            "apiKeySecretRef": {"name": "frontier-key", "key": "api-key"},
                        }
                    }
                ],
                "price": {"inputPerMillionTokens": 2.0, "outputPerMillionTokens": 8.0},
            },
        ],
        "rules": [{"name": "code", "tier": "mid", "match": {"keywords": ["def "]}}],
        "router": {"mode": mode, "replicas": replicas},
    }


def policy_body(
    name: str = "three",
    *,
    spec: Mapping[str, Any] | None = None,
    generation: int = 1,
    status: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    body: dict[str, Any] = {
        "apiVersion": "tierwise.dev/v1alpha1",
        "kind": "RoutingPolicy",
        "metadata": {
            "name": name,
            "namespace": "models",
            "uid": POLICY_UID,
            "generation": generation,
        },
        "spec": dict(spec or policy_spec()),
    }
    if status is not None:
        body["status"] = dict(status)
    return body


def model(name: str, *, served: str | None = None, gpus_per_hour: float = 1.5) -> ModelDeployment:
    spec: dict[str, Any] = {
        "model": {"uri": f"hf://org/{name}"},
        "engine": {"name": "vllm"},
        "cost": {"perGPUHour": gpus_per_hour},
    }
    if served is not None:
        spec["model"]["servedName"] = served
    return ModelDeployment.model_validate(
        {"metadata": {"name": name, "namespace": "models"}, "spec": spec}
    )


def facts(
    *,
    models: Mapping[str, ModelFacts] | None = None,
    missing_secrets: frozenset[str] = frozenset(),
    router: RouterFacts | None = None,
) -> PolicyFacts:
    return PolicyFacts(
        models=dict(
            models
            if models is not None
            else {"small-llm": ModelFacts("Ready", 1), "mid-llm": ModelFacts("Ready", 1)}
        ),
        missing_secrets=missing_secrets,
        router=router or RouterFacts(wanted=2, ready=2, exists=True),
    )


def simulate(
    body: dict[str, Any], observed: PolicyObserved, plan: Plan
) -> tuple[dict[str, Any], PolicyObserved]:
    """The body and children after ``plan`` ran against a create-or-merge server."""
    children: dict[Identity, Mapping[str, Any]] = dict(observed.children)
    for apply in plan.applies:
        ident = identity_of(apply.obj)
        children[ident] = merge(dict(children.get(ident) or {}), apply.obj)
    for ident in plan.deletes:
        children.pop(ident)
    if plan.status is not None:
        body = {**body, "status": merge(body.get("status") or {}, plan.status)}
    return body, PolicyObserved(
        children=children,
        deployments=observed.deployments,
        facts=observed.facts,
        sidecar_service_accounts=observed.sidecar_service_accounts,
        pod_monitor=observed.pod_monitor,
    )
