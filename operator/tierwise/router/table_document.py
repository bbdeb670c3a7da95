"""The routing table as a file (``tierwise router --table PATH``): dump, load, validate.

Why it exists: a whole resolved table — spec, endpoints per tier, prices per tier — can be
written by another tool (or a test) and served as is, and a bad file must be refused with
every field at fault named. Document (YAML or JSON)::

    apiVersion: tierwise.dev/v1alpha1
    kind: RoutingTable
    version: 3f2a9c1e0b7d4a61          # content hash unless the writer assigns one
    spec: {...}                         # the RoutingPolicy spec, camelCase as in the CRD
    endpoints:                          # tier name -> endpoints, in backend order
      small:
        - {url: http://10.0.0.7:8000, backend: qwen3-8b, upstreamModel: qwen3-8b,
           replica: qwen3-8b-7d9f-abcde}  # replica: optional (x-tierwise-replica)
      frontier:
        - {url: https://api.openai.com, apiBase: https://api.openai.com/v1,
           backend: "external:gpt-4.1", upstreamModel: gpt-4.1, external: true,
           apiKeyFile: /var/run/secrets/tierwise/frontier-api-key/api-key}
    prices:                             # tier name -> resolved price
      small: {perGPUHour: 1.2, gpusPerReplica: 1}
      # a tier with several ModelDeployments: GPUs per replica of each (optional)
      # mid: {perGPUHour: 2.0, gpusPerReplica: 1, gpusPerBackend: {qwen3-14b: 1, qwen3-32b: 4}}

In a cluster the router does not read such a file: it builds the table from the policy
document and discovered replicas (:func:`tierwise.router.table.table_from_config`).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import orjson
import yaml
from pydantic import ValidationError

from tierwise.api.common import API_VERSION
from tierwise.api.errors import SpecIssue, issues_from
from tierwise.api.routing_policy import RoutingPolicySpec
from tierwise.router.cost import TierPrice
from tierwise.router.table import Endpoint, RoutingTable, assemble, normalize_base, table_body

KIND = "RoutingTable"


class TableError(ValueError):
    """A routing table document is invalid; ``issues`` name each field at fault."""

    def __init__(self, issues: Sequence[SpecIssue], source: str = "routing table") -> None:
        self.issues = list(issues)
        lines = "\n".join(f"  {issue}" for issue in self.issues)
        super().__init__(f"{source} is invalid:\n{lines}")


def table_document(table: RoutingTable) -> dict[str, Any]:
    return {
        "apiVersion": API_VERSION,
        "kind": KIND,
        "version": table.version,
        **table_body(table.spec, table.tiers),
    }


def dump_table(table: RoutingTable) -> bytes:
    """The table as JSON (valid YAML too), keys sorted."""
    return orjson.dumps(table_document(table), option=orjson.OPT_SORT_KEYS | orjson.OPT_INDENT_2)


def read_yaml(path: str | Path, what: str = "YAML/JSON") -> Any:
    """A YAML (or JSON) file's content; :class:`TableError` when unreadable or malformed."""
    source = str(path)
    try:
        return yaml.safe_load(Path(path).read_text(encoding="utf-8"))
    except OSError as exc:
        raise TableError([SpecIssue("", f"cannot read file: {exc.strerror}")], source) from exc
    except (yaml.YAMLError, UnicodeDecodeError) as exc:
        raise TableError([SpecIssue("", f"malformed {what}: {exc}")], source) from exc


def load_table(path: str | Path) -> RoutingTable:
    """Read and validate a table document; :class:`TableError` names each bad field."""
    return parse_table(read_yaml(path), source=str(path))


def parse_table(raw: Any, *, source: str = "routing table") -> RoutingTable:
    """Validate an already parsed table document (a mapping)."""
    issues: list[SpecIssue] = []
    if not isinstance(raw, dict):
        raise TableError([SpecIssue("", "a routing table must be a mapping")], source)
    if raw.get("kind") != KIND:
        issues.append(SpecIssue("kind", f"{raw.get('kind')!r} is not {KIND!r}"))
    if raw.get("apiVersion") != API_VERSION:
        issues.append(
            SpecIssue(
                "apiVersion",
                f"{raw.get('apiVersion')!r} is not a table version this router reads; "
                f"use {API_VERSION} (upgrade the router to read newer tables)",
            )
        )
    version = raw.get("version")
    if not isinstance(version, str) or not version:
        issues.append(SpecIssue("version", "is required: a non-empty string"))
    if issues:
        raise TableError(issues, source)
    try:
        spec = RoutingPolicySpec.model_validate(raw.get("spec"))
    except ValidationError as exc:
        found = issues_from(exc, RoutingPolicySpec)
        raise TableError(
            [SpecIssue(_under("spec", i.path), i.message) for i in found], source
        ) from exc
    names = {t.name for t in spec.tiers}
    endpoints = _parse_endpoints(raw.get("endpoints"), names, issues)
    prices = _parse_prices(raw.get("prices"), names, issues)
    if issues:
        raise TableError(issues, source)
    assert isinstance(version, str)
    return assemble(spec, endpoints, prices, version)


