"""Planning twice against what the first plan produced writes nothing (pure plan)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from controller_helpers import UID, md_body, ready, simulate_apply
from hypothesis import given, settings
from hypothesis import strategies as st

from tierwise.controller.children import Identity
from tierwise.controller.plan import AUTOSCALER_FIELD_MANAGER, Observed, plan_reconcile
from tierwise.manifests import render_model_deployment

NOW = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
BASE = {"model": {"uri": "hf://Qwen/Qwen2.5-0.5B"}, "engine": {"name": "vllm"}}


def _spec(**extra: Any) -> dict[str, Any]:
    return {**BASE, **extra}


def _converge(body: dict[str, Any], observed: Observed, rounds: int = 4) -> tuple[Any, Observed]:
    """Run plans until one is empty; fail if that takes more than ``rounds``."""
    for _ in range(rounds):
        plan = plan_reconcile(body, observed, render=render_model_deployment, now=NOW)
        if plan.writes == 0:
            return body, observed
        body, observed = simulate_apply(body, observed, plan)
    raise AssertionError(f"no convergence in {rounds} rounds: {plan}")


@pytest.mark.parametrize(
    ("spec", "kinds"),
    [
        (_spec(), {"Deployment", "Service"}),
        (_spec(replicas={"min": 1, "max": 3}), {"Deployment", "Service", "PodDisruptionBudget"}),
        (_spec(monitoring={"podMonitor": True}), {"Deployment", "Service", "PodMonitor"}),
        (
            _spec(model={"uri": "hf://Qwen/Qwen2.5-0.5B", "servedName": "qwen:small"}),
            {"Deployment", "Service"},
        ),
        (
            _spec(engine={"name": "sglang", "args": ["--log-level", "débogage-日本"]}),
            {"Deployment", "Service"},
        ),
    ],
)
def test_first_plan_creates_children_and_second_plan_is_empty(
    spec: dict[str, Any], kinds: set[str]
) -> None:
    body = md_body(spec=spec)
    first = plan_reconcile(body, Observed(), render=render_model_deployment, now=NOW)
    assert {a.obj["kind"] for a in first.applies} == kinds
    assert all(a.created for a in first.applies if a.manager != AUTOSCALER_FIELD_MANAGER)
    assert all(
        ref["uid"] == UID and ref["controller"]
        for a in first.applies
        if a.manager != AUTOSCALER_FIELD_MANAGER
        for ref in a.obj["metadata"]["ownerReferences"]
    )
    body, observed = simulate_apply(body, Observed(), first)
    second = plan_reconcile(body, observed, render=render_model_deployment, now=NOW)
    assert (second.applies, second.deletes) == ((), ())  # only the phase moves on
    body, observed = simulate_apply(body, observed, second)
    third = plan_reconcile(body, observed, render=render_model_deployment, now=NOW)
    assert third.writes == 0, third


def test_a_later_clock_alone_does_not_rewrite_status() -> None:
    body, observed = _converge(md_body(), Observed())
    later = datetime(2027, 1, 1, tzinfo=UTC)
    assert plan_reconcile(body, observed, render=render_model_deployment, now=later).writes == 0


def test_spec_change_updates_children_in_place_and_bumps_observed_generation() -> None:
    body, observed = _converge(md_body(), Observed())
    changed = md_body(spec=_spec(engine={"name": "vllm", "contextLength": 4096}), generation=2)
    changed["status"] = body["status"]
    plan = plan_reconcile(changed, observed, render=render_model_deployment, now=NOW)
    assert [(a.obj["kind"], a.created) for a in plan.applies] == [("Deployment", False)]
    assert plan.deletes == ()
    assert plan.status is not None
    assert plan.status["observedGeneration"] == 2
    assert [e.reason for e in plan.events] == ["Updated"]


def test_children_no_longer_wanted_are_deleted() -> None:
    body, observed = _converge(md_body(spec=_spec(replicas={"min": 1, "max": 3})), Observed())
    smaller = md_body(spec=_spec(replicas={"min": 1, "max": 1}), generation=2)
    smaller["status"] = body["status"]
    plan = plan_reconcile(smaller, observed, render=render_model_deployment, now=NOW)
    assert plan.deletes == (Identity("PodDisruptionBudget", "qwen"),)
    assert "Deleted" in [e.reason for e in plan.events]


def test_children_of_another_owner_are_never_deleted() -> None:
    body, observed = _converge(md_body(), Observed())
    stranger = {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": "other", "ownerReferences": [{"uid": "x", "controller": True}]},
    }
    children = {**observed.children, Identity("Service", "other"): stranger}
    plan = plan_reconcile(
        body, Observed(children=children), render=render_model_deployment, now=NOW
    )
    assert plan.deletes == ()


def test_someone_elses_edit_of_an_applied_field_is_reverted() -> None:
    body, observed = _converge(md_body(), Observed())
    ident = Identity("Service", "qwen")
    edited = dict(observed.children[ident])
    edited["spec"] = {**edited["spec"], "type": "NodePort"}
    children = {**observed.children, ident: edited}
    plan = plan_reconcile(
        body, Observed(children=children), render=render_model_deployment, now=NOW
    )
    assert [a.obj["kind"] for a in plan.applies] == ["Service"]


@settings(max_examples=25, deadline=None)
@given(
    low=st.integers(min_value=0, max_value=5),
    extra=st.integers(min_value=0, max_value=5),
    enabled=st.booleans(),
    mode=st.sampled_from(["tierwise", "advisory", "external"]),
)
def test_any_replica_setup_converges(low: int, extra: int, enabled: bool, mode: str) -> None:
    spec = _spec(
        replicas={"min": low, "max": max(1, low + extra)},
        autoscaling={"enabled": enabled, "mode": mode},
    )
    body, observed = _converge(md_body(spec=spec), Observed())
    deployment = next(o for i, o in observed.children.items() if i.kind == "Deployment")
    body, observed = _converge(
        body,
        Observed(children={**observed.children, Identity("Deployment", "qwen"): ready(deployment)}),
    )
    assert plan_reconcile(body, observed, render=render_model_deployment, now=NOW).writes == 0
    assert body["status"]["observedGeneration"] == 1
