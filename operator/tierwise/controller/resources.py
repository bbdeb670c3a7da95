"""Where each kind the operator touches lives in the Kubernetes API.

The plan speaks in plain objects (``apiVersion``/``kind`` dicts); the client needs URL
paths. This table is the one translation between the two, so neither the pure planner
nor the handlers ever build a URL by hand.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from tierwise.api.common import GROUP, VERSION


@dataclass(frozen=True)
class Resource:
    """One API resource: group, version, plural and kind (all namespaced here)."""

    group: str
    version: str
    plural: str
    kind: str

    @property
    def api_version(self) -> str:
        return f"{self.group}/{self.version}" if self.group else self.version

    def collection_path(self, namespace: str | None) -> str:
        root = f"/apis/{self.group}/{self.version}" if self.group else f"/api/{self.version}"
        if namespace is None:
            return f"{root}/{self.plural}"
        return f"{root}/namespaces/{namespace}/{self.plural}"

    def object_path(self, namespace: str, name: str) -> str:
        return f"{self.collection_path(namespace)}/{name}"


MODEL_DEPLOYMENT = Resource(GROUP, VERSION, "modeldeployments", "ModelDeployment")
DEPLOYMENT = Resource("apps", "v1", "deployments", "Deployment")
SERVICE = Resource("", "v1", "services", "Service")
PDB = Resource("policy", "v1", "poddisruptionbudgets", "PodDisruptionBudget")
POD_MONITOR = Resource("monitoring.coreos.com", "v1", "podmonitors", "PodMonitor")
EVENT = Resource("", "v1", "events", "Event")
SECRET = Resource("", "v1", "secrets", "Secret")
PVC = Resource("", "v1", "persistentvolumeclaims", "PersistentVolumeClaim")
ROUTING_POLICY = Resource(GROUP, VERSION, "routingpolicies", "RoutingPolicy")
CONFIG_MAP = Resource("", "v1", "configmaps", "ConfigMap")
SERVICE_ACCOUNT = Resource("", "v1", "serviceaccounts", "ServiceAccount")
ROLE = Resource("rbac.authorization.k8s.io", "v1", "roles", "Role")
ROLE_BINDING = Resource("rbac.authorization.k8s.io", "v1", "rolebindings", "RoleBinding")
POD = Resource("", "v1", "pods", "Pod")

CHILD_RESOURCES: tuple[Resource, ...] = (DEPLOYMENT, SERVICE, PDB, POD_MONITOR)
"""What a ModelDeployment owns."""
ROUTER_CHILD_RESOURCES: tuple[Resource, ...] = (
    CONFIG_MAP,
    SERVICE_ACCOUNT,
    ROLE,
    ROLE_BINDING,
    DEPLOYMENT,
    SERVICE,
    PDB,
    POD_MONITOR,
)
"""What a RoutingPolicy owns (its router and the policy document)."""
_ALL = (
    MODEL_DEPLOYMENT,
    ROUTING_POLICY,
    *ROUTER_CHILD_RESOURCES,
    EVENT,
    SECRET,
    PVC,
    POD,
)
_BY_KIND: dict[tuple[str, str], Resource] = {(r.api_version, r.kind): r for r in _ALL}
_BY_KIND_NAME: dict[str, Resource] = {r.kind: r for r in _ALL if r is not EVENT}


def resource_of(obj: Mapping[str, Any]) -> Resource:
    """The resource an object belongs to; ``KeyError`` for a kind Tierwise never manages."""
    key = (str(obj.get("apiVersion", "")), str(obj.get("kind", "")))
    try:
        return _BY_KIND[key]
    except KeyError:
        raise KeyError(f"{key[1]} ({key[0]}) is not a kind the operator manages") from None


def resource_for_kind(kind: str) -> Resource:
    """The resource of a kind the operator manages (kinds are unique among them)."""
    return _BY_KIND_NAME[kind]
