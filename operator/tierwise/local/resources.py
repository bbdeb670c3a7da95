"""The API resources the embedded cluster serves, and CRD registration.

kopf (and kubectl) only use resources that discovery advertises with the right
kind, scope, verbs and subresources; kmock serves nothing it was not told about.
This module is the one table of built-in resources the operator and its tests
need, plus the translation of a CustomResourceDefinition into the resources it
defines, so that POSTing a CRD makes its kind servable like a real API server.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import kmock

ALL_VERBS = ("create", "delete", "deletecollection", "get", "list", "patch", "update", "watch")


@dataclass(frozen=True)
class ScaleSpec:
    """Where a resource keeps its replica counts (the ``scale`` subresource)."""

    spec_replicas_path: str = ".spec.replicas"
    status_replicas_path: str = ".status.replicas"
    label_selector_path: str | None = None


@dataclass(frozen=True)
class ResourceSpec:
    """One servable resource: identity, discovery facts and subresources."""

    group: str
    version: str
    plural: str
    kind: str
    namespaced: bool = True
    shortnames: tuple[str, ...] = ()
    categories: tuple[str, ...] = ()
    status: bool = False
    scale: ScaleSpec | None = None
    custom: bool = False  # defined by a CRD: no strategic-merge patches
    singular: str = field(default="")
    printer_columns: tuple[Mapping[str, Any], ...] = ()
    """A CRD version's ``additionalPrinterColumns`` (server-side printing, :mod:`.tables`)."""

    @property
    def resource(self) -> kmock.resource:
        return kmock.resource(self.group, self.version, self.plural)

    @property
    def api_version(self) -> str:
        return f"{self.group}/{self.version}" if self.group else self.version

    @property
    def subresources(self) -> tuple[str, ...]:
        return (("status",) if self.status else ()) + (("scale",) if self.scale else ())

    def info(self) -> kmock.ResourceInfo:
        return kmock.ResourceInfo(
            namespaced=self.namespaced,
            kind=self.kind,
            singular=self.singular or self.kind.lower(),
            verbs=set(ALL_VERBS),
            shortnames=set(self.shortnames),
            categories=set(self.categories),
            subresources=set(self.subresources),
        )


_DEPLOYMENT_SCALE = ScaleSpec(label_selector_path=".spec.selector")

BUILTIN_RESOURCES: tuple[ResourceSpec, ...] = (
    ResourceSpec(
        "", "v1", "namespaces", "Namespace", namespaced=False, shortnames=("ns",), status=True
    ),
    ResourceSpec("", "v1", "pods", "Pod", shortnames=("po",), categories=("all",), status=True),
    ResourceSpec(
        "", "v1", "services", "Service", shortnames=("svc",), categories=("all",), status=True
    ),
    ResourceSpec("", "v1", "endpoints", "Endpoints", shortnames=("ep",)),
    ResourceSpec("", "v1", "events", "Event", shortnames=("ev",)),
    ResourceSpec("", "v1", "configmaps", "ConfigMap", shortnames=("cm",)),
    ResourceSpec("", "v1", "secrets", "Secret"),
    ResourceSpec("", "v1", "serviceaccounts", "ServiceAccount", shortnames=("sa",)),
    ResourceSpec("events.k8s.io", "v1", "events", "Event", shortnames=("ev",)),
    ResourceSpec(
        "apps",
        "v1",
        "deployments",
        "Deployment",
        shortnames=("deploy",),
        categories=("all",),
        status=True,
        scale=_DEPLOYMENT_SCALE,
    ),
    ResourceSpec(
        "apps",
        "v1",
        "replicasets",
        "ReplicaSet",
        shortnames=("rs",),
        categories=("all",),
        status=True,
        scale=_DEPLOYMENT_SCALE,
    ),
    ResourceSpec(
        "policy",
        "v1",
        "poddisruptionbudgets",
        "PodDisruptionBudget",
        shortnames=("pdb",),
        status=True,
    ),
    ResourceSpec("coordination.k8s.io", "v1", "leases", "Lease"),
    ResourceSpec("monitoring.coreos.com", "v1", "podmonitors", "PodMonitor", shortnames=("pmon",)),
    ResourceSpec(
        "monitoring.coreos.com", "v1", "servicemonitors", "ServiceMonitor", shortnames=("smon",)
    ),
    ResourceSpec(
        "apiextensions.k8s.io",
        "v1",
        "customresourcedefinitions",
        "CustomResourceDefinition",
        namespaced=False,
        shortnames=("crd", "crds"),
        status=True,
    ),
    ResourceSpec(
        "admissionregistration.k8s.io",
        "v1",
        "validatingwebhookconfigurations",
        "ValidatingWebhookConfiguration",
        namespaced=False,
    ),
    ResourceSpec(
        "admissionregistration.k8s.io",
        "v1",
        "mutatingwebhookconfigurations",
        "MutatingWebhookConfiguration",
        namespaced=False,
    ),
    ResourceSpec("discovery.k8s.io", "v1", "endpointslices", "EndpointSlice"),
    ResourceSpec("rbac.authorization.k8s.io", "v1", "roles", "Role"),
    ResourceSpec("rbac.authorization.k8s.io", "v1", "rolebindings", "RoleBinding"),
    ResourceSpec(
        "rbac.authorization.k8s.io", "v1", "clusterroles", "ClusterRole", namespaced=False
    ),
    ResourceSpec(
        "rbac.authorization.k8s.io",
        "v1",
        "clusterrolebindings",
        "ClusterRoleBinding",
        namespaced=False,
    ),
)

