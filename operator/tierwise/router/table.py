"""The routing table: everything the router needs to route, as one versioned document.

Why it exists: the operator (in-cluster) and ``tierwise router --policy --endpoints``
(locally) must hand the data plane exactly the same thing, and the data plane must be able
to replace it while serving. A table is a RoutingPolicy spec with each tier resolved to
concrete endpoints and a price; it is immutable, carries a version (a stable content hash
unless the writer assigns one), and is swapped with a single reference assignment.

Document (YAML or JSON)::

    apiVersion: tierwise.dev/v1alpha1
    kind: RoutingTable
    version: 3f2a9c1e0b7d4a61          # content hash unless the writer assigns one
    spec: {...}                         # the RoutingPolicy spec, camelCase as in the CRD
    endpoints:                          # tier name -> endpoints, in backend order
      small:
        - {url: http://10.0.0.7:8000, backend: qwen3-8b, upstreamModel: qwen3-8b}
      frontier:
        - {url: https://api.openai.com, apiBase: https://api.openai.com/v1,
           backend: "external:gpt-4.1", upstreamModel: gpt-4.1, external: true,
           apiKeyFile: /var/run/secrets/tierwise/frontier-api-key/api-key}
    prices:                             # tier name -> resolved price
      small: {perGPUHour: 1.2, gpusPerReplica: 1}
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson
import yaml
from pydantic import ValidationError

from tierwise.api.common import API_VERSION, parse_duration
from tierwise.api.errors import SpecIssue, issues_from
from tierwise.api.model_deployment import ModelDeployment
from tierwise.api.routing_policy import Backend, RoutingPolicy, RoutingPolicySpec, Tier
from tierwise.router.cost import TierPrice
from tierwise.router.tiers import CompiledRule, compile_rules

KIND = "RoutingTable"


class TableError(ValueError):
    """A routing table document is invalid; ``issues`` name each field at fault."""

    def __init__(self, issues: Sequence[SpecIssue], source: str = "routing table") -> None:
        self.issues = list(issues)
        lines = "\n".join(f"  {issue}" for issue in self.issues)
        super().__init__(f"{source} is invalid:\n{lines}")


@dataclass(frozen=True, slots=True)
class Endpoint:
    """One upstream replica or external API."""

    url: str
    """Base URL without trailing slash and without /v1 (the router appends /v1/...)."""
    backend: str
    """Backend key: ModelDeployment name or ``external:MODEL`` (x-tierwise-backend)."""
    upstream_model: str
    """Model name to put in the forwarded request body."""
    api_key_file: str | None = None
    """Mounted Secret file with the API key (external only); read by the data plane only."""
    external: bool = False
    api_base: str = ""
    """URL up to and including the API version path; ``api_base + "/chat/completions"``
    is always right, also for providers whose base does not end in /v1."""
    weight: int = 1
    timeout_s: float | None = None

    def __post_init__(self) -> None:
        if not self.api_base:
            object.__setattr__(self, "api_base", self.url + "/v1")

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "url": self.url,
            "apiBase": self.api_base,
            "backend": self.backend,
            "upstreamModel": self.upstream_model,
            "external": self.external,
            "weight": self.weight,
        }
        if self.api_key_file is not None:
            out["apiKeyFile"] = self.api_key_file
        if self.timeout_s is not None:
            out["timeoutSeconds"] = self.timeout_s
        return out


@dataclass(frozen=True, slots=True)
class TierEntry:
    """One tier, resolved."""

    name: str
    index: int
    """Position in spec.tiers, cheapest first."""
    endpoints: tuple[Endpoint, ...]
    price: TierPrice
    max_prompt_tokens: int | None


@dataclass(frozen=True)
class RoutingTable:
    """An immutable, versioned routing table (see the module docstring)."""

    version: str
    aliases: frozenset[str]
    """Model names clients may send: spec.models plus every model a rule names."""
    tiers: tuple[TierEntry, ...]
    spec: RoutingPolicySpec
    rules: tuple[CompiledRule, ...] = field(init=False, repr=False, compare=False)
    default_tier: str = field(init=False, repr=False, compare=False)
    _by_name: dict[str, TierEntry] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_by_name", {t.name: t for t in self.tiers})
        object.__setattr__(self, "rules", compile_rules(self.spec))
        object.__setattr__(self, "default_tier", self.spec.effective_default_tier)

    def has_tier(self, name: str) -> bool:
        return name in self._by_name

    def tier(self, name: str) -> TierEntry:
        return self._by_name[name]

    def next_tier(self, name: str) -> TierEntry | None:
        index = self._by_name[name].index + 1
        return self.tiers[index] if index < len(self.tiers) else None


class TableHolder:
    """The current table. ``swap`` is one reference assignment (atomic under the GIL);
    a request reads ``holder.current`` once and keeps that table until it finishes."""

    __slots__ = ("current",)

    def __init__(self, table: RoutingTable) -> None:
        self.current = table

    def swap(self, new: RoutingTable) -> None:
        self.current = new


def build_table(
    policy: RoutingPolicy,
    endpoints: Mapping[str, Sequence[str]],
    *,
    secrets_dir: str | None = None,
    deployments: Mapping[str, ModelDeployment] | None = None,
    version: str | None = None,
) -> RoutingTable:
    """Resolve ``policy`` against ``endpoints`` (ModelDeployment name -> base URLs).

    ``deployments`` (optional) supplies served model names, GPUs per replica and the
    default price of tiers without ``price``. A ModelDeployment missing from
    ``endpoints`` contributes no endpoint (the tier may be empty: the data plane escalates).
    """
    spec = policy.spec
    deployments = deployments or {}
    resolved = {
        tier.name: tuple(
            ep
            for backend in tier.backends
            for ep in _backend_endpoints(backend, endpoints, secrets_dir, deployments)
        )
        for tier in spec.tiers
    }
    prices = {tier.name: _tier_price(tier, deployments) for tier in spec.tiers}
    return _assemble(spec, resolved, prices, version)


def _assemble(
    spec: RoutingPolicySpec,
    endpoints: Mapping[str, tuple[Endpoint, ...]],
    prices: Mapping[str, TierPrice],
    version: str | None,
) -> RoutingTable:
    tiers = tuple(
        TierEntry(
            t.name,
            i,
            endpoints.get(t.name, ()),
            prices.get(t.name, TierPrice()),
            t.max_prompt_tokens,
        )
        for i, t in enumerate(spec.tiers)
    )
    aliases = set(spec.models)
    for rule in spec.rules:
        aliases.update(rule.match.models)
    body = _body(spec, tiers)
    return RoutingTable(version or content_hash(body), frozenset(aliases), tiers, spec)


def _normalize_base(url: str) -> str:
    url = url.strip().rstrip("/")
    return url[: -len("/v1")] if url.endswith("/v1") else url


def _backend_endpoints(
    backend: Backend,
    endpoints: Mapping[str, Sequence[str]],
    secrets_dir: str | None,
    deployments: Mapping[str, ModelDeployment],
) -> list[Endpoint]:
    if backend.external is not None:
        ext = backend.external
        api_base = ext.base_url.rstrip("/")
        ref = ext.api_key_secret_ref
        key_file = f"{secrets_dir.rstrip('/')}/{ref.name}/{ref.key}" if secrets_dir else None
        return [
            Endpoint(
                _normalize_base(api_base),
                backend.key,
                ext.model,
                key_file,
                True,
                api_base,
                backend.weight,
                parse_duration(ext.timeout),
            )
        ]
    name = backend.model_deployment or ""
    md = deployments.get(name)
    served = md.served_model_name if md is not None else name
    return [
        Endpoint(_normalize_base(u), name, served, weight=backend.weight)
        for u in endpoints.get(name, ())
    ]


def _tier_price(tier: Tier, deployments: Mapping[str, ModelDeployment]) -> TierPrice:
    gpus = 1
    price = tier.price
    for backend in tier.backends:
        md = deployments.get(backend.model_deployment or "")
        if md is None:
            continue
        gpus = md.spec.gpus_per_replica
        if price is None and md.spec.cost is not None:
            price = md.spec.cost
        break
    if price is None:
        return TierPrice(gpus_per_replica=gpus)
    return TierPrice(
        price.input_per_million_tokens, price.output_per_million_tokens, price.per_gpu_hour, gpus
    )


def _body(spec: RoutingPolicySpec, tiers: Sequence[TierEntry]) -> dict[str, Any]:
    return {
        "spec": spec.model_dump(mode="json", by_alias=True, exclude_none=True),
        "endpoints": {t.name: [e.to_dict() for e in t.endpoints] for t in tiers},
        "prices": {t.name: t.price.to_dict() for t in tiers},
    }


def content_hash(body: Mapping[str, Any]) -> str:
    """Stable 16-hex-digit hash of a table body (key order does not matter)."""
    return hashlib.sha256(orjson.dumps(body, option=orjson.OPT_SORT_KEYS)).hexdigest()[:16]


def table_document(table: RoutingTable) -> dict[str, Any]:
    return {
        "apiVersion": API_VERSION,
        "kind": KIND,
        "version": table.version,
        **_body(table.spec, table.tiers),
    }


def dump_table(table: RoutingTable) -> bytes:
    """The table as JSON (valid YAML too), keys sorted, for the operator to write."""
    return orjson.dumps(table_document(table), option=orjson.OPT_SORT_KEYS | orjson.OPT_INDENT_2)


def load_table(path: str | Path) -> RoutingTable:
    """Read and validate a table document; :class:`TableError` names each bad field."""
    source = str(path)
    try:
        raw = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
    except OSError as exc:
        raise TableError([SpecIssue("", f"cannot read file: {exc.strerror}")], source) from exc
    except yaml.YAMLError as exc:
        raise TableError([SpecIssue("", f"malformed YAML/JSON: {exc}")], source) from exc
    return parse_table(raw, source=source)


def load_endpoints(path: str | Path) -> dict[str, list[str]]:
    """Read EP.yaml: a mapping of ModelDeployment name to a base URL or a list of them."""
    source = str(path)
    try:
        raw = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
    except OSError as exc:
        raise TableError([SpecIssue("", f"cannot read file: {exc.strerror}")], source) from exc
    except yaml.YAMLError as exc:
        raise TableError([SpecIssue("", f"malformed YAML: {exc}")], source) from exc
    if raw is None:
        return {}
    if not isinstance(raw, dict):
        raise TableError([SpecIssue("", "must map ModelDeployment names to base URLs")], source)
    out: dict[str, list[str]] = {}
    issues: list[SpecIssue] = []
    for name, urls in raw.items():
        items = [urls] if isinstance(urls, str) else urls
        if not isinstance(items, list) or not all(
            isinstance(u, str) and u.startswith(("http://", "https://")) for u in items
        ):
            issues.append(SpecIssue(str(name), "must be an http(s) base URL or a list of them"))
            continue
        out[str(name)] = items
    if issues:
        raise TableError(issues, source)
    return out


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
    return _assemble(spec, endpoints, prices, version)


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
    key_file = item.get("apiKeyFile")
    if key_file is not None and not isinstance(key_file, str):
        issues.append(SpecIssue(f"{path}.apiKeyFile", "must be a file path"))
    timeout = item.get("timeoutSeconds")
    if timeout is not None and (
        isinstance(timeout, bool) or not isinstance(timeout, int | float) or timeout <= 0
    ):
        issues.append(SpecIssue(f"{path}.timeoutSeconds", f"{timeout!r} must be a number > 0"))
    if len(issues) > before:
        return None
    return Endpoint(
        _normalize_base(str(url)),
        item["backend"],
        item["upstreamModel"],
        key_file,
        bool(item.get("external", False)),
        str(item.get("apiBase") or ""),
        weight,
        None if timeout is None else float(timeout),
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
