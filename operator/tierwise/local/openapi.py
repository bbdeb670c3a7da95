"""``/openapi/v3`` for custom resources, from their CRDs' ``openAPIV3Schema`` (pure).

``kubectl explain md.spec`` reads the OpenAPI v3 document of the resource's group and
version and finds the schema whose ``x-kubernetes-group-version-kind`` names the kind. A
real API server publishes one document per group/version under ``/openapi/v3`` (an index
of ``serverRelativeURL``s with a content hash) and names a CRD's schema after the reversed
group (``dev.tierwise.v1alpha1.ModelDeployment``). Built-in kinds are not published here:
their schemas come from the Kubernetes Go types, which the emulator does not carry.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

ROOT = "/openapi/v3"


@dataclass(frozen=True)
class _Kind:
    kind: str
    plural: str
    namespaced: bool
    schema: Mapping[str, Any]


def _group_versions(crds: Iterable[Mapping[str, Any]]) -> dict[str, list[_Kind]]:
    """``apis/GROUP/VERSION`` → the kinds of every served version with a schema."""
    out: dict[str, list[_Kind]] = {}
    for crd in crds:
        spec = crd.get("spec") or {}
        names = spec.get("names") or {}
        group, kind, plural = spec.get("group"), names.get("kind"), names.get("plural")
        namespaced = spec.get("scope", "Namespaced") == "Namespaced"
        for version in spec.get("versions") or []:
            schema = (version.get("schema") or {}).get("openAPIV3Schema")
            if group and kind and plural and schema and version.get("served", True):
                out.setdefault(f"apis/{group}/{version['name']}", []).append(
                    _Kind(kind, plural, namespaced, schema)
                )
    return out


def schema_name(group: str, version: str, kind: str) -> str:
    """The name a real API server gives a CRD's schema: reversed group, version, kind."""
    return ".".join([*reversed(group.split(".")), version, kind])


def document(crds: Iterable[Mapping[str, Any]], path: str) -> dict[str, Any] | None:
    """The OpenAPI v3 answer for ``path`` (the index or one group/version), or None."""
    versions = _group_versions(crds)
    if path.rstrip("/") == ROOT:
        return {
            "paths": {
                gv: {"serverRelativeURL": f"{ROOT}/{gv}?hash={_hash(_gv_document(gv, kinds))}"}
                for gv, kinds in sorted(versions.items())
            }
        }
    gv = path[len(ROOT) + 1 :].strip("/") if path.startswith(ROOT + "/") else ""
    return _gv_document(gv, versions[gv]) if gv in versions else None


def _gv_document(gv: str, kinds: list[_Kind]) -> dict[str, Any]:
    """One group/version: each kind's schema, and the get/list paths that name its GVK
    (kubectl explain finds the kind of a resource through them)."""
    _, group, version = gv.split("/")
    schemas: dict[str, Any] = {}
    paths: dict[str, Any] = {}
    for each in kinds:
        name = schema_name(group, version, each.kind)
        gvk = {"group": group, "version": version, "kind": each.kind}
        schemas[name] = {**each.schema, "x-kubernetes-group-version-kind": [gvk]}
        scope = "/namespaces/{namespace}" if each.namespaced else ""
        base = f"/{gv}{scope}/{each.plural}"
        ref = {"$ref": f"#/components/schemas/{name}"}
        for path, action in ((base + "/{name}", "get"), (base, "list")):
            paths[path] = {
                "get": {
                    "operationId": f"{action}{each.kind}",
                    "responses": {"200": {"content": {"application/json": {"schema": ref}}}},
                    "x-kubernetes-action": action,
                    "x-kubernetes-group-version-kind": gvk,
                }
            }
    return {
        "openapi": "3.0.0",
        "info": {"title": "Kubernetes CRD Swagger", "version": "v0.1.0"},
        "paths": paths,
        "components": {"schemas": schemas},
    }


def _hash(doc: Mapping[str, Any]) -> str:
    text = json.dumps(doc, sort_keys=True, separators=(",", ":"))
    return hashlib.sha512(text.encode()).hexdigest()[:128].upper()
