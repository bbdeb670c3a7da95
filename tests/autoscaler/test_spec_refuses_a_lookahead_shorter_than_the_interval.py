"""A ``scaleUpLookahead`` shorter than the decision interval has no two readings to measure
growth between: refused by the models and by the CRD's CEL rule, naming the field and the
fix; ``0s`` (off), unset (the cold start) and anything from the interval up are accepted."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from tierwise.api.model_deployment import AutoscalingSpec

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "api"))
from api_cluster_layer import cluster_rejections, load_crd_schemas

FIX = "make it at least the interval, or 0s to turn the trend off"


def deployment(autoscaling: dict[str, Any]) -> dict[str, Any]:
    return {
        "apiVersion": "tierwise.dev/v1alpha1",
        "kind": "ModelDeployment",
        "metadata": {"name": "m", "namespace": "ns"},
        "spec": {
            "model": {"uri": "hf://Qwen/Qwen3-8B"},
            "engine": {"name": "vllm"},
            "autoscaling": autoscaling,
        },
    }


@pytest.mark.parametrize(
    "fields",
    [
        {"scaleUpLookahead": "10s"},
        {"scaleUpLookahead": "1m", "interval": "2m"},
        {"scaleUpLookahead": "500ms"},
    ],
)
def test_a_lookahead_inside_one_interval_is_refused(fields: dict[str, str]) -> None:
    with pytest.raises(ValidationError, match=FIX) as caught:
        AutoscalingSpec.model_validate(fields)
    assert "scaleUpLookahead" in str(caught.value)
    schema = load_crd_schemas()["ModelDeployment"]
    rejected = cluster_rejections(schema, deployment(fields))["cel"]
    assert any(FIX in message for message in rejected), rejected


@pytest.mark.parametrize(
    "fields",
    [
        {},
        {"scaleUpLookahead": "0s"},
        {"scaleUpLookahead": "15s"},
        {"scaleUpLookahead": "10m", "interval": "30s"},
        {"coldStart": "5s"},
    ],
)
def test_off_unset_or_at_least_the_interval_is_accepted(fields: dict[str, str]) -> None:
    AutoscalingSpec.model_validate(fields)
    schema = load_crd_schemas()["ModelDeployment"]
    assert cluster_rejections(schema, deployment(fields))["cel"] == []
