"""The validating webhook refuses, over real HTTPS, what the CRD's CEL cannot check, with
the same lines ``tierwise validate`` prints; valid examples are admitted."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml
from webhook_harness import Webhooks

EXAMPLES = Path(__file__).parents[2] / "examples"
RESOURCES = {
    "ModelDeployment": (
        ("tierwise.dev", "v1alpha1", "modeldeployments"),
        "validate-modeldeployment",
    ),
    "RoutingPolicy": (("tierwise.dev", "v1alpha1", "routingpolicies"), "validate-routingpolicy"),
}
# The invalid examples only the models (not the CRD schema or CEL) refuse.
WEBHOOK_ONLY = ["18-invalid-regex", "26-duplicate-backend-in-tier", "27-managed-engine-arg"]


def _documents(path: Path) -> list[dict[str, Any]]:
    return [d for d in yaml.safe_load_all(path.read_text(encoding="utf-8")) if d]


@pytest.mark.parametrize("name", WEBHOOK_ONLY)
def test_invalid_example_is_refused_with_its_expected_message(
    webhooks: Webhooks, name: str
) -> None:
    (doc,) = _documents(EXAMPLES / "invalid" / f"{name}.yaml")
    resource, handler = RESOURCES[doc["kind"]]
    answer = webhooks.review(handler, doc, resource=resource)["response"]
    assert answer["allowed"] is False
    assert answer["status"]["code"] == 422
    for line in (EXAMPLES / "invalid" / f"{name}.expected").read_text().splitlines():
        kind_name, _, issue = line.partition(": ")
        assert kind_name in answer["status"]["message"]
        assert issue in answer["status"]["message"]


@pytest.mark.parametrize(
    "path", sorted(EXAMPLES.glob("[0-9]*/*.yaml")), ids=lambda p: f"{p.parent.name}/{p.name}"
)
def test_every_valid_example_is_admitted(webhooks: Webhooks, path: Path) -> None:
    for doc in _documents(path):
        if doc.get("kind") not in RESOURCES:
            continue
        resource, handler = RESOURCES[doc["kind"]]
        for operation in ("CREATE", "UPDATE"):
            answer = webhooks.review(handler, doc, resource=resource, operation=operation)
            assert answer["response"]["allowed"] is True, answer
