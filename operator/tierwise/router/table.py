"""The routing table: everything the router needs to route, as one versioned value.

Why it exists: whatever the source — the policy document the operator writes into a
ConfigMap plus the replicas discovered from EndpointSlices (in a cluster), the same
document and an endpoints file, a RoutingPolicy YAML and an endpoints file (locally), or a
table file (``--table``) — the data plane must get exactly the same thing, built the same
way, and must be able to replace it while serving. :func:`table_from_config` is that one
way: a :class:`~tierwise.api.router_config.RouterConfig` plus the ready replicas of each
ModelDeployment in, an immutable :class:`RoutingTable` out. A table carries two versions:
``version`` (a content hash of everything, endpoints included: it changes with every
endpoint change) and ``policy_version`` (the policy document's own version, what the
operator writes as ``status.tableVersion``). It is swapped with a single reference
assignment (:class:`TableHolder`).

Replicas of a ModelDeployment the document has no backend facts for (locally: a
RoutingPolicy without its ModelDeployment files) serve the ModelDeployment's name as the
model, one GPU per replica, unpriced unless the tier has a price — as before the document
existed. In a cluster such a ModelDeployment has no Service to discover, so no replica.

The table file format (``--table PATH``) is :mod:`tierwise.router.table_document`.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from enum import Enum
from typing import Any, Final, Literal

import orjson

from tierwise.api.common import parse_duration
from tierwise.api.model_deployment import ModelDeployment
from tierwise.api.router_config import BackendInfo, RouterConfig
from tierwise.api.routing_policy import Backend, RoutingPolicy, RoutingPolicySpec, Tier
from tierwise.manifests.router_config import router_config
from tierwise.router.cost import TierPrice
from tierwise.router.rules import CompiledRule, compile_rules


class FromDocument(Enum):
    SECRETS_DIR = "the document's secretsDir"


FROM_DOCUMENT: Final = FromDocument.SECRETS_DIR
"""``secrets_dir`` default of :func:`table_from_config`: the policy document's folder."""


@dataclass(frozen=True, slots=True)
class Replica:
    """One ready replica of a ModelDeployment, as discovery found it."""

    url: str
    """Base URL (``http://10.0.0.7:8000``; a trailing ``/`` or ``/v1`` is dropped)."""
    name: str | None = None
    """The pod's name when known (EndpointSlice ``targetRef.name``); else the URL names it."""


def header_safe(name: object) -> bool:
    """A replica name goes into the x-tierwise-replica header: printable ASCII, no space."""
    return isinstance(name, str) and name.isascii() and name.isprintable() and " " not in name


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
    replica: str = ""
    """Replica identity (``x-tierwise-replica``): the pod name where known, else the URL."""

    def __post_init__(self) -> None:
        if not self.api_base:
            object.__setattr__(self, "api_base", self.url + "/v1")
        if not self.replica:
            object.__setattr__(self, "replica", self.url)

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
        if self.replica != self.url:
            out["replica"] = self.replica
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
    absent: bool = False
    """Every backend is a ModelDeployment the operator reported missing: nothing can wake
    the tier, so requests move on at once instead of being held."""

    @property
    def replica_backends(self) -> tuple[str, ...]:
        """The ModelDeployment of each self-hosted replica (what a GPU-hour price counts)."""
        return tuple(e.backend for e in self.endpoints if not e.external)


@dataclass(frozen=True)
class RoutingTable:
    """An immutable, versioned routing table (see the module docstring)."""

    version: str
    aliases: frozenset[str]
    """Model names clients may send: spec.models plus every model a rule names."""
    tiers: tuple[TierEntry, ...]
    spec: RoutingPolicySpec
    policy_version: str = ""
    """The policy document's version (``status.tableVersion``); empty for a table file."""
    secrets_dir: str | None = None
    """Where this table's Secret files are (None: the router's ``--secrets-dir``)."""
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

    def key_files(self) -> list[str]:
        """External endpoints' API key files (watched: Secret volumes rotate)."""
        return sorted({e.api_key_file for t in self.tiers for e in t.endpoints if e.api_key_file})


class TableHolder:
    """The current table. ``swap`` is one reference assignment (atomic under the GIL);
    a request reads ``holder.current`` once and keeps that table until it finishes."""

    __slots__ = ("current",)

    def __init__(self, table: RoutingTable) -> None:
        self.current = table

    def swap(self, new: RoutingTable) -> None:
        self.current = new


Replicas = Mapping[str, Sequence[Replica]]
"""Ready replicas per ModelDeployment name."""


def table_from_config(
    config: RouterConfig,
    replicas: Replicas,
    *,
    secrets_dir: str | Literal[FromDocument.SECRETS_DIR] | None = FROM_DOCUMENT,
    version: str | None = None,
) -> RoutingTable:
    """The routing table for ``config`` with ``replicas`` (the one table path).

    ``secrets_dir`` is where external key files (and client keys) are read: by default the
    document's ``secretsDir``; the router's ``--secrets-dir`` wins when given (it knows
    where its volumes are mounted); None means no key files (a local run without Secrets).
    A ModelDeployment without replicas gives its tier no endpoint (the data plane holds or
    escalates). Replicas keep their order (discovery sorts them, so the version does not
    depend on the order events came in); a URL listed twice counts once.
    """
    folder = config.secrets_dir if secrets_dir is FROM_DOCUMENT else secrets_dir
    spec = config.spec
    resolved = {
        tier.name: tuple(
            ep
            for backend in tier.backends
            for ep in _backend_endpoints(backend, config.backends, replicas, folder)
        )
        for tier in spec.tiers
    }
    prices = {tier.name: _tier_price(tier, config.backends) for tier in spec.tiers}
    missing = set(config.missing)
    absent = frozenset(
        tier.name
        for tier in spec.tiers
        if all(b.model_deployment in missing for b in tier.backends)
    )
    return assemble(
        spec,
        resolved,
        prices,
        version,
        policy_version=config.version,
        secrets_dir=folder,
        absent=absent,
    )


