"""Flux judges Tierwise objects without custom code: kstatus (the library Flux's
kustomize-controller and helm-controller use to wait) reads ``observedGeneration`` and the
``Reconciling``/``Stalled`` conditions. Its generic rules, from kubernetes-sigs/cli-utils
``pkg/kstatus/status/generic.go``, applied here to objects the operator really wrote."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from operator_scenario import Recording


def kstatus(obj: dict[str, Any]) -> str:
    """Current, InProgress, Failed or Terminating, as kstatus computes it for a custom
    resource (whose kind has no built-in rule)."""
    meta, status = obj["metadata"], obj.get("status") or {}
    if meta.get("deletionTimestamp"):
        return "Terminating"
    observed, generation = status.get("observedGeneration"), meta.get("generation")
    if None not in (observed, generation) and observed != generation:
        return "InProgress"
    for condition in status.get("conditions") or []:
        if condition["type"] == "Reconciling" and condition["status"] == "True":
            return "InProgress"
        if condition["type"] == "Stalled" and condition["status"] == "True":
            return "Failed"
    return "Current"


@pytest.mark.parametrize(
    ("label", "expected"),
    [
        ("md-ready", "Current"),
        ("rp-ready", "Current"),
        ("md-scaled-to-zero", "Current"),
        ("md-invalid-spec", "Failed"),
        ("rp-sidecar-not-injected", "Failed"),
        ("rp-missing-model-deployment", "InProgress"),
    ],
)
def test_recorded_statuses(operator_recording: Recording, label: str, expected: str) -> None:
    assert kstatus(operator_recording.snapshots[label]) == expected


def test_a_spec_change_is_in_progress_until_observed(operator_recording: Recording) -> None:
    newer = copy.deepcopy(operator_recording.snapshots["rp-ready"])
    newer["metadata"]["generation"] += 1
    assert kstatus(newer) == "InProgress"


def test_every_status_carries_observed_generation(operator_recording: Recording) -> None:
    for label, obj in operator_recording.snapshots.items():
        status = obj["status"]
        assert status["observedGeneration"] == obj["metadata"]["generation"], label
        for condition in status["conditions"]:
            assert condition["observedGeneration"] == obj["metadata"]["generation"], label
