"""The generated CRDs are objects a Kubernetes API server accepts, with structural schemas
whose CEL rules compile, use only portable functions and fit the cost budget."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import kubernetes_validate
import pytest
import yaml
from api_cluster_layer import CRD_DIR, compile_rule, every_rule

CRDS = {p.name: yaml.safe_load(p.read_text(encoding="utf-8")) for p in CRD_DIR.glob("*.yaml")}
FORBIDDEN_IN_STRUCTURAL = {"$ref", "$defs", "anyOf", "oneOf", "allOf", "not", "const", "title"}


def _nodes(node: dict[str, Any], path: str = "") -> Iterator[tuple[str, dict[str, Any]]]:
    yield path, node
    for name, child in node.get("properties", {}).items():
        yield from _nodes(child, f"{path}.{name}")
    if "items" in node:
        yield from _nodes(node["items"], f"{path}[]")
    if isinstance(node.get("additionalProperties"), dict):
        yield from _nodes(node["additionalProperties"], f"{path}{{}}")


def _schema(crd: dict[str, Any]) -> dict[str, Any]:
    schema: dict[str, Any] = crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
    return schema


def _at(schema: dict[str, Any], json_path: str) -> dict[str, Any] | None:
    node: dict[str, Any] | None = schema
    for part in json_path.strip(".").replace("[*]", "").split("."):
        node = (node or {}).get("properties", {}).get(part)
        while node is not None and node.get("type") == "array":
            node = node["items"]
    return node


def test_both_kinds_are_generated() -> None:
    assert set(CRDS) == {"modeldeployments.tierwise.dev.yaml", "routingpolicies.tierwise.dev.yaml"}


@pytest.mark.parametrize("version", ["1.30", kubernetes_validate.utils.latest_version()])
@pytest.mark.parametrize("name", sorted(CRDS))
def test_crd_is_a_valid_apiextensions_v1_object(name: str, version: str) -> None:
    kubernetes_validate.validate(CRDS[name], version, strict=True)


@pytest.mark.parametrize("name", sorted(CRDS))
def test_schema_is_structural(name: str) -> None:
    for path, node in _nodes(_schema(CRDS[name])):
        assert not FORBIDDEN_IN_STRUCTURAL & node.keys(), path
        assert "type" in node or node.get("x-kubernetes-preserve-unknown-fields"), path
        assert not ("properties" in node and "additionalProperties" in node), path
        if node.get("type") == "array":
            assert "items" in node, path
        if node.get("x-kubernetes-list-type") == "map":
            keys = node["x-kubernetes-list-map-keys"]
            assert set(keys) <= set(node["items"].get("required", [])), path


@pytest.mark.parametrize("name", sorted(CRDS))
def test_every_spec_field_is_described_and_bounded(name: str) -> None:
    schema = _schema(CRDS[name])
    for path, node in _nodes(schema["properties"]["status"], "status"):
        if not path.endswith("[]"):
            assert node.get("description"), f"{path} has no description"
    for path, node in _nodes(schema["properties"]["spec"], "spec"):
        if not path.endswith(("[]", "{}")):
            assert node.get("description"), f"{path} has no description"
        if node.get("type") == "array":
            assert "maxItems" in node, f"{path}: CEL cost needs maxItems"
        if node.get("type") == "string":
            assert "maxLength" in node or "enum" in node, f"{path}: CEL cost needs maxLength"


@pytest.mark.parametrize("name", sorted(CRDS))
def test_cel_rules_compile_portably_and_point_at_real_fields(name: str) -> None:
    schema = _schema(CRDS[name])
    rules = list(every_rule(schema))
    assert rules
    for path, rule in rules:
        compile_rule(rule["rule"])  # raises on syntax errors and Kubernetes-only functions
        assert ";" in rule["message"], f"say what is wrong; how to fix it: {rule}"
        if "fieldPath" in rule:
            owner = _at(schema, path.replace("[]", ""))
            assert owner is not None
            assert _at(owner, rule["fieldPath"]) is not None, (path, rule)


def test_model_deployment_has_scale_subresource_and_columns() -> None:
    crd = CRDS["modeldeployments.tierwise.dev.yaml"]
    version = crd["spec"]["versions"][0]
    scale = version["subresources"]["scale"]
    assert scale == {
        "specReplicasPath": ".spec.replicas.target",
        "statusReplicasPath": ".status.replicas",
        "labelSelectorPath": ".status.selector",
    }
    schema = _schema(crd)
    assert _at(schema, scale["specReplicasPath"])["type"] == "integer"  # type: ignore[index]
    assert _at(schema, scale["statusReplicasPath"])["type"] == "integer"  # type: ignore[index]
    assert _at(schema, scale["labelSelectorPath"])["type"] == "string"  # type: ignore[index]
    columns = [c["name"] for c in version["additionalPrinterColumns"]]
    assert columns == ["Engine", "Model", "Ready", "Desired", "Phase", "Age"]


@pytest.mark.parametrize(
    ("name", "short", "columns"),
    [
        ("modeldeployments.tierwise.dev.yaml", "md", 6),
        ("routingpolicies.tierwise.dev.yaml", "rp", 5),
    ],
)
def test_names_subresources_and_printer_columns(name: str, short: str, columns: int) -> None:
    crd = CRDS[name]
    names = crd["spec"]["names"]
    assert names["shortNames"] == [short]
    assert names["categories"] == ["tierwise"]
    assert crd["spec"]["scope"] == "Namespaced"
    version = crd["spec"]["versions"][0]
    assert version["subresources"]["status"] == {}
    assert _schema(crd)["required"] == ["spec"]
    printer = version["additionalPrinterColumns"]
    assert len(printer) == columns
    for column in printer:
        if column["name"] != "Age":
            assert _at(_schema(crd), column["jsonPath"]) is not None, column
