"""Label and field selectors as the Kubernetes API server understands them.

kmock's emulator ignores ``labelSelector`` and ``fieldSelector``; the operator
(and kopf, and kubectl) rely on them to narrow lists and watches. This module
parses the selector strings once and matches plain object dicts, so that the
emulator's list, watch and deletecollection verbs can filter faithfully.

Supported label syntax: ``k=v``, ``k==v``, ``k!=v``, ``k in (a,b)``,
``k notin (a,b)``, ``k`` (exists) and ``!k`` (does not exist).
Field selectors accept ``path=v``, ``path==v`` and ``path!=v`` on any dotted
path (a real API server allows only a few paths per resource; we are lenient).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

_SET_EXPR = re.compile(r"^\s*(!?)\s*([\w./-]+)\s+(in|notin)\s+\(([^)]*)\)\s*$")
_EQ_EXPR = re.compile(r"^\s*([\w./-]+)\s*(==|!=|=)\s*([\w./-]*)\s*$")
_EXISTS_EXPR = re.compile(r"^\s*(!?)\s*([\w./-]+)\s*$")


class SelectorError(ValueError):
    """A selector string that cannot be parsed (the API answers 400)."""


@dataclass(frozen=True)
class Requirement:
    """One comma-separated clause of a selector, e.g. ``app in (a,b)``."""

    key: str
    operator: str  # one of: =, !=, in, notin, exists, !exists
    values: frozenset[str]

    def matches(self, value: str | None) -> bool:
        if self.operator == "exists":
            return value is not None
        if self.operator == "!exists":
            return value is None
        if self.operator in ("=", "in"):
            return value is not None and value in self.values
        return value is None or value not in self.values  # "!=", "notin"


def _split_clauses(text: str) -> list[str]:
    """Split on commas that are not inside parentheses."""
    clauses: list[str] = []
    depth, current = 0, ""
    for char in text:
        if char == "," and depth == 0:
            clauses.append(current)
            current = ""
            continue
        depth += (char == "(") - (char == ")")
        current += char
    clauses.append(current)
    return [clause for clause in clauses if clause.strip()]


def parse_selector(text: str | None, *, fields: bool = False) -> list[Requirement]:
    """Parse a label (or, with ``fields=True``, field) selector into requirements."""
    requirements: list[Requirement] = []
    for clause in _split_clauses(text or ""):
        if match := _EQ_EXPR.match(clause):
            key, op, value = match.groups()
            requirements.append(Requirement(key, "!=" if op == "!=" else "=", frozenset([value])))
        elif not fields and (match := _SET_EXPR.match(clause)):
            _, key, op, values = match.groups()
            items = frozenset(v.strip() for v in values.split(",") if v.strip())
            requirements.append(Requirement(key, op, items))
        elif not fields and (match := _EXISTS_EXPR.match(clause)):
            negated, key = match.groups()
            requirements.append(Requirement(key, "!exists" if negated else "exists", frozenset()))
        else:
            kind = "field" if fields else "label"
            raise SelectorError(f"unable to parse requirement {clause!r} of {kind} selector")
    return requirements


def _field_value(obj: Mapping[str, Any], path: str) -> str | None:
    value: Any = obj
    for part in path.split("."):
        if not isinstance(value, Mapping) or part not in value:
            return None
        value = value[part]
    if value is None:
        return None
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def compile_selectors(
    label_selector: str | None, field_selector: str | None
) -> Callable[[Mapping[str, Any]], bool]:
    """Build one predicate over object dicts from both selector strings."""
    labels = parse_selector(label_selector)
    fields = parse_selector(field_selector, fields=True)

    def predicate(obj: Mapping[str, Any]) -> bool:
        obj_labels = obj.get("metadata", {}).get("labels") or {}
        return all(r.matches(obj_labels.get(r.key)) for r in labels) and all(
            r.matches(_field_value(obj, r.key)) for r in fields
        )

    return predicate


def required_label(label_selector: str | None) -> tuple[str, str] | None:
    """A ``(key, value)`` every match must carry (its first ``k=v`` clause), if any.

    Lets the store look only at objects with that label instead of scanning a resource.
    """
    for requirement in parse_selector(label_selector):
        if requirement.operator == "=" and len(requirement.values) == 1:
            return requirement.key, next(iter(requirement.values))
    return None


def format_match_labels(match_labels: Mapping[str, str]) -> str:
    """Render ``matchLabels`` as a selector string (as in a Scale's status.selector)."""
    return ",".join(f"{key}={value}" for key, value in sorted(match_labels.items()))
