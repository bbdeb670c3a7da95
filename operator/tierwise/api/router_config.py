"""The policy document: what the operator tells a router, through the policy's ConfigMap.

Why it exists: the operator and the router never import each other, yet must agree on one
document. It holds the *policy part* of the routing table — the RoutingPolicy spec plus, for
each ModelDeployment the policy names, the facts the router cannot see itself (its Service,
the port name, the served model name, GPUs per replica and its price) — and nothing that
changes when a replica comes or goes: the router discovers ready replicas from the
EndpointSlices of each backend's Service, so an endpoint change costs no API write.

``version`` is a content hash of the rest, so the operator writes the ConfigMap only when the
document changes and ``status.tableVersion`` names what the routers were told. Secrets are
referenced, never inlined: an external backend's key and the client keys are files under
``secretsDir/<secret name>/<key>`` (Secret volumes); a test greps the ConfigMap for a canary
key. Unknown fields are ignored (an older router reads a newer operator's document).

Wire format (JSON, keys camelCase)::

    apiVersion: tierwise.dev/v1alpha1
    kind: RouterConfig
    version: 3f2a9c1e0b7d4a61
    policy: {name: three-tier, namespace: models, generation: 4}
    secretsDir: /var/run/secrets/tierwise
    spec: {...}                 # the RoutingPolicy spec as in the CRD
    backends:                   # ModelDeployment name -> what routing needs of it
      qwen3-8b: {service: qwen3-8b, portName: http, servedModelName: qwen3-8b,
                 gpusPerReplica: 1, cost: {perGPUHour: 2.5}}
    missing: [qwen3-32b]        # named by the spec, not found: their tiers have no replicas
"""

from __future__ import annotations

import hashlib
from typing import Annotated, Any, Literal

import orjson
from pydantic import BaseModel, ConfigDict, Field
from pydantic.alias_generators import to_camel

from tierwise.api.common import Price
from tierwise.api.routing_policy import RoutingPolicySpec

KIND = "RouterConfig"
CONFIG_KEY = "policy.json"
"""The ConfigMap data key (and the mounted file's name) holding the document."""
DEFAULT_SECRETS_DIR = "/var/run/secrets/tierwise"
"""Where the router's Secret volumes are mounted, one folder per Secret."""


class _Wire(BaseModel):
    model_config = ConfigDict(
        alias_generator=to_camel,
        validate_by_name=True,
        validate_by_alias=True,
        serialize_by_alias=True,
        extra="ignore",
        frozen=True,
    )


class PolicyRef(_Wire):
    """Which RoutingPolicy the document came from."""

    name: str
    namespace: str
    generation: int | None = None


class BackendInfo(_Wire):
    """A ModelDeployment as routing needs it."""

    service: Annotated[str, Field(min_length=1)]
    """The Service in front of its engine pods (EndpointSlices carry its name)."""
    port_name: str = "http"
    """Name of the Service port serving the OpenAI API."""
    served_model_name: Annotated[str, Field(min_length=1)]
    """The model name the engine answers to (put into forwarded requests)."""
    gpus_per_replica: Annotated[int, Field(ge=0)] = 1
    cost: Price | None = None
    """The ModelDeployment's spec.cost (a tier's own price wins)."""


class RouterConfig(_Wire):
    """The policy document (see the module docstring)."""

    api_version: Literal["tierwise.dev/v1alpha1"] = "tierwise.dev/v1alpha1"
    kind: Literal["RouterConfig"] = "RouterConfig"
    version: str = ""
    """Content hash of everything else; filled in by :func:`with_version`."""
    policy: PolicyRef
    secrets_dir: str = DEFAULT_SECRETS_DIR
    spec: RoutingPolicySpec
    backends: dict[str, BackendInfo] = Field(default_factory=dict)
    missing: list[str] = Field(default_factory=list)
    """ModelDeployments the spec names that do not exist (sorted)."""


def _content(config: RouterConfig) -> dict[str, Any]:
    body = config.model_dump(mode="json", by_alias=True, exclude_none=True)
    body.pop("version", None)
    return body


def with_version(config: RouterConfig) -> RouterConfig:
    """``config`` with ``version`` set to the hash of its content (stable across key order)."""
    digest = hashlib.sha256(orjson.dumps(_content(config), option=orjson.OPT_SORT_KEYS))
    return config.model_copy(update={"version": digest.hexdigest()[:16]})


def dump_config(config: RouterConfig) -> str:
    """The document as the ConfigMap holds it: sorted, indented JSON (reviewable)."""
    body = config.model_dump(mode="json", by_alias=True, exclude_none=True)
    return orjson.dumps(body, option=orjson.OPT_SORT_KEYS | orjson.OPT_INDENT_2).decode()


def parse_config(raw: Any) -> RouterConfig:
    """Validate a parsed document; raises pydantic's ValidationError naming each field."""
    return RouterConfig.model_validate(raw)
