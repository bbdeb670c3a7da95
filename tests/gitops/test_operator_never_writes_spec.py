"""GitOps tools see no drift: the operator never writes ``spec`` of a ModelDeployment or
RoutingPolicy. After reconciles, autoscaling up, down, to zero and back, a takeover by the
second replica and a mode switch (tests/operator_scenario.py), every object's spec is what
was applied, and no request the operator sent to either kind carried a spec: only metadata
(its finalizer and bookkeeping annotations) and the status subresource. The replica count
the autoscaler owns is the engine Deployment's ``spec.replicas`` (field manager
``tierwise-autoscaler``), which GitOps tools do not manage (docs/gitops.md)."""

from __future__ import annotations

from typing import Any

from operator_scenario import Recording

KINDS = ("/modeldeployments/", "/routingpolicies/")


def test_specs_are_what_was_applied(operator_recording: Recording) -> None:
    final = operator_recording.final_specs
    assert {("modeldeployments", "chat"), ("routingpolicies", "gateway")} <= final.keys()
    for key, spec in final.items():
        assert spec == operator_recording.applied_specs[key], key


def test_no_operator_request_writes_a_spec(operator_recording: Recording) -> None:
    writes = [
        call
        for call in operator_recording.operator_calls
        if call.method in ("PATCH", "PUT", "POST") and any(k in call.path for k in KINDS)
    ]
    assert any(call.path.endswith("/status") for call in writes)
    main = [call for call in writes if not call.path.endswith("/status")]
    assert main, "the operator sets its finalizer through the main resource"
    for call in main:
        assert _touched(call.body) <= {"apiVersion", "kind", "metadata"}, (call.path, call.body)
    for call in writes:
        if call.path.endswith("/status"):
            assert _touched(call.body) <= {"apiVersion", "kind", "metadata", "status"}


def _touched(body: Any) -> set[str]:
    """Top-level fields a merge patch (a dict) or a JSON patch (a list of operations) writes."""
    if isinstance(body, dict):
        return set(body)
    assert isinstance(body, list), body
    return {str(op["path"]).split("/")[1] for op in body if op["op"] != "test"}
