"""The ``scale`` subresource: a ``autoscaling/v1`` Scale view of an object.

Deployments and CRDs with a scale subresource expose their replica count as a
small ``Scale`` object; ``kubectl scale``, the HPA and our autoscaler read and
write it. The paths come from the resource (``.spec.replicas`` for Deployments,
``specReplicasPath`` and friends for custom resources).
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from typing import Any

from tierwise.local.resources import ScaleSpec
from tierwise.local.selectors import format_match_labels


def get_path(obj: Mapping[str, Any], path: str) -> Any:
    value: Any = obj
    for part in path.strip(".").split("."):
        if not isinstance(value, Mapping):
            return None
        value = value.get(part)
    return value


def set_path(obj: dict[str, Any], path: str, value: Any) -> None:
    parts = path.strip(".").split(".")
    target = obj
    for part in parts[:-1]:
        target = target.setdefault(part, {})
    target[parts[-1]] = value


def _selector(obj: Mapping[str, Any], spec: ScaleSpec) -> str | None:
    if spec.label_selector_path is None:
        return None
    value = get_path(obj, spec.label_selector_path)
    if isinstance(value, Mapping):  # a LabelSelector, as in Deployments
        return format_match_labels(value.get("matchLabels") or {})
    return None if value is None else str(value)


def scale_view(obj: Mapping[str, Any], spec: ScaleSpec) -> dict[str, Any]:
    meta = obj.get("metadata") or {}
    status: dict[str, Any] = {"replicas": get_path(obj, spec.status_replicas_path) or 0}
    selector = _selector(obj, spec)
    if selector is not None:
        status["selector"] = selector
    return {
        "apiVersion": "autoscaling/v1",
        "kind": "Scale",
        "metadata": {
            k: meta[k]
            for k in ("name", "namespace", "uid", "resourceVersion", "creationTimestamp")
            if k in meta
        },
        "spec": {"replicas": get_path(obj, spec.spec_replicas_path) or 0},
        "status": status,
    }


def with_replicas(
    obj: Mapping[str, Any], spec: ScaleSpec, scale: Mapping[str, Any]
) -> dict[str, Any]:
    """The object with the replica count (and resourceVersion precondition) of a Scale."""
    new = copy.deepcopy(dict(obj))
    replicas = (scale.get("spec") or {}).get("replicas")
    if replicas is not None:
        set_path(new, spec.spec_replicas_path, int(replicas))
    requested_rv = (scale.get("metadata") or {}).get("resourceVersion")
    if requested_rv:
        new["metadata"]["resourceVersion"] = requested_rv
    return new
