"""The RoutingPolicy custom resource: which model tier serves each request.

Tiers are ordered cheapest first; rules pick a tier per request; balancing picks a replica
inside it; fallback says what happens when a tier fails or is overloaded. The operator
turns a RoutingPolicy plus the endpoints it observes into the router's routing table.
"""

from __future__ import annotations

import re
from collections import Counter
from enum import StrEnum
from typing import Annotated, Literal

from pydantic import Field, field_validator, model_validator

# The classifiers, the router's workload spec and the status live in their own modules;
# re-exported so callers import one module per kind.
from tierwise.api.classifier_spec import ClassifierCategory as ClassifierCategory
from tierwise.api.classifier_spec import ClassifierSpec as ClassifierSpec
from tierwise.api.classifier_spec import ConfigMapKeySelector as ConfigMapKeySelector
from tierwise.api.classifier_spec import TierQualitySpec as TierQualitySpec
from tierwise.api.common import (
    LIST_MAP,
    DNSLabel,
    DNSSubdomain,
    Duration,
    FieldError,
    ObjectMeta,
    Price,
    SecretKeySelector,
    SpecModel,
    cel,
    validations,
)
from tierwise.api.router_spec import ClientAuth as ClientAuth
from tierwise.api.router_spec import RouterMode as RouterMode
from tierwise.api.router_spec import RouterResources as RouterResources
from tierwise.api.router_spec import RouterService as RouterService
from tierwise.api.router_spec import RouterSpec as RouterSpec
from tierwise.api.router_spec import ServiceType as ServiceType
from tierwise.api.status import BackendStatus as BackendStatus
from tierwise.api.status import RoutingPolicyStatus as RoutingPolicyStatus
from tierwise.api.status import TierStatus as TierStatus

ShortText = Annotated[str, Field(min_length=1, max_length=253)]
ModelAlias = Annotated[str, Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9._:/-]*$", max_length=253)]


class FallbackAction(StrEnum):
    ESCALATE = "escalate"
    REJECT = "reject"


class BalancingPolicy(StrEnum):
    PREFIX_AWARE = "prefix-aware"
    PREFIX_HASH = "prefix-hash"
    LEAST_LOAD = "least-load"
    ROUND_ROBIN = "round-robin"


class ExternalBackend(SpecModel):
    """An OpenAI-compatible API outside the cluster (a frontier model provider)."""

    base_url: Annotated[str, Field(pattern=r"^https?://[^\s]+$", max_length=1024)] = Field(
        alias="baseURL"
    )
    """Base URL of the API, up to and including /v1 (e.g. https://api.openai.com/v1)."""
    model: ModelAlias
    """Model name to send to the API."""
    api_key_secret_ref: SecretKeySelector
    """Secret key holding the API key; mounted as a file into the router, never inlined."""
    timeout: Duration = "120s"
    """Time allowed for a whole response."""


class Backend(SpecModel):
    """One place a tier's requests can go: a ModelDeployment, or an external API."""

    model_deployment: DNSSubdomain | None = None
    """Name of a ModelDeployment in the same namespace."""
    external: ExternalBackend | None = None
    """An external OpenAI-compatible API."""
    weight: Annotated[int, Field(ge=1, le=1000)] = 1
    """Relative share of the tier's traffic when it has several backends: the balancers
    split it equally among the backend's ready replicas and honour it in their choices."""

    model_config = validations(
        cel(
            "has(self.modelDeployment) != has(self.external)",
            "a backend needs exactly one of modelDeployment or external; set one, remove the other",
        )
    )

    @model_validator(mode="after")
    def _exactly_one(self) -> Backend:
        if self.model_deployment is not None and self.external is not None:
            raise FieldError(
                "external",
                "modelDeployment and external are both set; a backend is one or the other, "
                "so remove one (add a second backend for the other)",
            )
        if self.model_deployment is None and self.external is None:
            raise FieldError(
                "modelDeployment",
                "a backend needs a target; set modelDeployment (a ModelDeployment name) or "
                "external (baseURL, model, apiKeySecretRef)",
            )
        return self

    @property
    def identity(self) -> str:
        """What makes two backends the same target (an external API is its URL and model)."""
        if self.external is not None:
            return f"external:{self.external.base_url.rstrip('/')}#{self.external.model}"
        return f"md:{self.model_deployment}"

    @property
    def key(self) -> str:
        """Stable name of the backend, as the x-tierwise-backend header shows it."""
        if self.model_deployment is not None:
            return self.model_deployment
        assert self.external is not None
        return f"external:{self.external.model}"


