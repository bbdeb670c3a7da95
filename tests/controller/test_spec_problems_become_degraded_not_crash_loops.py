"""Spec errors the schema cannot catch: a Degraded condition naming the field, an event,
no child touched, and the right kopf verdict (permanent, or retry for a missing object)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import kopf
import pytest
from controller_helpers import md_body

from tierwise.controller.children import Identity
from tierwise.controller.errors import raise_for_plan
from tierwise.controller.plan import Observed, Outcome, plan_reconcile
from tierwise.manifests import render_model_deployment

NOW = datetime(2026, 1, 2, tzinfo=UTC)
HF = "hf://Qwen/Qwen2.5-0.5B"


@pytest.mark.parametrize(
    ("spec", "missing", "field", "reason", "outcome"),
    [
        (
            {"model": {"uri": HF}, "engine": {"name": "vllm", "args": ["--port", "9000"]}},
            set(),
            "spec.engine.args[0]",
            "InvalidSpec",
            Outcome.INVALID,
        ),
        (
            {"model": {"uri": HF}, "engine": {"name": "vllm"}, "replicas": {"min": 3, "max": 1}},
            set(),
            "spec.replicas.min",
            "InvalidSpec",
            Outcome.INVALID,
        ),
        (
            {"model": {"uri": HF}, "engine": {"name": "vllm"}, "bogus": "ünïcode"},
            set(),
            "spec.bogus",
            "InvalidSpec",
            Outcome.INVALID,
        ),
        (
            {
                "model": {"uri": HF, "tokenSecretRef": {"name": "hf", "key": "token"}},
                "engine": {"name": "vllm"},
            },
            {Identity("Secret", "hf")},
            "spec.model.tokenSecretRef.name",
            "MissingReference",
            Outcome.WAITING,
        ),
        (
            {"model": {"uri": "pvc://weights/qwen"}, "engine": {"name": "sglang"}},
            {Identity("PersistentVolumeClaim", "weights")},
            "spec.model.uri",
            "MissingReference",
            Outcome.WAITING,
        ),
        (
            {
                "model": {"uri": HF},
                "engine": {
                    "name": "vllm",
                    "env": [
                        {"name": "A", "value": "1"},
                        {"name": "KEY", "secretKeyRef": {"name": "k", "key": "v"}},
                    ],
                },
            },
            {Identity("Secret", "k")},
            "spec.engine.env[1].secretKeyRef.name",
            "MissingReference",
            Outcome.WAITING,
        ),
    ],
)
def test_problem_is_reported_on_status_and_in_an_event(
    spec: dict[str, Any], missing: set[Identity], field: str, reason: str, outcome: Outcome
) -> None:
    body = md_body(spec=spec)
    plan = plan_reconcile(
        body, Observed(missing=frozenset(missing)), render=render_model_deployment, now=NOW
    )
    assert plan.applies == ()
    assert plan.deletes == ()
    assert plan.outcome is outcome
    assert plan.status is not None
    assert plan.status["phase"] == "Failed"
    degraded = next(c for c in plan.status["conditions"] if c["type"] == "Degraded")
    assert (degraded["status"], degraded["reason"]) == ("True", reason)
    assert field in degraded["message"]
    warnings = [e for e in plan.events if e.type.value == "Warning" and e.reason == reason]
    assert warnings
    assert field in warnings[0].message


def test_reporting_the_same_problem_again_writes_nothing() -> None:
    body = md_body(spec={"model": {"uri": HF}, "engine": {"name": "vllm", "args": ["--port=1"]}})
    first = plan_reconcile(body, Observed(), render=render_model_deployment, now=NOW)
    body["status"] = first.status
    again = plan_reconcile(body, Observed(), render=render_model_deployment, now=NOW)
    assert again.writes == 0


def test_invalid_spec_is_permanent_and_missing_reference_retries_later() -> None:
    bad = md_body(spec={"model": {"uri": HF}, "engine": {"name": "vllm", "args": ["--port=1"]}})
    with pytest.raises(kopf.PermanentError, match=r"spec\.engine\.args\[0\]"):
        raise_for_plan(plan_reconcile(bad, Observed(), render=render_model_deployment, now=NOW))
    waiting = md_body(spec={"model": {"uri": "pvc://w/x"}, "engine": {"name": "vllm"}})
    observed = Observed(missing=frozenset({Identity("PersistentVolumeClaim", "w")}))
    with pytest.raises(kopf.TemporaryError) as caught:
        raise_for_plan(plan_reconcile(waiting, observed, render=render_model_deployment, now=NOW))
    assert caught.value.delay
    assert caught.value.delay > 0
