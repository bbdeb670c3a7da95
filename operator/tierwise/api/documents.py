"""Read Tierwise custom resources from YAML and validate them with the API models.

Shared by ``tierwise validate``, ``tierwise render`` and ``tierwise route explain`` so each
reads files the same way: multi-document YAML, directories expanded, other kinds skipped
or reported, malformed YAML reported with its position, never a traceback.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ValidationError

from tierwise.api.common import API_VERSION, GROUP
from tierwise.api.errors import SpecIssue, issues_from
from tierwise.api.model_deployment import ModelDeployment
from tierwise.api.routing_policy import RoutingPolicy

KINDS: dict[str, type[ModelDeployment] | type[RoutingPolicy]] = {
    "ModelDeployment": ModelDeployment,
    "RoutingPolicy": RoutingPolicy,
}
YAML_SUFFIXES = (".yaml", ".yml", ".json")


@dataclass
class Document:
    """One YAML document of a file, validated when it is a Tierwise kind."""

    source: str
    index: int
    raw: Any
    kind: str | None = None
    name: str = "?"
    resource: BaseModel | None = None
    issues: list[SpecIssue] = field(default_factory=list)
    skipped: bool = False
    """True for a plain Kubernetes object (a Secret beside a RoutingPolicy): not ours to check."""

    @property
    def label(self) -> str:
        if self.kind is None:
            return f"document {self.index + 1}"
        return f"{self.kind}/{self.name}"

    @property
    def ok(self) -> bool:
        return not self.issues


def expand_paths(paths: list[str]) -> list[Path]:
    """Files named, and YAML files under directories named (sorted, not recursing into
    ``invalid/`` folders, which hold deliberately broken examples)."""
    out: list[Path] = []
    for name in paths:
        path = Path(name)
        if path.is_dir():
            out.extend(
                p
                for p in sorted(path.rglob("*"))
                if p.suffix in YAML_SUFFIXES
                and p.is_file()
                and "invalid" not in p.parts[len(path.parts) :]
            )
        else:
            out.append(path)
    return out


def load_documents(path: Path) -> Iterator[Document]:
    """Every document of a file, each validated; problems are reported on the document."""
    source = str(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        yield Document(source, 0, None, issues=[SpecIssue("", f"cannot read file: {exc.strerror}")])
        return
    try:
        raws = [d for d in yaml.safe_load_all(text) if d is not None]
    except yaml.YAMLError as exc:
        yield Document(source, 0, None, issues=[SpecIssue("", _yaml_error(exc))])
        return
    for index, raw in enumerate(raws):
        yield validate_document(raw, source=source, index=index)


def validate_document(raw: Any, *, source: str = "<input>", index: int = 0) -> Document:
    doc = Document(source, index, raw)
    if not isinstance(raw, dict):
        doc.issues.append(SpecIssue("", "a document must be a mapping with apiVersion and kind"))
        return doc
    doc.kind = str(raw.get("kind") or "") or None
    metadata = raw.get("metadata")
    doc.name = str(metadata.get("name", "?")) if isinstance(metadata, dict) else "?"
    api_version = raw.get("apiVersion")
    if doc.kind is None or not isinstance(api_version, str) or not api_version:
        doc.issues.append(
            SpecIssue(
                "",
                "a document needs apiVersion and kind; add them (e.g. "
                f"apiVersion: {API_VERSION}, kind: ModelDeployment)",
            )
        )
        return doc
    model = KINDS.get(doc.kind)
    if model is None:
        if api_version.partition("/")[0] != GROUP:
            doc.skipped = True  # a Kubernetes kind in an example folder, not a Tierwise one
        else:
            doc.issues.append(SpecIssue("kind", _unknown_kind(doc.kind)))
        return doc
    if api_version != API_VERSION:
        doc.issues.append(
            SpecIssue("apiVersion", f"{raw.get('apiVersion')!r} is not served; use {API_VERSION}")
        )
        return doc
    try:
        doc.resource = model.model_validate(raw)
    except ValidationError as exc:
        doc.issues.extend(issues_from(exc, model))
    return doc


def _yaml_error(exc: yaml.YAMLError) -> str:
    mark = getattr(exc, "problem_mark", None)
    problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
    where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
    return f"malformed YAML{where}: {problem}; fix the indentation or quoting there"


def _unknown_kind(kind: str) -> str:
    close = difflib.get_close_matches(kind, list(KINDS), n=1, cutoff=0.6)
    hint = f"did you mean {close[0]}?" if close else f"use {' or '.join(KINDS)}"
    return f"unknown kind {kind!r} in group {GROUP}; {hint}"