class Tier(SpecModel):
    """A group of interchangeable backends at one price point."""

    name: DNSLabel
    """Tier name, used by rules, defaultTier, headers and metrics."""
    description: Annotated[str, Field(max_length=1024)] | None = None
    """What this tier is for."""
    backends: Annotated[list[Backend], Field(min_length=1, max_length=32)]
    """Where the tier's requests go; at least one."""
    price: Price | None = None
    """Price of this tier; defaults to each ModelDeployment's spec.cost."""
    max_prompt_tokens: Annotated[int, Field(ge=1)] | None = None
    """Longest prompt (tokens) this tier accepts; longer prompts escalate to the next tier."""

    @model_validator(mode="after")
    def _backends_unique(self) -> Tier:
        seen: dict[str, int] = {}
        for index, backend in enumerate(self.backends):
            key = backend.identity
            if key in seen:
                raise FieldError(
                    f"backends[{index}]",
                    f"this tier already names {backend.key} as backends[{seen[key]}]; a backend "
                    "appears once per tier (use weight to give it a larger share)",
                )
            seen[key] = index
        return self


class HeaderMatch(SpecModel):
    """A request header condition: present, equal to value, or matching regex."""

    name: Annotated[str, Field(pattern=r"^[A-Za-z0-9!#$%&'*+.^_`|~-]+$", max_length=256)]
    """Header name (case-insensitive)."""
    value: Annotated[str, Field(max_length=1024)] | None = None
    """Exact value; unset with no regex means the header only has to be present."""
    regex: Annotated[str, Field(max_length=1024)] | None = None
    """Regular expression (RE2 subset) the value must match."""

    @field_validator("regex")
    @classmethod
    def _compiles(cls, value: str | None) -> str | None:
        return _check_regex(value)


class RuleMatch(SpecModel):
    """Conditions of a rule; all that are set must hold."""

    models: Annotated[list[ModelAlias], Field(max_length=32)] = Field(default_factory=list)
    """Requested model names (the request's model field) this rule applies to."""
    headers: Annotated[list[HeaderMatch], Field(max_length=16)] = Field(default_factory=list)
    """Header conditions."""
    min_prompt_tokens: Annotated[int, Field(ge=0)] | None = None
    """Prompt at least this many tokens long."""
    max_prompt_tokens: Annotated[int, Field(ge=0)] | None = None
    """Prompt at most this many tokens long."""
    keywords: Annotated[
        list[Annotated[str, Field(min_length=1, max_length=256)]], Field(max_length=256)
    ] = Field(default_factory=list)
    """Any of these words or phrases in the prompt (case-insensitive)."""
    regex: Annotated[str, Field(max_length=1024)] | None = None
    """Regular expression (RE2 subset) that must match somewhere in the prompt."""
    category: DNSLabel | None = None
    """A category from spec.classifier the prompt must be classified as."""
    min_predicted_quality: Annotated[float, Field(ge=0, le=1)] | None = None
    """Least probability, predicted by spec.classifier.tierQuality, that this rule's tier
    answers the prompt well (the threshold `tierwise route calibrate` chose)."""

    model_config = validations(
        cel(
            "(has(self.models) && size(self.models) > 0) || "
            "(has(self.headers) && size(self.headers) > 0) || "
            "has(self.minPromptTokens) || has(self.maxPromptTokens) || "
            "(has(self.keywords) && size(self.keywords) > 0) || "
            "has(self.regex) || has(self.category) || has(self.minPredictedQuality)",
            "a rule needs at least one condition; for a catch-all use spec.defaultTier",
        ),
        cel(
            "!has(self.minPromptTokens) || !has(self.maxPromptTokens) || "
            "self.minPromptTokens <= self.maxPromptTokens",
            "minPromptTokens must not exceed maxPromptTokens; swap or correct them",
            ".minPromptTokens",
        ),
    )

    @field_validator("regex")
    @classmethod
    def _compiles(cls, value: str | None) -> str | None:
        return _check_regex(value)

    @model_validator(mode="after")
    def _consistent(self) -> RuleMatch:
        if not (
            self.models
            or self.headers
            or self.keywords
            or self.regex
            or self.category
            or self.min_predicted_quality is not None
            or self.min_prompt_tokens is not None
            or self.max_prompt_tokens is not None
        ):
            raise FieldError(
                "", "a rule needs at least one condition; for a catch-all use spec.defaultTier"
            )
        if (
            self.min_prompt_tokens is not None
            and self.max_prompt_tokens is not None
            and self.min_prompt_tokens > self.max_prompt_tokens
        ):
            raise FieldError(
                "minPromptTokens",
                f"minPromptTokens ({self.min_prompt_tokens}) exceeds maxPromptTokens "
                f"({self.max_prompt_tokens}); swap or correct them",
            )
        return self


