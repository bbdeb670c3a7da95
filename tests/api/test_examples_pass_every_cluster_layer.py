"""The checked-in CRDs accept every example and reject the invalid ones at the right layer.

Each valid example must pass the models, the generated OpenAPI schema, list-map key
uniqueness and every CEL rule (evaluated offline). Each invalid example must be refused by
the layer the table names, so a CEL typo or a lost constraint fails here, not on a cluster.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml
from api_cluster_layer import (
    REPO,
    apply_defaults,
    cluster_rejections,
    evaluate_rules,
    load_crd_schemas,
)

from tierwise.api.documents import KINDS, validate_document

EXAMPLES = REPO / "examples"
VALID_FILES = sorted(p for p in EXAMPLES.glob("[0-9]*/*.yaml"))
INVALID_DIR = EXAMPLES / "invalid"

# Which server-side layer refuses each invalid example, and a piece of what it says.
# None: only the models (``tierwise validate``, later the webhook) catch it.
CLUSTER_LAYER: dict[str, tuple[str, str] | None] = {
    "01-unknown-engine": ("schema", "is not one of"),
    "02-bad-uri-scheme": ("schema", "does not match"),
    "03-tp-gpu-mismatch": ("cel", "multiple of engine.tensorParallelSize"),
    "04-min-greater-than-max": ("cel", "min must not exceed max"),
    "05-target-outside-range": ("cel", "target must lie between min and max"),
    "06-unknown-field-typo": ("unknown-field", "spec.engine.tensorParalelSize"),
    "07-bad-quantity": ("schema", "'64GB' does not match"),
    "08-bad-duration": ("schema", "'15 seconds' does not match"),
    "09-prometheus-without-url": ("cel", "source prometheus needs prometheusURL"),
    "10-duplicate-tier-names": ("list-map", ".spec.tiers[1]"),
    "11-backend-both-targets": ("cel", "needs exactly one of modelDeployment or external"),
    "12-backend-no-target": ("cel", "needs exactly one of modelDeployment or external"),
    "13-external-without-secret": ("schema", "'apiKeySecretRef' is a required property"),
    "14-inline-api-key": ("unknown-field", "external.apiKey"),
    "15-rule-missing-tier": ("cel", "every rule's tier must name a tier"),
    "16-default-tier-missing": ("cel", "defaultTier must name a tier"),
    "17-category-without-classifier": ("cel", "match.category must name a category"),
    "18-invalid-regex": None,  # RE2 syntax needs the webhook; CEL cannot compile a regex
    "19-negative-price": ("schema", "less than the minimum of 0"),
    "20-empty-tiers": ("schema", "should be non-empty"),
    "23-stale-after-below-interval": ("cel", "staleAfter must be at least"),
    "24-env-value-and-secret": ("cel", "value and secretKeyRef are both set"),
    "25-rule-without-condition": ("cel", "a rule needs at least one condition"),
    "26-duplicate-backend-in-tier": None,  # the validating webhook refuses it
    "27-managed-engine-arg": None,  # the validating webhook refuses it (engine flag table)
    "30-quality-rule-without-tier-classifier": ("cel", "needs spec.classifier.tierQuality"),
    "31-tier-quality-two-sources": ("cel", "exactly one of configMap or path"),
}
NOT_A_RESOURCE = {"21-malformed-yaml", "22-unknown-kind"}


@pytest.fixture(scope="module")
def schemas() -> dict[str, dict[str, Any]]:
    return load_crd_schemas()


def _resources(path: Path) -> list[dict[str, Any]]:
    docs = [d for d in yaml.safe_load_all(path.read_text(encoding="utf-8")) if d]
    return [d for d in docs if d.get("kind") in KINDS]


def test_every_example_folder_has_a_readme_and_a_resource() -> None:
    folders = sorted(p for p in EXAMPLES.iterdir() if p.is_dir() and p.name != "invalid")
    assert len(folders) >= 3
    for folder in folders:
        assert (folder / "README.md").is_file(), folder
        assert any(_resources(p) for p in folder.glob("*.yaml")), folder


@pytest.mark.parametrize("path", VALID_FILES, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_valid_example_passes_models_schema_and_cel(
    path: Path, schemas: dict[str, dict[str, Any]]
) -> None:
    for raw in _resources(path):
        assert validate_document(raw).issues == []
        assert cluster_rejections(schemas[raw["kind"]], raw) == {
            "unknown-field": [],
            "schema": [],
            "list-map": [],
            "cel": [],
        }
        stored = apply_defaults(schemas[raw["kind"]], raw)
        assert list(evaluate_rules(schemas[raw["kind"]], stored)), "no rule was evaluated"


def test_table_covers_every_invalid_example() -> None:
    stems = {p.stem for p in INVALID_DIR.glob("*.yaml")}
    assert stems == set(CLUSTER_LAYER) | NOT_A_RESOURCE


@pytest.mark.parametrize(("stem", "expected"), sorted(CLUSTER_LAYER.items()))
def test_invalid_example_is_refused_by_its_layer(
    stem: str, expected: tuple[str, str] | None, schemas: dict[str, dict[str, Any]]
) -> None:
    (raw,) = _resources(INVALID_DIR / f"{stem}.yaml")
    rejections = cluster_rejections(schemas[raw["kind"]], raw)
    if expected is None:
        assert not any(rejections.values()), "now caught by the CRD: update the table and docs"
        return
    layer, text = expected
    assert any(text in message for message in rejections[layer]), rejections
