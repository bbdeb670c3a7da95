"""Spec errors the CRD schema cannot catch, each naming the field to change.

Three sources: the pydantic model (a cluster with an older or hand-edited CRD lets
through what the schema would reject), engine arguments that collide with what Tierwise
manages (the renderer's ``RenderError``, see :mod:`tierwise.controller.plan`), and
references to objects that must exist in the namespace (Secrets, claims).
The first two are permanent until the spec changes; a missing reference may be created
later, so the reconcile retries it with a delay.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import dataclass
from typing import Any

from pydantic import ValidationError

from tierwise.api.errors import issues_from
from tierwise.api.model_deployment import ModelDeployment
from tierwise.controller.children import Identity
from tierwise.controller.status import Problem, Reason


@dataclass(frozen=True)
class Reference:
    """An object the spec points at, and the field that points."""

    field: str
    kind: str
    name: str

    @property
    def identity(self) -> Identity:
        return Identity(self.kind, self.name)


def parse(body: Mapping[str, Any]) -> tuple[ModelDeployment | None, list[Problem]]:
    """The validated model, or the problems that make it invalid (never both)."""
    try:
        return ModelDeployment.model_validate(essence(body)), []
    except ValidationError as error:
        issues = issues_from(error, ModelDeployment)
        return None, [Problem(i.path, i.message) for i in issues]


def essence(body: Mapping[str, Any]) -> dict[str, Any]:
    """The parts of a custom resource its model validates (server-set metadata dropped)."""
    meta = body.get("metadata") or {}
    keep = ("name", "namespace", "labels", "annotations", "generation", "uid")
    return {
        "apiVersion": body.get("apiVersion"),
        "kind": body.get("kind"),
        "metadata": {k: meta[k] for k in keep if k in meta},
        "spec": body.get("spec"),
    }


def references(md: ModelDeployment) -> list[Reference]:
    """Every Secret and PersistentVolumeClaim the spec needs, with the field naming it."""
    refs: list[Reference] = []
    model = md.spec.model
    if model.token_secret_ref is not None:
        refs.append(
            Reference("spec.model.tokenSecretRef.name", "Secret", model.token_secret_ref.name)
        )
    for index, env in enumerate(md.spec.engine.env):
        if env.secret_key_ref is not None:
            field = f"spec.engine.env[{index}].secretKeyRef.name"
            refs.append(Reference(field, "Secret", env.secret_key_ref.name))
    scheme, _, rest = model.uri.partition("://")
    if scheme == "pvc":
        refs.append(Reference("spec.model.uri", "PersistentVolumeClaim", rest.split("/", 1)[0]))
    if model.cache is not None and model.cache.claim_name:
        field = "spec.model.cache.claimName"
        refs.append(Reference(field, "PersistentVolumeClaim", model.cache.claim_name))
    return refs


def missing_problems(refs: list[Reference], missing: Collection[Identity]) -> list[Problem]:
    return [
        Problem(
            ref.field,
            f"{ref.kind} {ref.name!r} does not exist in this namespace; create it or fix the name",
            Reason.MISSING_REFERENCE,
        )
        for ref in refs
        if ref.identity in missing
    ]


def plain(body: Mapping[str, Any]) -> dict[str, Any]:
    """kopf's live body view as a plain, detached dict."""
    return {key: _detach(value) for key, value in body.items()}


def _detach(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {k: _detach(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_detach(v) for v in value]
    return value
