"""Status of both custom resources: what the operator observed, written only by it.

Kept apart from the specs because status is a separate contract (the status subresource,
tolerant of fields a newer operator wrote) and both kinds share its conventions.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from pydantic import Field

from tierwise.api.common import CONDITIONS_LIST_MAP, Condition, StatusModel


class Phase(StrEnum):
    PENDING = "Pending"
    LOADING = "Loading"
    READY = "Ready"
    DEGRADED = "Degraded"
    SCALED_TO_ZERO = "ScaledToZero"
    FAILED = "Failed"


class ReplicaSignals(StatusModel):
    """The last signals the autoscaler read, summed or averaged over ready replicas."""

    queue_depth: float | None = None
    """Waiting requests per replica."""
    running_requests: float | None = None
    """Running requests per replica."""
    kv_cache_usage: float | None = Field(None, alias="kvCacheUsage")
    """KV-cache usage (0-1), mean over replicas."""
    gpu_utilization: float | None = Field(None, alias="gpuUtilization")
    """GPU utilisation percent, mean over replicas."""
    router_demand: float | None = None
    """Requests the router holds or has in flight for this model (what wakes it from zero)."""
    missing: list[str] = Field(default_factory=list)
    """Signals that could not be read (or were stale) at the last decision."""
    observed_at: datetime | None = None
    """When the signals were read."""


class ModelDeploymentStatus(StatusModel):
    """Observed state, written by the operator only."""

    observed_generation: int | None = None
    """The metadata.generation this status describes."""
    phase: Phase = Phase.PENDING
    """Pending, Loading, Ready, Degraded, ScaledToZero or Failed."""
    replicas: int = 0
    """Engine pods that exist."""
    ready_replicas: int = 0
    """Engine pods ready to serve."""
    desired_replicas: int | None = None
    """Replicas the operator or autoscaler wants."""
    advised_replicas: int | None = None
    """In advisory mode: the replicas the autoscaler would have set."""
    selector: str | None = None
    """Label selector of the engine pods (for the scale subresource)."""
    endpoint: str | None = None
    """In-cluster base URL of the OpenAI-compatible API."""
    served_model_name: str | None = None
    """Model name clients send."""
    last_signals: ReplicaSignals | None = None
    """Signals read at the last autoscaling decision."""
    last_scale_time: datetime | None = None
    """When replicas last changed."""
    last_scale_reason: str | None = None
    """Why replicas last changed (signal, value, limit)."""
    conditions: list[Condition] = Field(default_factory=list, json_schema_extra=CONDITIONS_LIST_MAP)
    """Ready, Progressing, Degraded; and Reconciling, Stalled (kstatus, for GitOps tools)."""


class BackendStatus(StatusModel):
    """Observed state of one backend."""

    name: str
    """ModelDeployment name, or external:MODEL."""
    ready: bool = False
    """Whether it can take traffic now (a ModelDeployment scaled to zero counts: the router
    holds its requests and wakes it)."""
    endpoints: int = 0
    """Ready replicas (1 for an external API that is configured)."""
    message: str = ""
    """Why it is not ready, or a note (scaled to zero)."""


class TierStatus(StatusModel):
    """Observed state of one tier."""

    name: str
    """Tier name from spec.tiers."""
    ready: bool = False
    """Whether some backend of the tier can take traffic now."""
    ready_backends: int = 0
    """Backends that can take traffic now."""
    backends: list[BackendStatus] = Field(default_factory=list)
    """Each backend of the tier."""


class RoutingPolicyStatus(StatusModel):
    """Observed state, written by the operator only."""

    observed_generation: int | None = None
    """The metadata.generation this status describes."""
    tiers: list[TierStatus] = Field(default_factory=list)
    """Resolved tiers with their ready backends."""
    ready_tiers: str | None = None
    """Tiers able to take traffic out of all tiers, as READY/TOTAL (kubectl get rp)."""
    router_ready: bool = False
    """Whether the router serves with the current table (some router pod ready)."""
    router_replicas: int = 0
    """Router pods wanted (gateway) or pods with the injected sidecar (sidecar)."""
    router_ready_replicas: int = 0
    """Router pods ready (gateway) or injected pods ready (sidecar)."""
    ready_routers: str | None = None
    """Router pods ready out of wanted, as READY/WANTED (kubectl get rp)."""
    table_version: str | None = None
    """Version of the policy document last written to the router's ConfigMap (a content
    hash; endpoints are discovered by the router and are not part of it)."""
    endpoint: str | None = None
    """Base URL of the router's OpenAI-compatible API: the Service's in-cluster URL (gateway)
    or http://localhost:PORT/v1 inside each labelled pod (sidecar)."""
    conditions: list[Condition] = Field(default_factory=list, json_schema_extra=CONDITIONS_LIST_MAP)
    """Ready, Progressing, Degraded; and Reconciling, Stalled (kstatus, for GitOps tools)."""
