"""The RoutingPolicy plan: the router objects on the first pass, nothing on the second, the
document rewritten only when it changes, stale children deleted, bad specs status-only."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from policy_helpers import (
    CANARY_KEY,
    POLICY_UID,
    facts,
    model,
    policy_body,
    policy_spec,
    simulate,
)

from tierwise.controller.plan import Outcome
from tierwise.controller.policy_plan import TABLE_CHANGED, PolicyObserved, plan_policy
from tierwise.controller.policy_status import ModelFacts
from tierwise.controller.router_render import ManifestRouterRender

NOW = datetime(2026, 12, 2, 9, 0, 0, tzinfo=UTC)
RENDER = ManifestRouterRender()
GATEWAY_KINDS = {
    "ConfigMap",
    "ServiceAccount",
    "Role",
    "RoleBinding",
    "Deployment",
    "Service",
    "PodDisruptionBudget",
}


def _observed(**overrides: Any) -> PolicyObserved:
    base: dict[str, Any] = {
        "deployments": {"small-llm": model("small-llm"), "mid-llm": model("mid-llm")},
        "facts": facts(),
    }
    return PolicyObserved(**{**base, **overrides})


def _converge(body: dict[str, Any], observed: PolicyObserved) -> tuple[dict[str, Any], Any]:
    for _ in range(4):
        plan = plan_policy(body, observed, render=RENDER, now=NOW)
        if plan.writes == 0:
            return body, observed
        body, observed = simulate(body, observed, plan)
    raise AssertionError(f"no convergence: {plan}")


def test_first_plan_creates_the_gateway_router_and_the_second_is_empty() -> None:
    body, observed = policy_body(), _observed()
    first = plan_policy(body, observed, render=RENDER, now=NOW)
    assert {a.obj["kind"] for a in first.applies} == GATEWAY_KINDS
    assert all(a.created for a in first.applies)
    for apply in first.applies:
        (owner,) = apply.obj["metadata"]["ownerReferences"]
        assert (owner["kind"], owner["uid"], owner["controller"]) == (
            "RoutingPolicy",
            POLICY_UID,
            True,
        )
    assert [e.reason for e in first.events][:1] == ["Created"]
    assert TABLE_CHANGED in [e.reason for e in first.events]
    body, observed = simulate(body, observed, first)
    second = plan_policy(body, observed, render=RENDER, now=NOW)
    assert second.writes == 0, second


def test_status_reports_tiers_router_and_the_document_version() -> None:
    plan = plan_policy(policy_body(), _observed(), render=RENDER, now=NOW)
    status = plan.status
    assert status is not None
    assert status["readyTiers"] == "3/3"
    assert status["readyRouters"] == "2/2"
    assert status["endpoint"] == "http://three-router.models.svc:80/v1"
    config_map = next(a.obj for a in plan.applies if a.obj["kind"] == "ConfigMap")
    document = json.loads(config_map["data"]["policy.json"])
    assert status["tableVersion"] == document["version"]
    assert {c["type"]: c["status"] for c in status["conditions"]} == {
        "Ready": "True",
        "Progressing": "False",
        "Degraded": "False",
        "Reconciling": "False",
        "Stalled": "False",
    }


def test_a_served_name_or_price_change_rewrites_only_the_document() -> None:
    body, observed = _converge(policy_body(), _observed())
    renamed = PolicyObserved(
        children=observed.children,
        deployments={
            "small-llm": model("small-llm", served="qwen-small"),
            "mid-llm": model("mid-llm"),
        },
        facts=observed.facts,
    )
    plan = plan_policy(body, renamed, render=RENDER, now=NOW)
    assert [a.obj["kind"] for a in plan.applies] == ["ConfigMap"]
    document = json.loads(plan.applies[0].obj["data"]["policy.json"])
    assert document["backends"]["small-llm"]["servedModelName"] == "qwen-small"
    assert any(e.reason == TABLE_CHANGED for e in plan.events)


def test_readiness_changes_touch_status_only_never_the_document() -> None:
    body, observed = _converge(policy_body(), _observed())
    scaled = PolicyObserved(
        children=observed.children,
        deployments=observed.deployments,
        facts=facts(
            models={"small-llm": ModelFacts("Ready", 3), "mid-llm": ModelFacts("Ready", 1)}
        ),
    )
    plan = plan_policy(body, scaled, render=RENDER, now=NOW)
    assert plan.applies == ()
    assert plan.deletes == ()
    assert plan.status is not None
    assert plan.status["tiers"][0]["backends"][0]["endpoints"] == 3


def test_switching_to_sidecar_mode_deletes_the_gateway_workload() -> None:
    body, observed = _converge(policy_body(), _observed())
    body = {
        **body,
        "spec": policy_spec(mode="sidecar"),
        "metadata": {**body["metadata"], "generation": 2},
    }
    plan = plan_policy(body, observed, render=RENDER, now=NOW)
    deleted = {i.kind for i in plan.deletes}
    assert deleted == {
        "ServiceAccount",
        "Deployment",
        "Service",
        "PodDisruptionBudget",
        "RoleBinding",
    }
    assert plan.status is not None
    assert plan.status["endpoint"] == "http://localhost:8080/v1"


def test_an_invalid_spec_touches_no_child_and_says_what_to_fix() -> None:
    body, observed = _converge(policy_body(), _observed())
    bad = policy_spec()
    bad["rules"][0]["match"] = {"regex": "Traceback (most recent"}
    plan = plan_policy({**body, "spec": bad}, observed, render=RENDER, now=NOW)
    assert plan.outcome is Outcome.INVALID
    assert plan.applies == ()
    assert plan.deletes == ()
    assert plan.status is not None
    degraded = next(c for c in plan.status["conditions"] if c["type"] == "Degraded")
    assert degraded["reason"] == "InvalidSpec"
    assert "spec.rules[0].match.regex" in degraded["message"]


def test_a_missing_secret_waits_and_retries_but_a_missing_model_waits_for_its_event() -> None:
    secret = plan_policy(
        policy_body(), _observed(facts=facts(missing_secrets=frozenset({"frontier-key"}))),
        render=RENDER, now=NOW,
    )  # fmt: skip
    assert secret.outcome is Outcome.WAITING
    assert secret.retry_after
    gone = plan_policy(
        policy_body(),
        _observed(
            deployments={"small-llm": model("small-llm")},
            facts=facts(models={"small-llm": ModelFacts("Ready", 1)}),
        ),
        render=RENDER,
        now=NOW,
    )
    assert gone.outcome is Outcome.OK
    assert gone.status is not None
    degraded = next(c for c in gone.status["conditions"] if c["type"] == "Degraded")
    assert (degraded["status"], degraded["reason"]) == ("True", "MissingModelDeployment")
    config_map = next(a.obj for a in gone.applies if a.obj["kind"] == "ConfigMap")
    assert json.loads(config_map["data"]["policy.json"])["missing"] == ["mid-llm"]


@settings(max_examples=25, deadline=None)
@given(
    replicas=st.integers(1, 5),
    mode=st.sampled_from(["gateway", "sidecar"]),
    accounts=st.lists(st.sampled_from(["default", "app", "batch-jobs"]), max_size=3),
    pod_monitor=st.booleans(),
)
def test_any_policy_converges_in_one_round(
    replicas: int, mode: str, accounts: list[str], pod_monitor: bool
) -> None:
    observed = _observed(
        sidecar_service_accounts=tuple(sorted(set(accounts))), pod_monitor=pod_monitor
    )
    body = policy_body(spec=policy_spec(mode=mode, replicas=replicas))
    first = plan_policy(body, observed, render=RENDER, now=NOW)
    body, observed = simulate(body, observed, first)
    assert plan_policy(body, observed, render=RENDER, now=NOW).writes == 0


@pytest.mark.parametrize("mode", ["gateway", "sidecar"])
def test_no_key_value_reaches_any_planned_object_or_status(mode: str) -> None:
    plan = plan_policy(
        policy_body(spec=policy_spec(mode=mode)), _observed(), render=RENDER, now=NOW
    )
    text = json.dumps([a.obj for a in plan.applies]) + json.dumps(plan.status)
    text += json.dumps([e.message for e in plan.events])
    assert CANARY_KEY not in text
    assert "frontier-key" in text  # referenced by name only
