"""What the API server would do with a custom resource, offline.

Mirrors the server-side layers a CRD gives us so tests catch a schema or CEL mistake here
rather than on a user's cluster: apply schema defaults (object defaults ``{}`` first, then
field defaults inside them), reject unknown fields (kubectl's strict field validation),
validate against the OpenAPI schema, enforce ``x-kubernetes-list-type: map`` key
uniqueness, and evaluate every ``x-kubernetes-validations`` rule with ``self`` bound to the
value at the rule's location, using the ``cel`` module from ``common-expression-language``.

Kubernetes' CEL library adds functions standard CEL lacks (``quantity()``, ``url()``,
``isSorted()``, ``indexOf()`` on lists, ``format.*``, ``ip()``/``cidr()``); the PyPI
implementations do not have them, so a rule using one is refused here instead of being
skipped silently.
"""

from __future__ import annotations

import copy
import functools
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cel
import jsonschema
import yaml

REPO = Path(__file__).resolve().parents[2]
CRD_DIR = REPO / "crds"
KUBERNETES_ONLY_FUNCTIONS = frozenset(
    {
        "quantity",
        "isQuantity",
        "url",
        "isURL",
        "isSorted",
        "indexOf",
        "lastIndexOf",
        "ip",
        "isIP",
        "cidr",
        "isCIDR",
        "format",
        "named",
        "sum",
        "min",
        "max",
        "sign",
        "semver",
        "isSemver",
        "authorizer",
        "lowerAscii",
        "upperAscii",
        "split",
        "join",
        "replace",
    }
)


@dataclass(frozen=True)
class RuleOutcome:
    """One CEL rule evaluated at one place in an object."""

    path: str
    rule: str
    message: str
    passed: bool
    error: str = ""


def load_crd_schemas() -> dict[str, dict[str, Any]]:
    """openAPIV3Schema of each checked-in CRD, by kind."""
    schemas = {}
    for path in sorted(CRD_DIR.glob("*.yaml")):
        crd = yaml.safe_load(path.read_text(encoding="utf-8"))
        kind = crd["spec"]["names"]["kind"]
        schemas[kind] = crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
    return schemas


def apply_defaults(schema: dict[str, Any], value: Any) -> Any:
    """The object as the API server stores it: schema defaults filled in, recursively."""
    if isinstance(value, dict):
        properties = schema.get("properties", {})
        out = dict(value)
        for name, child in properties.items():
            if name not in out and "default" in child:
                out[name] = copy.deepcopy(child["default"])
        extra = schema.get("additionalProperties")
        for name, item in out.items():
            child = properties.get(name, extra if isinstance(extra, dict) else None)
            if child is not None:
                out[name] = apply_defaults(child, item)
        return out
    if isinstance(value, list) and "items" in schema:
        return [apply_defaults(schema["items"], item) for item in value]
    return value


def schema_errors(schema: dict[str, Any], value: Any) -> list[str]:
    """OpenAPI (draft 4 semantics: boolean exclusiveMinimum) validation errors."""
    validator = jsonschema.Draft4Validator(schema)
    return [
        f"{'.'.join(str(p) for p in error.absolute_path)}: {error.message}"
        for error in validator.iter_errors(value)
    ]


def unknown_fields(schema: dict[str, Any], value: Any, path: str = "") -> Iterator[str]:
    """Fields the API server would prune (kubectl --validate=strict refuses them)."""
    if schema.get("x-kubernetes-preserve-unknown-fields"):
        return
    if isinstance(value, dict) and schema.get("type") == "object":
        properties = schema.get("properties")
        extra = schema.get("additionalProperties")
        for name, item in value.items():
            child = (properties or {}).get(name) or (extra if isinstance(extra, dict) else None)
            if child is None:
                if properties is not None:
                    yield f"{path}.{name}".lstrip(".")
                continue
            yield from unknown_fields(child, item, f"{path}.{name}")
    elif isinstance(value, list) and "items" in schema:
        for index, item in enumerate(value):
            yield from unknown_fields(schema["items"], item, f"{path}[{index}]")


