"""Strict schemas for the chart's objects of kinds kubernetes-validate does not know: the
Prometheus Operator's ServiceMonitor, cert-manager's Certificate and Issuer (the fields the
chart sets, named as in those projects' CRDs), and kopf's peering objects (from the chart's
own crds/). Unknown fields fail, as kubernetes-validate's strict mode does."""

from __future__ import annotations

from typing import Any

import jsonschema
import kubernetes_validate

from chart_support import chart_crds

KUBERNETES_VERSION = "1.33"
_SELECTOR = {
    "type": "object",
    "additionalProperties": False,
    "properties": {
        "matchLabels": {"type": "object", "additionalProperties": {"type": "string"}},
        "matchExpressions": {"type": "array", "items": {"type": "object"}},
    },
}


def _kind(spec: dict[str, Any], required: list[str]) -> dict[str, Any]:
    return {
        "type": "object",
        "required": ["apiVersion", "kind", "metadata", "spec"],
        "additionalProperties": False,
        "properties": {
            "apiVersion": {"type": "string"},
            "kind": {"type": "string"},
            "metadata": {"type": "object"},
            "spec": {
                "type": "object",
                "additionalProperties": False,
                "required": required,
                "properties": spec,
            },
        },
    }


SCHEMAS: dict[tuple[str, str], dict[str, Any]] = {
    ("monitoring.coreos.com/v1", "ServiceMonitor"): _kind(
        {
            "selector": _SELECTOR,
            "namespaceSelector": {
                "type": "object",
                "additionalProperties": False,
                "properties": {
                    "matchNames": {"type": "array", "items": {"type": "string"}},
                    "any": {"type": "boolean"},
                },
            },
            "endpoints": {
                "type": "array",
                "items": {
                    "type": "object",
                    "additionalProperties": False,
                    "properties": {
                        "port": {"type": "string"},
                        "path": {"type": "string"},
                        "interval": {"type": "string", "pattern": "^[0-9]+(ms|s|m|h)$"},
                        "honorLabels": {"type": "boolean"},
                    },
                },
            },
        },
        ["selector", "endpoints"],
    ),
    ("cert-manager.io/v1", "Certificate"): _kind(
        {
            "secretName": {"type": "string"},
            "duration": {"type": "string"},
            "renewBefore": {"type": "string"},
            "dnsNames": {"type": "array", "items": {"type": "string"}},
            "privateKey": {
                "type": "object",
                "additionalProperties": False,
                "properties": {
                    "algorithm": {"enum": ["RSA", "ECDSA", "Ed25519"]},
                    "size": {"type": "integer"},
                    "rotationPolicy": {"enum": ["Never", "Always"]},
                },
            },
            "issuerRef": {
                "type": "object",
                "additionalProperties": False,
                "required": ["name"],
                "properties": {
                    "name": {"type": "string"},
                    "kind": {"type": "string"},
                    "group": {"type": "string"},
                },
            },
        },
        ["secretName", "issuerRef"],
    ),
    ("cert-manager.io/v1", "Issuer"): _kind(
        {"selfSigned": {"type": "object", "additionalProperties": False}}, []
    ),
}


def _peering_schemas() -> dict[tuple[str, str], dict[str, Any]]:
    found = {}
    for crd in chart_crds():
        spec = crd["spec"]
        version = spec["versions"][0]
        schema = dict(version["schema"]["openAPIV3Schema"])
        schema["properties"] = {
            **schema.get("properties", {}),
            "apiVersion": {"type": "string"},
            "kind": {"type": "string"},
            "metadata": {"type": "object"},
        }
        schema["additionalProperties"] = False
        found[(f"{spec['group']}/{version['name']}", spec["names"]["kind"])] = schema
    return found


def validate_object(obj: dict[str, Any]) -> None:
    """Raise when ``obj`` does not match its kind's schema (strict: no unknown fields)."""
    key = (obj["apiVersion"], obj["kind"])
    custom = {**SCHEMAS, **_peering_schemas()}.get(key)
    if custom is None:
        kubernetes_validate.validate(obj, KUBERNETES_VERSION, strict=True)
        return
    jsonschema.validate(obj, custom)
    # metadata is validated like any other object's, through a ConfigMap wrapper.
    wrapper = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": obj["metadata"]}
    kubernetes_validate.validate(wrapper, KUBERNETES_VERSION, strict=True)
