"""Every ModelDeployment under ``examples/`` renders, and its objects pass the schema."""

from __future__ import annotations

from pathlib import Path

import pytest
from render_helpers import HERE, validate_object

from tierwise.api.documents import expand_paths, load_documents
from tierwise.api.model_deployment import ModelDeployment
from tierwise.manifests import render_model_deployment

EXAMPLES = HERE.parent.parent / "examples"


def example_deployments() -> list[tuple[str, ModelDeployment]]:
    if not EXAMPLES.is_dir():
        return []
    found = []
    for path in expand_paths([str(EXAMPLES)]):
        for doc in load_documents(Path(path)):
            if isinstance(doc.resource, ModelDeployment):
                found.append((f"{path.parent.name}/{doc.name}", doc.resource))
    return found


@pytest.mark.parametrize(
    ("label", "md"),
    example_deployments()
    or [pytest.param("none", None, marks=pytest.mark.skip(reason="no examples/ yet"))],
)
def test_example_renders_to_valid_objects(label: str, md: ModelDeployment) -> None:
    objects = render_model_deployment(md, owner_uid="uid-1")
    assert objects, label
    for obj in objects:
        validate_object(obj)