def duplicate_list_map_keys(schema: dict[str, Any], value: Any, path: str = "") -> Iterator[str]:
    """Items of an ``x-kubernetes-list-type: map`` list that share their key."""
    if isinstance(value, list) and "items" in schema:
        if schema.get("x-kubernetes-list-type") == "map":
            keys = schema.get("x-kubernetes-list-map-keys", [])
            seen: set[tuple[Any, ...]] = set()
            for index, item in enumerate(value):
                key = tuple(item.get(k) for k in keys) if isinstance(item, dict) else (item,)
                if key in seen:
                    yield f"{path}[{index}]"
                seen.add(key)
        for index, item in enumerate(value):
            yield from duplicate_list_map_keys(schema["items"], item, f"{path}[{index}]")
    elif isinstance(value, dict):
        for name, child in schema.get("properties", {}).items():
            if name in value:
                yield from duplicate_list_map_keys(child, value[name], f"{path}.{name}")


def every_rule(schema: dict[str, Any], path: str = "") -> Iterator[tuple[str, dict[str, str]]]:
    """Every CEL rule in a schema with the schema path it sits at."""
    for rule in schema.get("x-kubernetes-validations", []):
        yield path, rule
    for name, child in schema.get("properties", {}).items():
        yield from every_rule(child, f"{path}.{name}")
    if "items" in schema:
        yield from every_rule(schema["items"], f"{path}[]")
    if isinstance(schema.get("additionalProperties"), dict):
        yield from every_rule(schema["additionalProperties"], f"{path}{{}}")


@functools.cache
def compile_rule(rule: str) -> Any:
    """A compiled rule; refuses Kubernetes-only functions this evaluator does not have."""
    program = cel.compile(rule)
    used = KUBERNETES_ONLY_FUNCTIONS.intersection(program.functions())
    if used:
        raise ValueError(f"rule {rule!r} uses Kubernetes-only CEL functions {sorted(used)}")
    if "oldSelf" in program.variables():
        raise ValueError(f"rule {rule!r} is a transition rule; evaluate it with oldSelf")
    return program


def evaluate_rules(schema: dict[str, Any], value: Any, path: str = "") -> Iterator[RuleOutcome]:
    """Every rule at every place the (defaulted) value reaches, evaluated."""
    if value is None:
        return
    for rule in schema.get("x-kubernetes-validations", []):
        yield _evaluate(rule, value, path)
    if isinstance(value, dict):
        for name, child in schema.get("properties", {}).items():
            if name in value:
                yield from evaluate_rules(child, value[name], f"{path}.{name}")
    elif isinstance(value, list) and "items" in schema:
        for index, item in enumerate(value):
            yield from evaluate_rules(schema["items"], item, f"{path}[{index}]")


def _evaluate(rule: dict[str, str], value: Any, path: str) -> RuleOutcome:
    where = path + rule.get("fieldPath", "")
    try:
        result = compile_rule(rule["rule"]).execute({"self": value})
    except (RuntimeError, ValueError, TypeError) as exc:
        return RuleOutcome(where, rule["rule"], rule["message"], False, str(exc))
    return RuleOutcome(where, rule["rule"], rule["message"], result is True)


def cluster_rejections(schema: dict[str, Any], raw: dict[str, Any]) -> dict[str, list[str]]:
    """Why the API server would refuse ``raw``, by layer; empty lists when it accepts it."""
    stored = apply_defaults(schema, raw)
    return {
        "unknown-field": list(unknown_fields(schema, raw)),
        "schema": schema_errors(schema, stored),
        "list-map": list(duplicate_list_map_keys(schema, stored)),
        "cel": [o.message for o in evaluate_rules(schema, stored) if not o.passed],
    }