class Rule(SpecModel):
    """Send matching requests to a tier. Rules are tried in order; the first match wins."""

    name: DNSLabel
    """Rule name, shown in the x-tierwise-rule header and metrics."""
    tier: DNSLabel
    """Tier that serves matching requests."""
    match: RuleMatch
    """Conditions; all that are set must hold."""
    shadow: bool = False
    """Evaluate and count (tier it would pick, cost it would cause) without enforcing it."""


class FallbackSpec(SpecModel):
    """What happens when a tier fails or is overloaded."""

    on_error: FallbackAction = FallbackAction.ESCALATE
    """After retrying the tier's other replicas: escalate to the next tier, or reject."""
    on_overload: FallbackAction = FallbackAction.ESCALATE
    """When every replica's queue exceeds overloadQueueDepth: escalate, or answer 429."""
    overload_queue_depth: Annotated[int, Field(ge=1, le=100_000)] = 20
    """Waiting requests per replica above which a tier counts as overloaded."""
    max_attempts: Annotated[int, Field(ge=1, le=10)] = 3
    """Upstream attempts per request (replicas and tiers together), before the first byte."""
    retry_after_seconds: Annotated[int, Field(ge=1, le=3600)] = 2
    """Retry-After sent with 429 and 503 answers."""


class BalancingSpec(SpecModel):
    """How a replica is chosen inside a tier."""

    policy: BalancingPolicy = BalancingPolicy.PREFIX_AWARE
    """prefix-aware (the replica most likely to hold the prompt's prefix in cache, unless it
    is saturated, from this router process's own index), prefix-hash (consistent hashing
    of the conversation with bounded load: the same choice in every router replica and
    worker without shared state), least-load, or round-robin."""
    session_header: Annotated[str, Field(max_length=256)] = "x-session-id"
    """Header whose value keeps a session on one replica (the request's user field is used
    when the header is absent)."""
    saturation_queue_depth: Annotated[int, Field(ge=1, le=100_000)] = 5
    """Waiting requests at which a replica is saturated and prefix affinity yields to load."""
    saturation_kv_cache_usage: Annotated[float, Field(gt=0, le=1)] = Field(
        0.8, alias="saturationKVCacheUsage"
    )
    """KV-cache usage (0-1) at which a replica is saturated."""
    min_prefix_match_tokens: Annotated[int, Field(ge=0, le=1_000_000)] = 32
    """A cached prefix shorter than this is not worth affinity; least-load decides."""
    bounded_load_factor: Annotated[float, Field(ge=1, le=10)] = 1.25
    """prefix-hash only: a replica takes a conversation while its load stays within this
    factor of its fair share of the tier's load; past it the conversation moves to the
    next replica on the ring."""