def _under(prefix: str, path: str) -> str:
    if not path:
        return prefix
    return prefix + path if path.startswith("[") else f"{prefix}.{path}"


def _tier_map(
    raw: Any, field_name: str, names: set[str], issues: list[SpecIssue]
) -> dict[str, Any]:
    if raw is None:
        return {}
    if not isinstance(raw, dict):
        issues.append(SpecIssue(field_name, "must be a mapping of tier name to a value"))
        return {}
    unknown = [k for k in raw if k not in names]
    for name in unknown:
        issues.append(
            SpecIssue(
                f"{field_name}.{name}",
                f"tier {name!r} is not in spec.tiers ({', '.join(sorted(names))})",
            )
        )
    return {k: v for k, v in raw.items() if k in names}


def _parse_endpoints(
    raw: Any, names: set[str], issues: list[SpecIssue]
) -> dict[str, tuple[Endpoint, ...]]:
    out: dict[str, tuple[Endpoint, ...]] = {}
    for tier, items in _tier_map(raw, "endpoints", names, issues).items():
        if not isinstance(items, list):
            issues.append(SpecIssue(f"endpoints.{tier}", "must be a list of endpoints"))
            continue
        parsed = [
            _parse_endpoint(item, f"endpoints.{tier}[{i}]", issues) for i, item in enumerate(items)
        ]
        out[tier] = tuple(e for e in parsed if e is not None)
    return out


def _parse_endpoint(item: Any, path: str, issues: list[SpecIssue]) -> Endpoint | None:
    if not isinstance(item, dict):
        issues.append(SpecIssue(path, "must be a mapping with url, backend, upstreamModel"))
        return None
    before = len(issues)
    for key in ("url", "backend", "upstreamModel"):
        if not isinstance(item.get(key), str) or not item.get(key):
            issues.append(SpecIssue(f"{path}.{key}", "is required: a non-empty string"))
    url = item.get("url")
    if isinstance(url, str) and not url.startswith(("http://", "https://")):
        issues.append(SpecIssue(f"{path}.url", f"{url!r} must start with http:// or https://"))
    weight = item.get("weight", 1)
    if isinstance(weight, bool) or not isinstance(weight, int) or weight < 1:
        issues.append(SpecIssue(f"{path}.weight", f"{weight!r} must be an integer >= 1"))
    for key in ("apiKeyFile", "replica"):
        if item.get(key) is not None and not isinstance(item.get(key), str):
            issues.append(SpecIssue(f"{path}.{key}", "must be a string"))
    timeout = item.get("timeoutSeconds")
    if timeout is not None and (
        isinstance(timeout, bool) or not isinstance(timeout, int | float) or timeout <= 0
    ):
        issues.append(SpecIssue(f"{path}.timeoutSeconds", f"{timeout!r} must be a number > 0"))
    if len(issues) > before:
        return None
    return Endpoint(
        normalize_base(str(url)),
        item["backend"],
        item["upstreamModel"],
        item.get("apiKeyFile"),
        bool(item.get("external", False)),
        str(item.get("apiBase") or ""),
        weight,
        None if timeout is None else float(timeout),
        str(item.get("replica") or ""),
    )


def _parse_prices(raw: Any, names: set[str], issues: list[SpecIssue]) -> dict[str, TierPrice]:
    out: dict[str, TierPrice] = {}
    for tier, value in _tier_map(raw, "prices", names, issues).items():
        if not isinstance(value, dict):
            issues.append(SpecIssue(f"prices.{tier}", "must be a mapping"))
            continue
        try:
            out[tier] = TierPrice.from_dict(value)
        except ValueError as exc:
            issues.append(SpecIssue(f"prices.{tier}", str(exc)))
    return out
