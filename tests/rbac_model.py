"""Kubernetes RBAC, evaluated offline: which request attributes a set of rules allows.

Why it exists: the chart's RBAC is checked against the API requests the operator really
makes (recorded on the embedded cluster). The emulated API server authorizes nothing, so
the test does what the real authorizer would: turn each recorded HTTP request into the
attributes the API server's RequestInfo resolver derives (verb, API group, resource with
subresource, namespace, name; a ``metadata.name`` field selector names a list or watch)
and match them against RoleBinding/ClusterRoleBinding rules the way the RBAC authorizer
does (no wildcards here: the chart must not use any).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

DISCOVERY_PREFIXES = ("/api", "/apis", "/version", "/openapi", "/healthz", "/livez", "/readyz")


@dataclass(frozen=True, order=True)
class Attributes:
    """What RBAC decides on for one resource request."""

    verb: str
    group: str
    resource: str
    """``plural`` or ``plural/subresource``."""
    namespace: str | None
    name: str | None

    def __str__(self) -> str:
        where = f" in {self.namespace}" if self.namespace else " (cluster-wide)"
        named = f" {self.name!r}" if self.name else ""
        return f"{self.verb} {self.group or 'core'}/{self.resource}{named}{where}"


def parse_path(path: str) -> tuple[str, str, list[str]] | None:
    """(group, version, rest) of a resource path; None for a non-resource (discovery) path."""
    parts = [p for p in path.split("/") if p]
    if len(parts) >= 3 and parts[0] == "api":
        return "", parts[1], parts[2:]
    if len(parts) >= 4 and parts[0] == "apis":
        return parts[1], parts[2], parts[3:]
    return None


def attributes(method: str, path: str, params: Mapping[str, str]) -> Attributes | None:
    """The RBAC attributes of one request; None for a non-resource request."""
    parsed = parse_path(path)
    if parsed is None:
        return None
    group, _, rest = parsed
    namespace: str | None = None
    if len(rest) >= 2 and rest[0] == "namespaces" and len(rest) != 2:
        namespace, rest = rest[1], rest[2:]
    resource, name, sub = rest[0], (rest[1] if len(rest) > 1 else None), rest[2:]
    if resource == "namespaces" and name is not None:
        namespace = name
    full = "/".join([resource, *sub])
    method = method.upper()
    if method == "GET" and params.get("watch") in ("true", "1"):
        verb = "watch"
    elif method == "GET":
        verb = "get" if name is not None else "list"
    else:
        verb = {"POST": "create", "PUT": "update", "PATCH": "patch"}.get(method, "")
        if method == "DELETE":
            verb = "delete" if name is not None else "deletecollection"
    if verb in ("list", "watch"):
        name = _field_name(params.get("fieldSelector") or "")
    return Attributes(verb, group, full, namespace, name)


def _field_name(selector: str) -> str | None:
    for term in selector.split(","):
        key, _, value = term.partition("=")
        if key.strip() == "metadata.name" and value:
            return value.lstrip("=").strip()
    return None


@dataclass(frozen=True)
class Grant:
    """Rules bound to the subject: everywhere (a ClusterRoleBinding) or in one namespace."""

    namespace: str | None
    rules: tuple[Mapping[str, Any], ...]


def rule_allows(rule: Mapping[str, Any], attrs: Attributes) -> bool:
    if attrs.group not in (rule.get("apiGroups") or []):
        return False
    if attrs.resource not in (rule.get("resources") or []):
        return False
    if attrs.verb not in (rule.get("verbs") or []):
        return False
    names = rule.get("resourceNames") or []
    return not names or (attrs.name is not None and attrs.name in names)


def allowed(grants: Iterable[Grant], attrs: Attributes) -> bool:
    for grant in grants:
        if grant.namespace is not None and grant.namespace != attrs.namespace:
            continue
        if any(rule_allows(rule, attrs) for rule in grant.rules):
            return True
    return False


def rule_attributes(rule: Mapping[str, Any], namespace: str | None) -> list[Attributes]:
    """Every attribute set a rule grants (one per group, resource, verb and name)."""
    names: Sequence[str | None] = rule.get("resourceNames") or [None]
    return [
        Attributes(verb, group, resource, namespace, name)
        for group in rule.get("apiGroups") or []
        for resource in rule.get("resources") or []
        for verb in rule.get("verbs") or []
        for name in names
    ]


def grants_for(objects: Iterable[Mapping[str, Any]], service_account: str) -> list[Grant]:
    """The grants a ServiceAccount (``namespace:name``) gets from rendered RBAC objects."""
    objects = list(objects)
    roles = {
        (o["kind"], o["metadata"].get("namespace"), o["metadata"]["name"]): o
        for o in objects
        if o["kind"] in ("Role", "ClusterRole")
    }
    sa_namespace, sa_name = service_account.split(":")
    grants: list[Grant] = []
    for binding in objects:
        if binding["kind"] not in ("RoleBinding", "ClusterRoleBinding"):
            continue
        subjects = binding.get("subjects") or []
        if not any(
            s.get("kind") == "ServiceAccount"
            and s.get("name") == sa_name
            and s.get("namespace", binding["metadata"].get("namespace")) == sa_namespace
            for s in subjects
        ):
            continue
        ref = binding["roleRef"]
        ref_namespace = binding["metadata"].get("namespace") if ref["kind"] == "Role" else None
        role = roles[(ref["kind"], ref_namespace, ref["name"])]
        scope = binding["metadata"].get("namespace") if binding["kind"] == "RoleBinding" else None
        grants.append(Grant(scope, tuple(role.get("rules") or [])))
    return grants


def wildcards(objects: Iterable[Mapping[str, Any]]) -> list[str]:
    """Rules granting ``*`` anywhere (the chart must name every group, resource and verb)."""
    found = []
    for obj in objects:
        for rule in obj.get("rules") or []:
            for key in ("apiGroups", "resources", "verbs", "resourceNames", "nonResourceURLs"):
                if "*" in (rule.get(key) or []):
                    found.append(f"{obj['kind']}/{obj['metadata']['name']}: {key} has '*'")
    return found