class RoutingPolicySpec(SpecModel):
    """Desired routing: tiers cheapest first, rules, fallback, balancing and the router."""

    models: Annotated[list[ModelAlias], Field(min_length=1, max_length=32)] = Field(
        default_factory=lambda: ["auto"], json_schema_extra={"default": ["auto"]}
    )
    """Model names clients may send; /v1/models lists them. With allowTierPinning a tier's
    name is accepted too and pins the request to that tier."""
    allow_tier_pinning: bool = False
    """Let clients name a tier as the request's model and skip every rule (rule
    ``model-pin``). Off by default: any client that can reach the router could otherwise send
    everything to the most expensive tier; a tier name is then an unknown model (404)."""
    tiers: Annotated[list[Tier], Field(min_length=1, max_length=16, json_schema_extra=LIST_MAP)]
    """Tiers, ordered cheapest first; escalation moves down this list."""
    rules: Annotated[list[Rule], Field(max_length=128, json_schema_extra=LIST_MAP)] = Field(
        default_factory=list
    )
    """Rules, tried in order; the first that matches picks the tier."""
    default_tier: DNSLabel | None = None
    """Tier for requests no rule matches; defaults to the first (cheapest) tier."""
    classifier: ClassifierSpec | None = None
    """Optional prompt classifier feeding rules' match.category."""
    fallback: FallbackSpec = Field(default_factory=FallbackSpec, json_schema_extra={"default": {}})
    """Failure and overload handling."""
    balancing: BalancingSpec = Field(
        default_factory=BalancingSpec, json_schema_extra={"default": {}}
    )
    """Replica selection inside a tier."""
    router: RouterSpec = Field(default_factory=RouterSpec, json_schema_extra={"default": {}})
    """Router deployment."""

    model_config = validations(
        cel(
            "!has(self.rules) || self.rules.all(r, self.tiers.exists(t, t.name == r.tier))",
            "every rule's tier must name a tier in spec.tiers; fix the name or add the tier",
            ".rules",
        ),
        cel(
            "!has(self.defaultTier) || self.tiers.exists(t, t.name == self.defaultTier)",
            "defaultTier must name a tier in spec.tiers; fix the name or add the tier",
            ".defaultTier",
        ),
        cel(
            "!has(self.rules) || self.rules.all(r, !has(r.match.category) || "
            "(has(self.classifier) && "
            "self.classifier.categories.exists(c, c.name == r.match.category)))",
            "a rule's match.category must name a category of spec.classifier; add the "
            "category there or fix the name",
            ".rules",
        ),
        cel(
            "!has(self.rules) || self.rules.all(r, !has(r.match.minPredictedQuality) || "
            "(has(self.classifier) && has(self.classifier.tierQuality)))",
            "a rule's match.minPredictedQuality needs spec.classifier.tierQuality; add the "
            "calibrated classifier or drop the condition",
            ".rules",
        ),
    )

    @model_validator(mode="after")
    def _references_resolve(self) -> RoutingPolicySpec:
        _unique("tiers", [t.name for t in self.tiers])
        _unique("rules", [r.name for r in self.rules])
        tier_names = [t.name for t in self.tiers]
        for i, rule in enumerate(self.rules):
            if rule.tier not in tier_names:
                raise FieldError(
                    f"rules[{i}].tier",
                    f"tier {rule.tier!r} is not defined; use one of {', '.join(tier_names)}",
                )
            self._check_category(i, rule)
            self._check_quality(i, rule)
        if self.default_tier is not None and self.default_tier not in tier_names:
            raise FieldError(
                "defaultTier",
                f"tier {self.default_tier!r} is not defined; use one of {', '.join(tier_names)}",
            )
        if self.classifier is not None:
            _unique("classifier.categories", [c.name for c in self.classifier.categories])
        return self

    def _check_category(self, index: int, rule: Rule) -> None:
        category = rule.match.category
        if category is None:
            return
        path = f"rules[{index}].match.category"
        if self.classifier is None:
            raise FieldError(
                path,
                f"category {category!r} needs spec.classifier; define a classifier with that "
                "category or drop the condition",
            )
        names = [c.name for c in self.classifier.categories]
        if category not in names:
            raise FieldError(
                path, f"category {category!r} is not in spec.classifier; use one of {names}"
            )

    def _check_quality(self, index: int, rule: Rule) -> None:
        if rule.match.min_predicted_quality is None:
            return
        if self.classifier is None or self.classifier.tier_quality is None:
            raise FieldError(
                f"rules[{index}].match.minPredictedQuality",
                "minPredictedQuality needs spec.classifier.tierQuality (the artefact of "
                "`tierwise route calibrate`); add it or drop the condition",
            )

    @property
    def effective_default_tier(self) -> str:
        return self.default_tier or self.tiers[0].name


def _unique(path: str, names: list[str]) -> None:
    for name, count in Counter(names).items():
        if count > 1:
            index = names.index(name, names.index(name) + 1)
            raise FieldError(
                f"{path}[{index}].name",
                f"name {name!r} is used {count} times; names must be unique",
            )


def _check_regex(value: str | None) -> str | None:
    if value is not None:
        try:
            re.compile(value)
        except re.error as exc:
            raise ValueError(f"invalid regular expression: {exc}; fix or escape it") from exc
    return value


class RoutingPolicy(SpecModel):
    """Route each OpenAI-compatible request to the cheapest model tier able to serve it."""

    api_version: Literal["tierwise.dev/v1alpha1"] = "tierwise.dev/v1alpha1"
    kind: Literal["RoutingPolicy"] = "RoutingPolicy"
    metadata: ObjectMeta
    spec: RoutingPolicySpec
    status: RoutingPolicyStatus | None = None
