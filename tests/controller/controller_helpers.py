"""Shared builders for the controller tests: ModelDeployment bodies and a fake apply.

``simulate_apply`` plays a minimal API server for the pure plan tests: server-side apply
as create-or-merge (the emulator's semantics), status as a merge patch.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from tierwise.controller.children import Identity, identity_of
from tierwise.controller.kube import load_config
from tierwise.controller.plan import AUTOSCALER_FIELD_MANAGER, Observed, Plan
from tierwise.controller.runner import OperatorOptions

if TYPE_CHECKING:
    from tierwise.local.cluster import EmulatedCluster

UID = "0d3c9a1e-0000-4000-8000-000000000001"


def md_body(
    name: str = "qwen",
    *,
    spec: Mapping[str, Any] | None = None,
    generation: int = 1,
    status: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    body: dict[str, Any] = {
        "apiVersion": "tierwise.dev/v1alpha1",
        "kind": "ModelDeployment",
        "metadata": {"name": name, "namespace": "models", "uid": UID, "generation": generation},
        "spec": dict(
            spec or {"model": {"uri": "hf://Qwen/Qwen2.5-0.5B"}, "engine": {"name": "vllm"}}
        ),
    }
    if status is not None:
        body["status"] = dict(status)
    return body


def merge(base: Any, patch: Any) -> Any:
    if isinstance(base, dict) and isinstance(patch, Mapping):
        out = dict(base)
        for key, value in patch.items():
            out[key] = merge(base.get(key), value) if key in base else copy.deepcopy(value)
        return out
    return copy.deepcopy(patch)


def simulate_apply(
    body: dict[str, Any], observed: Observed, plan: Plan
) -> tuple[dict[str, Any], Observed]:
    """The body and children after a plan ran against a create-or-merge server."""
    children: dict[Identity, Mapping[str, Any]] = dict(observed.children)
    for apply in plan.applies:
        ident = identity_of(apply.obj)
        if apply.manager == AUTOSCALER_FIELD_MANAGER:
            assert ident in children, "the hand-over applies to an existing Deployment"
        children[ident] = merge(dict(children.get(ident) or {}), apply.obj)
    for ident in plan.deletes:
        children.pop(ident)
    if plan.status is not None:
        body = {**body, "status": merge(body.get("status") or {}, plan.status)}
    return body, Observed(children=children, pods=observed.pods, missing=observed.missing)


def ready(deployment: Mapping[str, Any], count: int | None = None) -> dict[str, Any]:
    """A Deployment as the Deployment controller reports it once all pods are ready."""
    replicas = count if count is not None else deployment["spec"].get("replicas", 1)
    status = {
        "observedGeneration": deployment.get("metadata", {}).get("generation", 1),
        "replicas": replicas,
        "readyReplicas": replicas,
        "updatedReplicas": replicas,
        "availableReplicas": replicas,
    }
    out = dict(deployment)
    out["metadata"] = {**deployment["metadata"], "generation": 1}
    out["status"] = status
    return out


def operator_options(cluster: EmulatedCluster) -> OperatorOptions:
    """Options for an operator bound to the emulated cluster (short child-event debounce).

    The autoscaler timer is off: these tests count the reconcile's own writes, and a timer
    tick landing inside a test's window would make that count depend on timing.
    """
    return OperatorOptions(
        kube=load_config(str(cluster.kubeconfig_path)), debounce_s=0.05, autoscaler=None
    )
