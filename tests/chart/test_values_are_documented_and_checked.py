"""Every value is documented where it is set (a comment above it in values.yaml) and
declared in values.schema.json, which refuses unknown keys and wrong types with a message
naming the value; combinations the schema cannot express fail the render with the fix."""

from __future__ import annotations

import json
import re
from typing import Any

import helm_python as helm
import pytest
import yaml

from chart_support import CHART, render

VALUES = CHART / "values.yaml"
SCHEMA = json.loads((CHART / "values.schema.json").read_text())


def _leaves(
    values: Any, schema: dict[str, Any], path: str = ""
) -> list[tuple[str, dict[str, Any]]]:
    """(dotted path, schema) of every value down to the schema's open maps and scalars."""
    out = [(path, schema)] if path else []
    if isinstance(values, dict) and schema.get("additionalProperties") is False:
        assert set(values) == set(schema["properties"]), (
            f"{path or 'values'}: schema and values.yaml differ"
        )
        for key, value in values.items():
            out += _leaves(value, schema["properties"][key], f"{path}.{key}".lstrip("."))
    return out


def test_schema_declares_and_describes_exactly_the_values() -> None:
    values = yaml.safe_load(VALUES.read_text())
    leaves = _leaves(values, SCHEMA)
    assert len(leaves) > 60
    assert [p for p, s in leaves if not s.get("description")] == []
    helm.Chart.load(str(CHART)).validate_schema(values)


def _key_lines(text: str) -> dict[str, int]:
    """Dotted path of every key line in a YAML file -> its index (indentation nesting)."""
    found: dict[str, int] = {}
    stack: list[tuple[int, str]] = []
    for index, line in enumerate(text.splitlines()):
        match = re.match(r"^(\s*)([A-Za-z][\w-]*):", line)
        if not match:
            continue
        indent = len(match.group(1))
        while stack and stack[-1][0] >= indent:
            stack.pop()
        stack.append((indent, match.group(2)))
        found[".".join(key for _, key in stack)] = index
    return found


def test_every_value_has_a_comment_where_it_is_set() -> None:
    text = VALUES.read_text()
    lines = text.splitlines()
    where = _key_lines(text)
    values = yaml.safe_load(text)
    settable = [p for p, s in _leaves(values, SCHEMA) if s.get("additionalProperties") is not False]
    assert len(settable) > 50
    undocumented = [
        f"values.yaml:{where[path] + 1}: {path}"
        for path in settable
        if not lines[where[path] - 1].strip().startswith("#")
    ]
    assert undocumented == []


@pytest.mark.parametrize(
    ("values", "message"),
    [
        (
            {"operator": {"replicaz": 2}},
            "at '/operator': additional properties 'replicaz' not allowed",
        ),
        ({"operator": {"replicas": "two"}}, "at '/operator/replicas': got string, want integer"),
        ({"operator": {"replicas": 0}}, "at '/operator/replicas'"),
        ({"operator": {"watchNamespaces": ["Team_A"]}}, "at '/operator/watchNamespaces/0'"),
        ({"operator": {"logFormat": "xml"}}, "at '/operator/logFormat': value must be one of"),
        (
            {"webhooks": {"certificates": {"mode": "vault"}}},
            "value must be one of 'helm', 'cert-manager'",
        ),
        ({"webhooks": {"timeoutSeconds": 60}}, "at '/webhooks/timeoutSeconds'"),
        ({"image": {"digest": "latest"}}, "at '/image/digest'"),
        (
            {"metrics": {"serviceMonitor": {"interval": "often"}}},
            "at '/metrics/serviceMonitor/interval'",
        ),
        ({"dashbord": {"enabled": True}}, "additional properties 'dashbord' not allowed"),
        ({"operator": {"ports": {"health": 70000}}}, "at '/operator/ports/health'"),
    ],
    ids=lambda v: json.dumps(v)[:40] if isinstance(v, dict) else None,
)
def test_schema_refuses_bad_values_naming_them(values: dict[str, Any], message: str) -> None:
    with helm.Chart.load(str(CHART)) as chart, pytest.raises(helm.HelmValuesError) as refused:
        chart.validate_schema(values)
    assert message in str(refused.value)


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"operator": {"replicas": 2, "peering": {"enabled": False}}},
         "operator.replicas > 1 needs operator.peering.enabled=true"),
        ({"networkPolicy": {"engines": {"enabled": True}}},
         "networkPolicy.engines.enabled needs networkPolicy.engines.namespaces"),
    ],
)  # fmt: skip
def test_combinations_the_schema_cannot_express_fail_with_the_fix(
    values: dict[str, Any], message: str
) -> None:
    with pytest.raises(helm.HelmError, match=re.escape(message)):
        render(values)
