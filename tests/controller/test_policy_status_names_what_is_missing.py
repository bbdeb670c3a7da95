"""A RoutingPolicy's status says which tiers can serve and names what to fix (pure)."""

from __future__ import annotations

import hashlib
from typing import Any

import pytest

from tierwise.api.routing_policy import RoutingPolicy
from tierwise.controller.policy_status import (
    ArtifactFacts,
    ModelFacts,
    PolicyFacts,
    PolicyReason,
    RouterFacts,
    policy_conditions,
    reference_problems,
    tier_statuses,
)

READY_ROUTER = RouterFacts(wanted=2, ready=2, exists=True)


def _policy(mode: str = "gateway", auth: bool = False) -> RoutingPolicy:
    router: dict[str, Any] = {"mode": mode}
    if auth:
        router["auth"] = {"apiKeysSecretRef": {"name": "clients", "key": "keys"}}
    return RoutingPolicy.model_validate(
        {
            "metadata": {"name": "three", "namespace": "models"},
            "spec": {
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
                                    "apiKeySecretRef": {"name": "frontier-key", "key": "k"},
                                }
                            }
                        ],
                    },
                ],
                "router": router,
            },
        }
    )


def _facts(
    models: dict[str, ModelFacts] | None = None,
    missing: frozenset[str] = frozenset(),
    router: RouterFacts = READY_ROUTER,
) -> PolicyFacts:
    if models is None:
        models = {"small-llm": ModelFacts("Ready", 2), "mid-llm": ModelFacts("Ready", 1)}
    return PolicyFacts(models=models, missing_secrets=missing, router=router)


def _conditions(rp: RoutingPolicy, facts: PolicyFacts) -> dict[str, Any]:
    tiers = tier_statuses(rp, facts)
    problems = reference_problems(rp, facts)
    return {c.type.value: c for c in policy_conditions(rp, tiers, facts.router, problems)}


def test_everything_present_and_ready_is_ready_and_not_degraded() -> None:
    rp = _policy()
    conditions = _conditions(rp, _facts())
    assert conditions["Ready"].status == "True"
    assert conditions["Degraded"].status == "False"
    assert conditions["Progressing"].status == "False"
    tiers = tier_statuses(rp, _facts())
    assert [(t["name"], t["ready"], t["backends"][0]["endpoints"]) for t in tiers] == [
        ("small", True, 2),
        ("mid", True, 1),
        ("frontier", True, 1),
    ]


def test_a_missing_model_deployment_degrades_and_names_the_field_and_the_name() -> None:
    rp = _policy()
    facts = _facts(models={"small-llm": ModelFacts("Ready", 1)})
    problems = reference_problems(rp, facts)
    assert [(p.field, p.reason) for p in problems] == [
        ("spec.tiers[1].backends[0].modelDeployment", PolicyReason.MISSING_MODEL_DEPLOYMENT)
    ]
    assert "'mid-llm' does not exist" in problems[0].message
    conditions = _conditions(rp, facts)
    assert conditions["Degraded"].status == "True"
    assert conditions["Degraded"].reason is PolicyReason.MISSING_MODEL_DEPLOYMENT
    assert conditions["Ready"].status == "False"
    # the tiers that work are still reported as able to serve
    ready = {t["name"]: t["ready"] for t in tier_statuses(rp, facts)}
    assert ready == {"small": True, "mid": False, "frontier": True}


@pytest.mark.parametrize(
    ("missing", "field"),
    [
        ("frontier-key", "spec.tiers[2].backends[0].external.apiKeySecretRef.name"),
        ("clients", "spec.router.auth.apiKeysSecretRef.name"),
    ],
)
def test_a_missing_secret_names_the_field_pointing_at_it(missing: str, field: str) -> None:
    rp = _policy(auth=True)
    problems = reference_problems(rp, _facts(missing=frozenset({missing})))
    assert [(p.field, p.reason) for p in problems] == [(field, PolicyReason.MISSING_SECRET)]
    assert f"Secret {missing!r} does not exist" in problems[0].message


def test_a_model_scaled_to_zero_still_counts_as_able_to_serve() -> None:
    rp = _policy()
    facts = _facts(
        models={"small-llm": ModelFacts("ScaledToZero", 0), "mid-llm": ModelFacts("Ready", 1)}
    )
    small = tier_statuses(rp, facts)[0]
    assert small["ready"] is True
    assert "wakes it on demand" in small["backends"][0]["message"]
    assert _conditions(rp, facts)["Ready"].status == "True"


