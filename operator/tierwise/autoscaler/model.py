"""The data the autoscaler passes between its I/O edge and its pure policy.

Why it exists: ``signals`` (I/O) builds a :class:`Signals` snapshot, ``policy`` (pure) turns
it into a :class:`Decision`, and the controller applies and records that decision. Keeping
the shapes here, with no HTTP or Kubernetes import, lets each side be tested alone and lets
the controller and the router share the names without pulling in either side's code.

A signal that could not be read, or was read too long ago, is ``None`` and named in
:attr:`Signals.missing`; nothing here ever turns an unknown value into zero.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum

from tierwise.autoscaler.history import History


class Signal(StrEnum):
    """One input of the policy; the values match the fields of ``status.lastSignals``."""

    QUEUE_DEPTH = "queueDepth"
    RUNNING_REQUESTS = "runningRequests"
    KV_CACHE_USAGE = "kvCacheUsage"
    GPU_UTILIZATION = "gpuUtilization"
    ROUTER_DEMAND = "routerDemand"


REPLICA_SIGNALS = (
    Signal.QUEUE_DEPTH,
    Signal.RUNNING_REQUESTS,
    Signal.KV_CACHE_USAGE,
    Signal.GPU_UTILIZATION,
)
"""Signals read per engine replica (the router's demand is read per model)."""


@dataclass(frozen=True, slots=True)
class ReplicaSample:
    """What one ready engine pod reported; ``None`` is missing or stale, never zero."""

    pod: str
    queue_depth: float | None = None
    """Waiting requests (vllm:num_requests_waiting, sglang:num_queue_reqs)."""
    running_requests: float | None = None
    """Requests in the running batch (vllm:num_requests_running, sglang:num_running_reqs)."""
    kv_cache_usage: float | None = None
    """KV-cache usage 0-1 (vllm:kv_cache_usage_perc, sglang:token_usage)."""
    gpu_utilization: float | None = None
    """The GPU signal (``spec.autoscaling.gpuMetric``) as a percent, mean over the pod's
    GPUs."""
    gpu_metric: str | None = None
    """The dcgm-exporter series ``gpu_utilization`` was read from."""
    prompt_tokens_total: float | None = None
    """Prompt-token counter; an increase between two reads is traffic, even a short request
    that started and finished between them."""
    prefix_cache_hit_rate: float | None = None
    """Share of prompt tokens served from the prefix cache (0-1), for deletion cost."""

    def value(self, signal: Signal) -> float | None:
        match signal:
            case Signal.QUEUE_DEPTH:
                return self.queue_depth
            case Signal.RUNNING_REQUESTS:
                return self.running_requests
            case Signal.KV_CACHE_USAGE:
                return self.kv_cache_usage
            case Signal.GPU_UTILIZATION:
                return self.gpu_utilization
            case _:
                return None


@dataclass(frozen=True, slots=True)
class Signals:
    """One reading of a ModelDeployment's signals at ``observed_at`` (seconds since epoch)."""

    observed_at: float
    replicas: tuple[ReplicaSample, ...] = ()
    """One sample per ready engine pod that was asked."""
    demand: float | None = None
    """Requests the router holds or has in flight for this model (tierwise_router_pending_
    requests); ``None`` when the router could not be read."""
    last_request_at: float | None = None
    """When the router last received a request for this model, if it reports it."""
    problems: tuple[str, ...] = ()
    """Why values are missing or stale, one line each (``pod-a: timeout after 2.0s``)."""
    cold_start: float | None = None
    """Measured replica cold start in seconds (pod creation to Ready), if any was seen."""

    @property
    def missing(self) -> tuple[Signal, ...]:
        """Signals unknown for at least one replica (or for the router), in a fixed order."""
        out = [s for s in REPLICA_SIGNALS if any(r.value(s) is None for r in self.replicas)]
        if self.demand is None:
            out.append(Signal.ROUTER_DEMAND)
        return tuple(out)

    def known(self, signal: Signal) -> list[float]:
        """The values of ``signal`` across the replicas that reported it."""
        return [v for r in self.replicas if (v := r.value(signal)) is not None]

    def mean(self, signal: Signal) -> float | None:
        values = self.known(signal)
        return sum(values) / len(values) if values else None


class Direction(StrEnum):
    UP = "up"
    DOWN = "down"
    NONE = "none"


class Reason(StrEnum):
    """Why the desired replica count is what it is (an event and metric label)."""

    QUEUE_DEPTH = "QueueDepth"
    KV_CACHE_USAGE = "KVCacheUsage"
    GPU_UTILIZATION = "GPUUtilization"
    LOAD_TREND = "LoadTrend"
    """Scaled up for the load projected scaleUpLookahead ahead from its growth."""
    WITHIN_TOLERANCE = "WithinTolerance"
    SIGNALS_MISSING = "SignalsMissing"
    IDLE = "Idle"
    """Scaled to zero after scaleToZeroAfter without traffic (or staying there)."""
    ACTIVATION = "Activation"
    """Woken from zero because the router holds requests for the model."""
    REPLICA_BOUNDS = "ReplicaBounds"
    """Current replicas lie outside min/max (the spec changed)."""
    EXTERNAL_OWNER = "ExternalOwner"
    DISABLED = "Disabled"


class Limit(StrEnum):
    """Which rule moved the count away from the signals' raw proposal, if any."""

    NONE = "None"
    SCALE_UP_STEP = "MaxScaleUpStep"
    SCALE_DOWN_STEP = "MaxScaleDownStep"
    SCALE_UP_WINDOW = "ScaleUpWindow"
    SCALE_DOWN_WINDOW = "ScaleDownWindow"
    GPU_GUARD = "GPUGuard"
    SIGNALS_MISSING = "SignalsMissing"
    """Some load signal is unknown, so scale-down is held (scale-up is still allowed)."""
    MIN_REPLICAS = "MinReplicas"
    MAX_REPLICAS = "MaxReplicas"
    SCALE_TO_ZERO_WAIT = "ScaleToZeroAfter"
    """Idle, but not yet for scaleToZeroAfter: one replica stays."""


@dataclass(frozen=True, slots=True)
class Summary:
    """The per-replica signals a decision used (what ``status.lastSignals`` shows)."""

    queue_depth: float | None = None
    running_requests: float | None = None
    kv_cache_usage: float | None = None
    gpu_utilization: float | None = None
    demand: float | None = None
    missing: tuple[Signal, ...] = ()
    observed_at: float | None = None

    @classmethod
    def of(cls, signals: Signals) -> Summary:
        """Means over the replicas that reported (queue and running are per replica)."""
        return cls(
            queue_depth=signals.mean(Signal.QUEUE_DEPTH),
            running_requests=signals.mean(Signal.RUNNING_REQUESTS),
            kv_cache_usage=signals.mean(Signal.KV_CACHE_USAGE),
            gpu_utilization=signals.mean(Signal.GPU_UTILIZATION),
            demand=signals.demand,
            missing=signals.missing,
            observed_at=signals.observed_at,
        )


@dataclass(frozen=True, slots=True)
class Decision:
    """What the policy wants and why; the controller applies it only when ``apply``."""

    desired: int
    current: int
    direction: Direction
    reason: Reason
    limit: Limit
    message: str
    """Names the signal, its value, the target and the limit that applied."""
    signals: Summary = field(default_factory=Summary)
    apply: bool = True
    """False in advisory and external modes: report, never write replicas."""
    history: History = field(default_factory=History)
    """What to pass to the next decision."""

    @property
    def changed(self) -> bool:
        return self.desired != self.current
