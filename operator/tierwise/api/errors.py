"""Turn pydantic's validation errors into lines a platform engineer can act on.

Every error names the field as it is spelled in YAML (``spec.engine.tensorParallelSize``)
and says what to do. The same text feeds ``tierwise validate``, the operator's Degraded
condition and the admission webhook, so a user meets one wording wherever they hit it.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, ValidationError

from tierwise.api.common import (
    DNS_LABEL_PATTERN,
    DNS_SUBDOMAIN_PATTERN,
    DURATION_PATTERN,
    QUANTITY_PATTERN,
    FieldError,
)

_NAME_HINT = (
    "is not a valid name; use lowercase letters, digits and '-', starting and ending with "
    "a letter or digit"
)
_PATTERN_HINTS = {
    DNS_LABEL_PATTERN: _NAME_HINT,
    DNS_SUBDOMAIN_PATTERN: _NAME_HINT + " ('.' may separate such parts)",
    QUANTITY_PATTERN: "is not a Kubernetes quantity; write it like 8, 500m, 64Gi or 16G",
    DURATION_PATTERN: "is not a duration; write it like 30s, 5m or 1h30m",
}


@dataclass(frozen=True)
class SpecIssue:
    """One problem with a custom resource: where, and what to do about it."""

    path: str
    message: str

    def __str__(self) -> str:
        return f"{self.path}: {self.message}" if self.path else self.message


def issues_from(error: ValidationError, model: type[BaseModel]) -> list[SpecIssue]:
    """One :class:`SpecIssue` per pydantic error, in the order pydantic found them."""
    return [_issue(raw, model) for raw in error.errors(include_url=False)]


def _issue(raw: Mapping[str, Any], model: type[BaseModel]) -> SpecIssue:
    loc = [str(p) if not isinstance(p, int) else p for p in raw["loc"]]
    ctx = raw.get("ctx") or {}
    cause = ctx.get("error")
    if isinstance(cause, FieldError):
        loc = [p for p in loc if not (isinstance(p, str) and p.startswith("function-"))]
        return SpecIssue(_join(loc, cause.path), cause.message)
    return SpecIssue(_join(loc), _message(raw, loc, model))


def _join(loc: Iterable[str | int], extra: str = "") -> str:
    path = ""
    for part in loc:
        if isinstance(part, int):
            path += f"[{part}]"
        else:
            path += f".{part}" if path else part
    if extra:
        path += extra if extra.startswith("[") or not path else f".{extra}"
    return path


def _message(raw: Mapping[str, Any], loc: list[str | int], model: type[BaseModel]) -> str:
    kind = raw["type"]
    ctx = raw.get("ctx") or {}
    given = raw.get("input")
    if kind == "missing":
        return "is required; add it"
    if kind == "extra_forbidden":
        return _unknown_field(loc, model)
    if kind == "string_pattern_mismatch":
        hint = _PATTERN_HINTS.get(str(ctx.get("pattern")))
        return f"{given!r} {hint}" if hint else f"{given!r} must match {ctx.get('pattern')}"
    if kind == "enum" or kind == "literal_error":
        return f"{given!r} is not allowed; use {ctx.get('expected')}"
    if kind in _BOUNDS:
        word, op, key = _BOUNDS[kind]
        limit = ctx.get(key)
        if isinstance(limit, float) and limit.is_integer():
            limit = int(limit)
        return f"{given!r} is too {word}; use a value {op} {limit}"
    if kind == "value_error":
        return str(ctx.get("error", raw["msg"]))
    if kind in {"too_short", "too_long"}:
        return _length(kind, ctx)
    if kind in {"string_too_short", "string_too_long"}:
        limit = ctx.get("min_length", ctx.get("max_length"))
        word = "short" if kind == "string_too_short" else "long"
        least = "at least" if word == "short" else "at most"
        return f"is too {word}; use {least} {limit} character(s)"
    return f"{raw['msg']} (got {given!r})" if given is not None else str(raw["msg"])


_BOUNDS = {
    "greater_than_equal": ("small", ">=", "ge"),
    "greater_than": ("small", ">", "gt"),
    "less_than_equal": ("large", "<=", "le"),
    "less_than": ("large", "<", "lt"),
}


def _length(kind: str, ctx: Mapping[str, Any]) -> str:
    actual = ctx.get("actual_length")
    if kind == "too_short":
        least = ctx.get("min_length")
        if not actual:
            return f"is empty; add at least {least} item(s)"
        return f"has {actual} item(s); add at least {least}"
    return f"has {actual} item(s); remove some to keep at most {ctx.get('max_length')}"


def _unknown_field(loc: list[str | int], model: type[BaseModel]) -> str:
    name = str(loc[-1])
    known = _field_names_at(model, loc[:-1])
    if f"{name}SecretRef" in known:
        return (
            f"unknown field {name!r}: secrets are never written inline; put the value in a "
            f"Secret and reference it with {name}SecretRef (name, key)"
        )
    close = difflib.get_close_matches(name, known, n=1, cutoff=0.6)
    if close:
        return f"unknown field {name!r}; did you mean {close[0]!r}?"
    return f"unknown field {name!r}; known fields here: {', '.join(sorted(known))}"


def _field_names_at(model: type[BaseModel], loc: list[str | int]) -> list[str]:
    """Aliases of the fields of the model that sits at ``loc`` (best effort)."""
    current: Any = model
    for part in loc:
        if isinstance(part, int):
            continue
        field = _field_by_alias(current, part)
        if field is None:
            return []
        current = _model_of(field.annotation)
        if current is None:
            return []
    return [f.alias or n for n, f in current.model_fields.items()]


def _field_by_alias(model: type[BaseModel], alias: str) -> Any:
    for name, field in model.model_fields.items():
        if (field.alias or name) == alias:
            return field
    return None


def _model_of(annotation: Any) -> type[BaseModel] | None:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    for arg in getattr(annotation, "__args__", ()) or ():
        found = _model_of(arg)
        if found is not None:
            return found
    return None