def test_loading_backends_make_the_policy_progress_not_degrade() -> None:
    rp = _policy()
    facts = _facts(
        models={"small-llm": ModelFacts("Loading", 0), "mid-llm": ModelFacts("Ready", 1)}
    )
    conditions = _conditions(rp, facts)
    assert conditions["Ready"].reason is PolicyReason.TIERS_NOT_READY
    assert conditions["Progressing"].reason is PolicyReason.BACKENDS_LOADING
    assert conditions["Degraded"].status == "False"


@pytest.mark.parametrize(
    ("router", "reason"),
    [
        (RouterFacts(), PolicyReason.CREATING),
        (RouterFacts(wanted=2, ready=1, exists=True), PolicyReason.ROLLING_OUT),
    ],
)
def test_a_router_not_fully_ready_keeps_the_policy_progressing(
    router: RouterFacts, reason: PolicyReason
) -> None:
    conditions = _conditions(_policy(), _facts(router=router))
    assert conditions["Ready"].status == "False"
    assert conditions["Ready"].reason is PolicyReason.ROUTER_NOT_READY
    assert conditions["Progressing"].reason is reason


def test_a_rollout_with_every_router_ready_serves_and_still_progresses() -> None:
    router = RouterFacts(wanted=2, ready=2, rolling=True, exists=True)
    conditions = _conditions(_policy(), _facts(router=router))
    assert conditions["Ready"].status == "True"
    assert conditions["Progressing"].reason is PolicyReason.ROLLING_OUT


def test_sidecar_mode_does_not_wait_for_a_router_deployment() -> None:
    conditions = _conditions(_policy(mode="sidecar"), _facts(router=RouterFacts()))
    assert conditions["Ready"].status == "True"


def test_a_failed_or_invalid_backend_is_a_degradation_not_a_missing_reference() -> None:
    rp = _policy()
    facts = _facts(
        models={
            "small-llm": ModelFacts("Failed", 0),
            "mid-llm": ModelFacts(None, 0, valid=False),
        }
    )
    problems = reference_problems(rp, facts)
    assert [p.reason for p in problems] == [PolicyReason.BACKEND_FAILED] * 2
    assert "'small-llm' failed" in problems[0].message
    assert "'mid-llm' has an invalid spec" in problems[1].message


def _calibrated(sha256: str | None) -> RoutingPolicy:
    rp = _policy()
    tier_quality: dict[str, Any] = {"configMap": {"name": "calibrated", "key": "model.json"}}
    if sha256 is not None:
        tier_quality["sha256"] = sha256
    spec = rp.spec.model_dump(by_alias=True, exclude_none=True)
    spec["classifier"] = {"tierQuality": tier_quality}
    spec["rules"] = [
        {"name": "cheap", "tier": "small", "match": {"minPredictedQuality": 0.7}},
    ]
    return RoutingPolicy.model_validate({"metadata": {"name": "three"}, "spec": spec})


ARTIFACT = b'{"kind": "TierQualityModel"}'
PIN = hashlib.sha256(ARTIFACT).hexdigest()


@pytest.mark.parametrize(
    ("artifact", "pin", "field", "says"),
    [
        (ArtifactFacts(exists=False), PIN, "configMap.name", "ConfigMap 'calibrated' does not"),
        (ArtifactFacts(exists=True), PIN, "configMap.key", "has no key 'model.json'"),
        (ArtifactFacts(exists=True, data=b"other"), PIN, "sha256", "not the pinned"),
    ],
)
def test_a_classifier_artifact_that_cannot_load_degrades_the_policy(
    artifact: ArtifactFacts, pin: str, field: str, says: str
) -> None:
    rp = _calibrated(pin)
    facts = PolicyFacts(
        models=_facts().models, missing_secrets=frozenset(), router=READY_ROUTER, artifact=artifact
    )
    (problem,) = reference_problems(rp, facts)
    assert problem.reason is PolicyReason.CLASSIFIER_UNAVAILABLE
    assert problem.field == f"spec.classifier.tierQuality.{field}"
    assert says in problem.message
    assert _conditions(rp, facts)["Degraded"].status == "True"


@pytest.mark.parametrize("pin", [PIN, None])
def test_a_present_matching_artifact_is_no_problem(pin: str | None) -> None:
    facts = PolicyFacts(
        models=_facts().models,
        missing_secrets=frozenset(),
        router=READY_ROUTER,
        artifact=ArtifactFacts(exists=True, data=ARTIFACT),
    )
    assert reference_problems(_calibrated(pin), facts) == []
