"""How a RoutingPolicy's router runs: gateway or sidecar, its pods, Service and client auth.

Separate from the routing rules because it describes a workload, not a decision.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated

from pydantic import Field

from tierwise.api.common import Quantity, SecretKeySelector, SpecModel


class RouterMode(StrEnum):
    GATEWAY = "gateway"
    SIDECAR = "sidecar"


class ServiceType(StrEnum):
    CLUSTER_IP = "ClusterIP"
    NODE_PORT = "NodePort"
    LOAD_BALANCER = "LoadBalancer"


class ClientAuth(SpecModel):
    """Who may call the router."""

    api_keys_secret_ref: SecretKeySelector
    """Secret key listing accepted client API keys, one per line (Authorization: Bearer)."""


class RouterResources(SpecModel):
    """Requests and limits of each router pod."""

    cpu: Quantity = "1"
    """CPU request and limit."""
    memory: Quantity = "512Mi"
    """Memory request and limit."""


class RouterService(SpecModel):
    """The Service in front of a gateway router."""

    type: ServiceType = ServiceType.CLUSTER_IP
    """ClusterIP, NodePort or LoadBalancer."""
    port: Annotated[int, Field(ge=1, le=65535)] = 80
    """Service port."""


class RouterSpec(SpecModel):
    """How the router runs."""

    mode: RouterMode = RouterMode.GATEWAY
    """gateway: a Deployment and Service; sidecar: injected into pods labelled
    tierwise.dev/routing-policy=NAME."""
    replicas: Annotated[int, Field(ge=1, le=100)] = 2
    """Router pods (gateway mode; ignored in sidecar mode, where each labelled pod gets one)."""
    port: Annotated[int, Field(ge=1024, le=65535)] = 8080
    """Port the router listens on: the container port behind the Service in gateway mode; in
    sidecar mode the localhost port the application calls (http://localhost:PORT/v1), so
    pick one the application does not use."""
    workers: Annotated[int, Field(ge=1, le=64)] = 1
    """Router processes per container, sharing the port (SO_REUSEPORT) with one merged
    /metrics: set it to the CPU limit (resources.cpu) to use every core. Use it with
    balancing.policy prefix-hash, which makes the same choice in every process;
    prefix-aware keeps a prefix index per process, so conversations whose connections
    reach different workers lose cache affinity."""
    image: Annotated[str, Field(min_length=1, max_length=512)] | None = None
    """Router image; defaults to the operator's own."""
    resources: RouterResources = Field(
        default_factory=RouterResources, json_schema_extra={"default": {}}
    )
    """Resources of each router container (pod in gateway mode, sidecar in sidecar mode)."""
    service: RouterService = Field(default_factory=RouterService, json_schema_extra={"default": {}})
    """Service of a gateway router (ignored in sidecar mode)."""
    auth: ClientAuth | None = None
    """Client authentication; unset accepts every caller that can reach the Service."""
