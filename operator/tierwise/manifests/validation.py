"""Every check a custom resource must pass before the operator can act on it.

Why it exists: ``tierwise validate`` (offline), the validating admission webhook and the
reconcile's status condition must refuse the same things with the same words. The API
models catch schema and cross-field errors (a regex that does not compile, a backend named
twice in a tier); the engines catch arguments that collide with what Tierwise manages. CEL
in the CRD catches most of the former on the API server already; what it cannot (compiling
a regex, the managed-flag table) ends here.
"""

from __future__ import annotations

from typing import Any

from tierwise.api.documents import Document, validate_document
from tierwise.api.errors import SpecIssue
from tierwise.api.model_deployment import ModelDeployment
from tierwise.engines.registry import engine_for


def semantic_issues(doc: Document) -> list[SpecIssue]:
    """Issues beyond the models' own: engine arguments Tierwise manages."""
    if not isinstance(doc.resource, ModelDeployment):
        return []
    md = doc.resource
    return [
        SpecIssue(i.path, i.message)
        for i in engine_for(md.spec.engine.name).check_args(md.spec.engine.args)
    ]


def check_resource(raw: Any, *, source: str = "<input>", index: int = 0) -> Document:
    """Validate one document fully; ``doc.issues`` lists everything to fix."""
    doc = validate_document(raw, source=source, index=index)
    if doc.resource is not None and not doc.issues:
        doc.issues.extend(semantic_issues(doc))
    return doc
