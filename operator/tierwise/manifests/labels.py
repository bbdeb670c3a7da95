"""Names, labels, selectors and owner references shared by every child object.

Selectors are immutable on Deployments and PodDisruptionBudgets, so they hold only what
can never change for a ModelDeployment: its name, twice (``app.kubernetes.io/instance``
for generic tooling and ``tierwise.dev/model-deployment`` for Tierwise's own queries).
The engine is a label but not a selector: switching a model from vLLM to SGLang then
rolls the pods instead of failing the apply.
"""

from __future__ import annotations

import hashlib
from typing import Any

from tierwise.api.common import API_VERSION
from tierwise.api.model_deployment import ModelDeployment

MODEL_DEPLOYMENT_LABEL = "tierwise.dev/model-deployment"
PART_OF = "tierwise"
MANAGED_BY = "tierwise"
COMPONENT = "engine"
MAX_LABEL = 63


def _shortened(name: str, text: str) -> str:
    """A readable prefix of ``text`` plus 8 hex digits of ``name``'s SHA-256, so two names
    never collide by truncation or character replacement."""
    digest = hashlib.sha256(name.encode()).hexdigest()[:8]
    head = text[: MAX_LABEL - 9].rstrip(".-")
    return f"{head}-{digest}"


def label_value(name: str) -> str:
    """``name`` as a label value (at most 63 characters).

    ModelDeployment names are DNS subdomains of up to 253 characters; label values stop at
    63, so longer names are shortened (see :func:`_shortened`).
    """
    return name if len(name) <= MAX_LABEL else _shortened(name, name)


def service_name(name: str) -> str:
    """``name`` as a Service name, which must be an RFC 1035 label: at most 63 characters,
    no dots, starting with a letter. Names that are not get a stable derived form
    (``qwen2.5`` becomes ``qwen2-5-<hash>``)."""
    text = name.replace(".", "-")
    if not text[:1].isalpha():
        text = f"m-{text}"
    if text == name and len(name) <= MAX_LABEL:
        return name
    return _shortened(name, text)


def selector_labels(md: ModelDeployment) -> dict[str, str]:
    value = label_value(md.metadata.name)
    return {"app.kubernetes.io/instance": value, MODEL_DEPLOYMENT_LABEL: value}


def selector_string(md: ModelDeployment) -> str:
    """The pod selector as ``kubectl get -l`` and ``status.selector`` (scale) write it."""
    return ",".join(f"{k}={v}" for k, v in selector_labels(md).items())


def common_labels(md: ModelDeployment) -> dict[str, str]:
    return {
        "app.kubernetes.io/name": md.spec.engine.name.value,
        **selector_labels(md),
        "app.kubernetes.io/component": COMPONENT,
        "app.kubernetes.io/part-of": PART_OF,
        "app.kubernetes.io/managed-by": MANAGED_BY,
    }


def owner_references(md: ModelDeployment, owner_uid: str | None) -> list[dict[str, Any]]:
    """The ModelDeployment as controller owner, or nothing when its uid is unknown
    (an offline render: the API server rejects an owner reference without a uid)."""
    if not owner_uid:
        return []
    return [
        {
            "apiVersion": API_VERSION,
            "kind": "ModelDeployment",
            "name": md.metadata.name,
            "uid": owner_uid,
            "controller": True,
            "blockOwnerDeletion": True,
        }
    ]


def object_meta(md: ModelDeployment, name: str, owner_uid: str | None) -> dict[str, Any]:
    meta: dict[str, Any] = {"name": name}
    if md.metadata.namespace:
        meta["namespace"] = md.metadata.namespace
    meta["labels"] = common_labels(md)
    owners = owner_references(md, owner_uid)
    if owners:
        meta["ownerReferences"] = owners
    return meta