def build_table(
    policy: RoutingPolicy,
    endpoints: Mapping[str, Sequence[str]],
    *,
    secrets_dir: str | None = None,
    deployments: Mapping[str, ModelDeployment] | None = None,
    version: str | None = None,
) -> RoutingTable:
    """``policy`` with ``endpoints`` (ModelDeployment name -> base URLs), through the policy
    document :func:`~tierwise.manifests.router_config.router_config` builds (tests, tools).

    ``deployments`` supply served model names, GPUs per replica and default prices."""
    config = router_config(policy, deployments or {}, report_missing=False)
    found = {name: [Replica(url) for url in urls] for name, urls in endpoints.items()}
    return table_from_config(config, found, secrets_dir=secrets_dir, version=version)


def assemble(
    spec: RoutingPolicySpec,
    endpoints: Mapping[str, tuple[Endpoint, ...]],
    prices: Mapping[str, TierPrice],
    version: str | None,
    *,
    policy_version: str = "",
    secrets_dir: str | None = None,
    absent: frozenset[str] = frozenset(),
) -> RoutingTable:
    """A table from resolved parts (``version``: the content hash unless given)."""
    tiers = tuple(
        TierEntry(
            t.name,
            i,
            endpoints.get(t.name, ()),
            prices.get(t.name, TierPrice()),
            t.max_prompt_tokens,
            t.name in absent,
        )
        for i, t in enumerate(spec.tiers)
    )
    aliases = set(spec.models)
    for rule in spec.rules:
        aliases.update(rule.match.models)
    body = table_body(spec, tiers)
    if policy_version:  # a document change that leaves the body alone is still a new table
        body["policyVersion"] = policy_version
    return RoutingTable(
        version or content_hash(body),
        frozenset(aliases),
        tiers,
        spec,
        policy_version,
        secrets_dir,
    )


def normalize_base(url: str) -> str:
    """A base URL without trailing ``/`` and ``/v1`` (the router appends ``/v1/...``)."""
    url = url.strip().rstrip("/")
    return url[: -len("/v1")] if url.endswith("/v1") else url


def _backend_endpoints(
    backend: Backend,
    infos: Mapping[str, BackendInfo],
    replicas: Replicas,
    secrets_dir: str | None,
) -> list[Endpoint]:
    if backend.external is not None:
        ext = backend.external
        api_base = ext.base_url.rstrip("/")
        ref = ext.api_key_secret_ref
        key_file = f"{secrets_dir.rstrip('/')}/{ref.name}/{ref.key}" if secrets_dir else None
        return [
            Endpoint(
                normalize_base(api_base),
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
    info = infos.get(name)
    served = info.served_model_name if info is not None else name
    found: dict[str, Endpoint] = {}
    for replica in replicas.get(name, ()):
        url = normalize_base(replica.url)
        found.setdefault(
            url, Endpoint(url, name, served, weight=backend.weight, replica=replica.name or url)
        )
    return list(found.values())


def _tier_price(tier: Tier, infos: Mapping[str, BackendInfo]) -> TierPrice:
    """The tier's price, else its first priced ModelDeployment's, with every self-hosted
    backend's GPUs per replica (a GPU-hour price counts them all)."""
    price = tier.price
    per_backend: dict[str, int] = {}
    for backend in tier.backends:
        info = infos.get(backend.model_deployment or "")
        if info is None:
            continue
        per_backend.setdefault(backend.model_deployment or "", info.gpus_per_replica)
        if price is None and info.cost is not None:
            price = info.cost
    gpus = next(iter(per_backend.values()), 1)
    backends = tuple(sorted(per_backend.items())) if len(per_backend) > 1 else ()
    if price is None:
        return TierPrice(gpus_per_replica=gpus, gpus_per_backend=backends)
    return TierPrice(
        price.input_per_million_tokens,
        price.output_per_million_tokens,
        price.per_gpu_hour,
        gpus,
        backends,
    )


def table_body(spec: RoutingPolicySpec, tiers: Sequence[TierEntry]) -> dict[str, Any]:
    """What the content hash covers (and the table file holds besides its header)."""
    return {
        "spec": spec.model_dump(mode="json", by_alias=True, exclude_none=True),
        "endpoints": {t.name: [e.to_dict() for e in t.endpoints] for t in tiers},
        "prices": {t.name: t.price.to_dict() for t in tiers},
    }


def content_hash(body: Mapping[str, Any]) -> str:
    """Stable 16-hex-digit hash of a table body (key order does not matter)."""
    return hashlib.sha256(orjson.dumps(body, option=orjson.OPT_SORT_KEYS)).hexdigest()[:16]
