"""Every rendered object is valid for a recent Kubernetes release (strict schema: an unknown
or misspelt field fails), for the hand-written inputs and for generated specs."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from render_helpers import INPUTS, input_files, load_md, model_deployments, validate_object

from tierwise.api.model_deployment import ModelDeployment
from tierwise.manifests import render_model_deployment


@pytest.mark.parametrize("source", input_files(), ids=lambda p: p.stem)
@pytest.mark.parametrize("replicas", [None, 0, 3])
def test_input_renders_to_valid_objects(source: Path, replicas: int | None) -> None:
    objects = render_model_deployment(
        load_md(source), replicas=replicas, owner_uid="5f0c2b8e-8d2a-4a53-9d1e-0b7f1d2c3e4f"
    )
    for obj in objects:
        validate_object(obj)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(model_deployments())
def test_generated_specs_render_to_valid_objects(md: ModelDeployment) -> None:
    for obj in render_model_deployment(md, owner_uid="uid-1"):
        validate_object(obj)


def _with_typo(obj: dict[str, Any]) -> dict[str, Any]:
    broken = copy.deepcopy(obj)
    broken["spec"]["replicaz"] = 2
    return broken


@pytest.mark.parametrize("kind", ["Deployment", "Service", "PodDisruptionBudget", "PodMonitor"])
def test_the_validator_rejects_an_unknown_field(kind: str) -> None:
    """Guards the guard: a strict schema must notice a misspelt field in every kind."""
    objects = render_model_deployment(load_md(INPUTS / "sglang-tp4-h100.yaml"))
    (obj,) = [o for o in objects if o["kind"] == kind]
    with pytest.raises(Exception, match="replicaz"):
        validate_object(_with_typo(obj))
