"""Building blocks shared by both custom resources.

Every spec model derives from :class:`SpecModel` so the whole API has one naming rule
(camelCase on the wire, snake_case in Python), one strictness rule (unknown fields are
errors, because a typo in YAML must not silently fall back to a default) and one place
where field docstrings become the CRD descriptions ``kubectl explain`` shows.
"""

from __future__ import annotations

import re
from datetime import datetime
from enum import StrEnum
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field
from pydantic.alias_generators import to_camel

GROUP = "tierwise.dev"
VERSION = "v1alpha1"
API_VERSION = f"{GROUP}/{VERSION}"

# Kubernetes resource.Quantity, as apimachinery's regular expression accepts it.
QUANTITY_PATTERN = r"^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$"
# Go-style durations restricted to what people write in YAML: 30s, 5m, 1h30m, 500ms.
DURATION_PATTERN = r"^([0-9]+(ms|s|m|h))+$"
# RFC 1123 label: the shape of names that become Kubernetes object names or label values.
DNS_LABEL_PATTERN = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$"

Quantity = Annotated[str, Field(pattern=QUANTITY_PATTERN, max_length=64)]
Duration = Annotated[str, Field(pattern=DURATION_PATTERN, max_length=32)]
DNSLabel = Annotated[str, Field(pattern=DNS_LABEL_PATTERN, min_length=1, max_length=63)]
# RFC 1123 subdomain: Secret, PVC and ModelDeployment names.
DNS_SUBDOMAIN_PATTERN = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$"
DNSSubdomain = Annotated[str, Field(pattern=DNS_SUBDOMAIN_PATTERN, min_length=1, max_length=253)]

# A list of named items is a map keyed by name to the API server: server-side apply merges
# it item by item and the API server itself rejects two items with the same name.
LIST_MAP: dict[str, Any] = {"x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["name"]}
CONDITIONS_LIST_MAP: dict[str, Any] = {
    "x-kubernetes-list-type": "map",
    "x-kubernetes-list-map-keys": ["type"],
}

_DURATION_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0}
_DURATION_PART = re.compile(r"([0-9]+)(ms|s|m|h)")


def parse_duration(text: str) -> float:
    """Seconds in a duration string such as ``1h30m``; the schema has already checked its shape."""
    if not re.fullmatch(DURATION_PATTERN, text):
        raise ValueError(f"{text!r} is not a duration; write it like 30s, 5m or 1h30m")
    return sum(int(n) * _DURATION_UNITS[unit] for n, unit in _DURATION_PART.findall(text))


class FieldError(ValueError):
    """A cross-field error that knows which field (relative to the model) is at fault.

    pydantic keeps the raised exception in the error's context, so the formatter can append
    ``path`` to the location and the user reads the exact field to change.
    """

    def __init__(self, path: str, message: str) -> None:
        super().__init__(message)
        self.path = path
        self.message = message


def cel(rule: str, message: str, field_path: str | None = None) -> dict[str, str]:
    """One ``x-kubernetes-validations`` entry; the pydantic validator beside it says the same."""
    entry = {"rule": rule, "message": message}
    if field_path:
        entry["fieldPath"] = field_path
    return entry


def validations(*rules: dict[str, str]) -> ConfigDict:
    """Model config carrying CEL rules; pydantic merges it with the base class's config."""
    entries: list[Any] = list(rules)
    return ConfigDict(json_schema_extra={"x-kubernetes-validations": entries})


class SpecModel(BaseModel):
    """Base of every spec model: camelCase aliases, unknown fields rejected, immutable."""

    model_config = ConfigDict(
        alias_generator=to_camel,
        validate_by_name=True,
        validate_by_alias=True,
        serialize_by_alias=True,
        extra="forbid",
        frozen=True,
        use_attribute_docstrings=True,
    )


class StatusModel(BaseModel):
    """Base of status models: tolerant of fields a newer operator version wrote."""

    model_config = ConfigDict(
        alias_generator=to_camel,
        validate_by_name=True,
        validate_by_alias=True,
        serialize_by_alias=True,
        extra="ignore",
        use_attribute_docstrings=True,
    )


class SecretKeySelector(SpecModel):
    """A key of a Secret in the resource's own namespace. Values are never copied or logged."""

    name: DNSSubdomain
    """Name of the Secret (same namespace as this resource)."""
    key: Annotated[str, Field(min_length=1, max_length=253, pattern=r"^[-._a-zA-Z0-9]+$")]
    """Key inside the Secret's data holding the value."""


class Price(SpecModel):
    """What a model costs. Token prices are in US dollars per million tokens.

    A self-hosted model may instead be priced per GPU-hour: the router then derives an
    effective per-token price from the replicas serving and their observed throughput,
    so self-hosted tokens are never counted as free.
    """

    input_per_million_tokens: Annotated[float, Field(ge=0)] | None = None
    """Dollars per million prompt (input) tokens."""
    output_per_million_tokens: Annotated[float, Field(ge=0)] | None = None
    """Dollars per million generated (output) tokens."""
    per_gpu_hour: Annotated[float, Field(ge=0)] | None = Field(None, alias="perGPUHour")
    """Dollars per GPU-hour, for self-hosted models priced by the hardware they hold."""


class ConditionStatus(StrEnum):
    TRUE = "True"
    FALSE = "False"
    UNKNOWN = "Unknown"


class ConditionType(StrEnum):
    READY = "Ready"
    PROGRESSING = "Progressing"
    DEGRADED = "Degraded"
    RECONCILING = "Reconciling"
    """kstatus: True while the operator still works toward the spec (GitOps tools wait)."""
    STALLED = "Stalled"
    """kstatus: True when the spec cannot be reached without a person (GitOps tools fail)."""


class Condition(StatusModel):
    """The Kubernetes condition convention (metav1.Condition)."""

    type: str
    """Ready, Progressing or Degraded; Reconciling and Stalled for kstatus (Flux)."""
    status: ConditionStatus
    """True, False or Unknown."""
    reason: str
    """A CamelCase word a machine can match on."""
    message: str = ""
    """What a person should know, naming the field to change when the spec is at fault."""
    last_transition_time: datetime | None = None
    """When status last changed."""
    observed_generation: int | None = None
    """The metadata.generation this condition was computed from."""


class ObjectMeta(BaseModel):
    """The parts of metadata Tierwise reads; everything else is kept as it is."""

    model_config = ConfigDict(alias_generator=to_camel, validate_by_name=True, extra="allow")

    name: DNSSubdomain
    """Object name; the API server accepts lowercase RFC 1123 subdomains only."""
    namespace: str | None = None
    labels: dict[str, str] = Field(default_factory=dict)
    annotations: dict[str, str] = Field(default_factory=dict)
    generation: int | None = None
    uid: str | None = None


def as_plain(value: Any) -> Any:
    """Dump a model the way it appears in Kubernetes: aliases, no unset optionals."""
    if isinstance(value, BaseModel):
        return value.model_dump(mode="json", by_alias=True, exclude_none=True)
    return value