CRD_RESOURCE = kmock.resource("apiextensions.k8s.io", "v1", "customresourcedefinitions")
NAMESPACE_RESOURCE = kmock.resource("", "v1", "namespaces")


def _scale_from_crd(subresources: Mapping[str, Any]) -> ScaleSpec | None:
    scale = subresources.get("scale")
    if not isinstance(scale, Mapping):
        return None
    return ScaleSpec(
        spec_replicas_path=str(scale.get("specReplicasPath", ".spec.replicas")),
        status_replicas_path=str(scale.get("statusReplicasPath", ".status.replicas")),
        label_selector_path=scale.get("labelSelectorPath"),
    )


def specs_from_crd(crd: Mapping[str, Any]) -> list[ResourceSpec]:
    """The resources a CustomResourceDefinition defines, one per served version."""
    spec = crd.get("spec") or {}
    names = spec.get("names") or {}
    group, plural, kind = spec.get("group"), names.get("plural"), names.get("kind")
    if not group or not plural or not kind:
        raise ValueError("spec.group, spec.names.plural and spec.names.kind are required")
    result: list[ResourceSpec] = []
    for version in spec.get("versions") or []:
        if not version.get("served", True):
            continue
        subresources = version.get("subresources") or spec.get("subresources") or {}
        columns = version.get("additionalPrinterColumns") or spec.get(
            "additionalPrinterColumns"
        )
        result.append(
            ResourceSpec(
                group=str(group),
                version=str(version["name"]),
                plural=str(plural),
                kind=str(kind),
                namespaced=spec.get("scope", "Namespaced") == "Namespaced",
                shortnames=tuple(names.get("shortNames") or ()),
                categories=tuple(names.get("categories") or ()),
                singular=str(names.get("singular") or kind.lower()),
                status="status" in subresources,
                scale=_scale_from_crd(subresources),
                custom=True,
                printer_columns=tuple(dict(c) for c in columns or ()),
            )
        )
    return result


def crd_status(crd: Mapping[str, Any]) -> dict[str, Any]:
    """The status a real API server reports once a CRD is established."""
    names = dict((crd.get("spec") or {}).get("names") or {})
    conditions = [
        {"type": kind, "status": "True", "reason": reason, "message": message}
        for kind, reason, message in (
            ("NamesAccepted", "NoConflicts", "no conflicts found"),
            ("Established", "InitialNamesAccepted", "the initial names have been accepted"),
        )
    ]
    versions = [v["name"] for v in (crd.get("spec") or {}).get("versions") or [] if "name" in v]
    return {"acceptedNames": names, "conditions": conditions, "storedVersions": versions[:1]}
