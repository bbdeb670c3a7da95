"""The ModelDeployment custom resource: one model served by SGLang or vLLM on GPU nodes.

Everything the operator, the autoscaler and ``tierwise render`` know about a deployment
comes from these classes; ``crds/modeldeployments.tierwise.dev.yaml`` is generated from
them, so the schema the API server enforces and the checks here can never disagree.
"""

from __future__ import annotations

import re
from enum import StrEnum
from typing import Annotated, Any, Literal

from pydantic import Field, field_validator, model_validator

from tierwise.api.common import (
    DNSSubdomain,
    Duration,
    FieldError,
    ObjectMeta,
    Price,
    Quantity,
    SecretKeySelector,
    SpecModel,
    cel,
    parse_duration,
    validations,
)

# Status lives in tierwise.api.status; re-exported so callers import one module per kind.
from tierwise.api.status import ModelDeploymentStatus as ModelDeploymentStatus
from tierwise.api.status import Phase as Phase
from tierwise.api.status import ReplicaSignals as ReplicaSignals

MODEL_URI_SCHEMES = ("hf", "pvc", "s3", "gs")
MODEL_URI_PATTERN = r"^(hf|pvc|s3|gs)://[^\s]+$"
ServedName = Annotated[str, Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9._:/-]*$", max_length=253)]
_URI_FIX = "use hf://ORG/NAME, pvc://CLAIM/PATH, s3://BUCKET/PATH or gs://BUCKET/PATH"


class EngineName(StrEnum):
    SGLANG = "sglang"
    VLLM = "vllm"


class AutoscalingMode(StrEnum):
    TIERWISE = "tierwise"
    ADVISORY = "advisory"
    EXTERNAL = "external"


class MetricsSourceType(StrEnum):
    SCRAPE = "scrape"
    PROMETHEUS = "prometheus"


class GPUMetric(StrEnum):
    """Which dcgm-exporter series is the GPU signal (guard and scaleUpOnGPUUtilization)."""

    AUTO = "auto"
    """DCGM_FI_PROF_SM_ACTIVE where exported, else DCGM_FI_PROF_PIPE_TENSOR_ACTIVE; never
    DCGM_FI_DEV_GPU_UTIL, which reads busy with a single request in flight."""
    SM_ACTIVE = "smActive"
    """DCGM_FI_PROF_SM_ACTIVE (a 0-1 ratio, read as percent)."""
    TENSOR_ACTIVE = "tensorActive"
    """DCGM_FI_PROF_PIPE_TENSOR_ACTIVE (a 0-1 ratio, read as percent)."""
    GPU_UTIL = "gpuUtil"
    """DCGM_FI_DEV_GPU_UTIL (percent): the fallback where profiling metrics are not exported."""


class ModelCache(SpecModel):
    """Where downloaded weights are kept between restarts (``HF_HOME`` points into it)."""

    claim_name: DNSSubdomain | None = None
    """An existing PersistentVolumeClaim to cache weights on; unset uses an emptyDir."""
    size_limit: Quantity | None = None
    """Size limit of the emptyDir cache (ignored with claimName), e.g. 200Gi."""


class ModelSource(SpecModel):
    """Which model to serve and where its weights come from."""

    uri: Annotated[str, Field(pattern=MODEL_URI_PATTERN, max_length=1024)]
    """Model source: hf://ORG/NAME (Hugging Face), pvc://CLAIM/PATH, s3://BUCKET/PATH or
    gs://BUCKET/PATH."""
    revision: Annotated[str, Field(max_length=255)] | None = None
    """Revision (branch, tag or commit) for hf:// sources."""
    served_name: ServedName | None = None
    """Model name clients send in requests; defaults to the ModelDeployment's name."""
    token_secret_ref: SecretKeySelector | None = None
    """Secret key holding a Hugging Face token for gated models. Passed by reference only."""
    cache: ModelCache | None = None
    """Model weight cache volume."""

    @field_validator("uri", mode="before")
    @classmethod
    def _known_scheme(cls, value: Any) -> Any:
        if isinstance(value, str):
            scheme, sep, rest = value.partition("://")
            if not sep:
                raise ValueError(f"{value!r} has no scheme; {_URI_FIX}")
            if scheme not in MODEL_URI_SCHEMES:
                raise ValueError(f"scheme {scheme!r} is not supported; {_URI_FIX}")
            if not rest or re.search(r"\s", rest):
                raise ValueError(f"{value!r} has an empty or blank path; {_URI_FIX}")
            if scheme == "pvc" and not re.match(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(/|$)", rest):
                raise ValueError(f"{value!r}: the claim name must be a DNS label; {_URI_FIX}")
        return value


class EnvVar(SpecModel):
    """An environment variable for the engine container."""

    name: Annotated[str, Field(pattern=r"^[-._a-zA-Z][-._a-zA-Z0-9]*$", max_length=253)]
    """Variable name."""
    value: Annotated[str, Field(max_length=32768)] | None = None
    """Literal value."""
    secret_key_ref: SecretKeySelector | None = None
    """Take the value from a Secret key instead of a literal."""

    model_config = validations(
        cel(
            "!(has(self.value) && has(self.secretKeyRef))",
            "value and secretKeyRef are both set; keep one of them",
        )
    )

    @model_validator(mode="after")
    def _one_source(self) -> EnvVar:
        if self.value is not None and self.secret_key_ref is not None:
            raise FieldError(
                "secretKeyRef", "value and secretKeyRef are both set; keep one of them"
            )
        return self


class EngineSpec(SpecModel):
    """The inference engine and how it runs the model."""

    name: EngineName
    """Inference engine: sglang or vllm."""
    image: Annotated[str, Field(min_length=1, max_length=512)] | None = None
    """Container image; defaults to the engine's pinned upstream image."""
    prefix_caching: bool = True
    """Reuse the KV cache of shared prompt prefixes (SGLang RadixAttention, vLLM
    --enable-prefix-caching). On by default: agentic and chat traffic share long prefixes."""
    tensor_parallel_size: Annotated[int, Field(ge=1, le=64)] = 1
    """GPUs one model replica is sharded across (SGLang --tp, vLLM --tensor-parallel-size)."""
    context_length: Annotated[int, Field(ge=256, le=10_000_000)] | None = None
    """Maximum context length in tokens (SGLang --context-length, vLLM --max-model-len)."""
    quantization: Annotated[str, Field(pattern=r"^[a-z0-9_-]+$", max_length=32)] | None = None
    """Quantization method passed to the engine (e.g. fp8, awq, gptq)."""
    args: Annotated[list[Annotated[str, Field(max_length=4096)]], Field(max_length=128)] = Field(
        default_factory=list
    )
    """Extra engine arguments, appended after Tierwise's; a flag given here overrides the
    same flag Tierwise would set."""
    env: Annotated[list[EnvVar], Field(max_length=128)] = Field(default_factory=list)
    """Extra environment variables for the engine container."""


class ResourcesSpec(SpecModel):
    """Hardware for each replica."""

    gpus: Annotated[int, Field(ge=1, le=64)] | None = None
    """GPUs per replica; a multiple of engine.tensorParallelSize. Defaults to it."""
    gpu_resource_name: Annotated[
        str, Field(pattern=r"^[a-z0-9.-]+/[a-z0-9._-]+$", max_length=253)
    ] = "nvidia.com/gpu"
    """Extended resource name that counts GPUs (nvidia.com/gpu, amd.com/gpu, ...)."""
    gpu_product: Annotated[str, Field(max_length=63, pattern=r"^[A-Za-z0-9][-A-Za-z0-9_.]*$")] | (
        None
    ) = Field(None, alias="gpuProduct")
    """GPU model to schedule on, matched against the node label nvidia.com/gpu.product
    (e.g. NVIDIA-H100-80GB-HBM3)."""
    cpu: Quantity | None = None
    """CPU request and limit per replica (e.g. 8)."""
    memory: Quantity | None = None
    """Memory request and limit per replica (e.g. 64Gi)."""
    shared_memory: Quantity = "16Gi"
    """Size of the memory-backed /dev/shm; NCCL and tensor parallelism need it large."""


class Toleration(SpecModel):
    """A Kubernetes toleration (core/v1 Toleration)."""

    key: Annotated[str, Field(max_length=316)] | None = None
    """Taint key to tolerate; empty with operator Exists tolerates every taint."""
    operator: Literal["Exists", "Equal"] | None = None
    """Equal (the default) matches value; Exists matches any value."""
    value: Annotated[str, Field(max_length=63)] | None = None
    """Taint value to match with operator Equal."""
    effect: Literal["NoSchedule", "PreferNoSchedule", "NoExecute"] | None = None
    """Taint effect to tolerate; empty tolerates every effect."""
    toleration_seconds: Annotated[int, Field(ge=0)] | None = None
    """With effect NoExecute: how long the pod stays bound after the taint appears."""


class PlacementSpec(SpecModel):
    """Where replicas may run, on top of the GPU product selection."""

    node_selector: Annotated[
        dict[str, Annotated[str, Field(max_length=63)]], Field(max_length=64)
    ] = Field(default_factory=dict)
    """Node labels every replica's node must carry."""
    tolerations: Annotated[list[Toleration], Field(max_length=32)] = Field(default_factory=list)
    """Tolerations added to the nvidia.com/gpu NoSchedule toleration Tierwise always sets."""
    affinity: dict[str, Any] | None = None
    """A core/v1 Affinity, passed through unchanged."""
    priority_class_name: Annotated[str, Field(max_length=253)] | None = None
    """PriorityClass of the engine pods."""


class ReplicasSpec(SpecModel):
    """How many replicas may run; the autoscaler moves between min and max."""

    min: Annotated[int, Field(ge=0, le=1000)] = 1
    """Fewest replicas; 0 lets an idle model scale to zero and wake on demand."""
    max: Annotated[int, Field(ge=1, le=1000)] = 1
    """Most replicas."""
    target: Annotated[int, Field(ge=0, le=1000)] | None = None
    """Replica count the operator keeps while autoscaling is disabled (enabled: false); set
    by hand or through this object's scale subresource (kubectl scale md/NAME). Unset means
    min. Not used in the autoscaling modes: in external mode the HPA or KEDA scales the
    engine Deployment (same name) itself."""

    model_config = validations(
        cel("self.min <= self.max", "min must not exceed max; raise max or lower min", ".min"),
        cel(
            "!has(self.target) || (self.target >= self.min && self.target <= self.max)",
            "target must lie between min and max; change target or widen min/max",
            ".target",
        ),
    )

    @model_validator(mode="after")
    def _ordered(self) -> ReplicasSpec:
        if self.min > self.max:
            raise FieldError(
                "min", f"min ({self.min}) exceeds max ({self.max}); raise max or lower min"
            )
        if self.target is not None and not self.min <= self.target <= self.max:
            raise FieldError(
                "target",
                f"target ({self.target}) must lie between min ({self.min}) and max ({self.max}); "
                "change target or widen min/max",
            )
        return self


class MetricsSource(SpecModel):
    """Where the autoscaler reads engine and GPU signals."""

    source: MetricsSourceType = MetricsSourceType.SCRAPE
    """scrape: read each pod's /metrics directly (no Prometheus needed); prometheus: query
    the Prometheus HTTP API at prometheusURL."""
    prometheus_url: Annotated[str, Field(pattern=r"^https?://[^\s]+$", max_length=1024)] | None = (
        Field(None, alias="prometheusURL")
    )
    """Base URL of the Prometheus HTTP API (required with source prometheus)."""
    stale_after: Duration = "60s"
    """A signal older than this is reported stale and never read as zero."""

    model_config = validations(
        cel(
            "self.source != 'prometheus' || has(self.prometheusURL)",
            "source prometheus needs prometheusURL; set it or use source scrape",
            ".prometheusURL",
        )
    )

    @model_validator(mode="after")
    def _url_for_prometheus(self) -> MetricsSource:
        if self.source is MetricsSourceType.PROMETHEUS and not self.prometheus_url:
            raise FieldError(
                "prometheusURL", "source prometheus needs prometheusURL; set it or use scrape"
            )
        return self


class AutoscalingSpec(SpecModel):
    """Scaling on the signals that matter for LLM serving: queue depth, KV-cache usage and
    (as a guard) GPU utilisation."""

    enabled: bool = True
    """false leaves replicas at replicas.target (or min)."""
    mode: AutoscalingMode = AutoscalingMode.TIERWISE
    """tierwise: the operator scales; advisory: decisions are computed and reported only;
    external: an HPA or KEDA owns replicas through the scale subresource."""
    interval: Duration = "15s"
    """How often signals are read and a decision is made."""
    target_queue_depth: Annotated[float, Field(gt=0, le=10_000)] = 5.0
    """Waiting requests per replica to aim for."""
    target_kv_cache_usage: Annotated[float, Field(gt=0, le=1)] = Field(
        0.8, alias="targetKVCacheUsage"
    )
    """KV-cache usage (0-1) per replica to aim for."""
    target_gpu_utilization: Annotated[int, Field(ge=1, le=100)] = Field(
        70, alias="targetGPUUtilization"
    )
    """GPU busy percent (gpuMetric) above which gpuGuard holds scale-down, and which
    scaleUpOnGPUUtilization scales up to keep."""
    gpu_guard: bool = Field(False, alias="gpuGuard")
    """No scale-down while the mean GPU signal (gpuMetric) is at or above
    targetGPUUtilization. Off by default (earlier builds guarded on DCGM_FI_DEV_GPU_UTIL
    whenever it had data): engine queue and KV-cache signals already measure load, and a
    GPU signal that reads busy on a lightly loaded replica keeps every replica for good.
    Turn it on where engine metrics under-report load, after checking what gpuMetric reads
    on your replicas at low load."""
    gpu_metric: GPUMetric = Field(GPUMetric.AUTO, alias="gpuMetric")
    """The dcgm-exporter series read as the GPU signal: auto (DCGM_FI_PROF_SM_ACTIVE, else
    DCGM_FI_PROF_PIPE_TENSOR_ACTIVE), smActive, tensorActive, or gpuUtil
    (DCGM_FI_DEV_GPU_UTIL, the fallback where profiling metrics are not exported; it reads
    ~100% with one request in flight)."""
    scale_up_on_gpu_utilization: bool = Field(False, alias="scaleUpOnGPUUtilization")
    """Also scale up when the GPU signal (gpuMetric) exceeds targetGPUUtilization."""
    tolerance: Annotated[float, Field(ge=0, lt=1)] = 0.1
    """Relative band around a target inside which nothing changes (prevents flapping)."""
    scale_up_window: Duration = "0s"
    """Stabilisation window for scale-up: the lowest proposal in it is applied."""
    scale_down_window: Duration = "5m"
    """Stabilisation window for scale-down: the highest proposal in it is applied."""
    cold_start: Duration | None = None
    """How long a new replica takes to serve after a scale-up (scheduling, image pull,
    weight load, warm-up). Unset: measured from the engine pods, the median time from
    creation to Ready of the newest five, and 2m until one has been seen ready. Sizes
    headroomPerMinute and the default scaleUpLookahead."""
    headroom_per_minute: Annotated[float, Field(ge=0, le=100)] = 5.0
    """Spare capacity kept for load growth while new replicas start, in percent per minute
    of cold start, compounded: 5 keeps 5% for a 1-minute cold start, 16% for 3 minutes and
    63% for 10 (targetKVCacheUsage is divided by that factor, at most 4). A burst cannot
    be seen coming, so the slower replicas start, the more capacity must already stand.
    0 keeps none."""
    scale_up_lookahead: Duration | None = None
    """Scale up for the load expected this far ahead: the growth of the load (KV-cache
    usage and waiting requests against their targets) over this span, projected as far
    again. Unset: the cold start (coldStart, or measured). 0s scales on the current load
    only. (Earlier builds defaulted to 2m; objects stored then keep that value.)"""
    max_scale_up_step: Annotated[int, Field(ge=1, le=1000)] = 4
    """Most replicas added by one decision, unless maxScaleUpPercent allows more."""
    max_scale_up_percent: Annotated[int, Field(ge=0, le=1000)] = 50
    """Most replicas added by one decision as a percent of the current count (rounded up);
    the larger of this and maxScaleUpStep applies, as in the HPA's max(N pods, P percent)
    per period (here one interval). 50 lets 40 replicas double within two intervals
    (40, 60, 90); 100 is the HPA's default; 0 leaves maxScaleUpStep alone (the limit of
    earlier builds)."""
    max_scale_down_step: Annotated[int, Field(ge=1, le=1000)] = 1
    """Most replicas removed by one decision."""
    scale_to_zero_after: Duration = "15m"
    """With replicas.min 0: scale to zero after this long without traffic."""
    metrics: MetricsSource = Field(default_factory=MetricsSource, json_schema_extra={"default": {}})
    """Where signals come from."""

    model_config = validations(
        cel(
            "!has(self.scaleUpLookahead) || !has(self.interval) || "
            "duration(self.scaleUpLookahead) == duration('0s') || "
            "duration(self.scaleUpLookahead) >= duration(self.interval)",
            "scaleUpLookahead is shorter than interval, so no two readings span it; make it "
            "at least the interval, or 0s to turn the trend off",
            ".scaleUpLookahead",
        )
    )

    @model_validator(mode="after")
    def _lookahead_spans_readings(self) -> AutoscalingSpec:
        lookahead = self.scale_up_lookahead
        if lookahead is None or not parse_duration(lookahead):
            return self
        if parse_duration(lookahead) < parse_duration(self.interval):
            raise FieldError(
                "scaleUpLookahead",
                f"scaleUpLookahead {lookahead} is shorter than interval {self.interval}, so no "
                "two readings span it; make it at least the interval, or 0s to turn the trend off",
            )
        return self


class MonitoringSpec(SpecModel):
    """How Prometheus finds the engine pods."""

    scrape_annotations: bool = True
    """Add prometheus.io/scrape, port and path annotations to the pods."""
    pod_monitor: bool = False
    """Also create a PodMonitor (needs the Prometheus Operator's CRDs)."""


class ModelDeploymentSpec(SpecModel):
    """Desired state of a ModelDeployment."""

    model: ModelSource
    """The model and where its weights come from."""
    engine: EngineSpec
    """Inference engine and its options."""
    resources: ResourcesSpec = Field(
        default_factory=ResourcesSpec, json_schema_extra={"default": {}}
    )
    """GPUs, CPU and memory per replica."""
    placement: PlacementSpec = Field(
        default_factory=PlacementSpec, json_schema_extra={"default": {}}
    )
    """Node selection, tolerations, affinity, priority."""
    replicas: ReplicasSpec = Field(default_factory=ReplicasSpec, json_schema_extra={"default": {}})
    """Replica bounds."""
    autoscaling: AutoscalingSpec = Field(
        default_factory=AutoscalingSpec, json_schema_extra={"default": {}}
    )
    """Autoscaling on queue depth, KV-cache usage and GPU utilisation."""
    cost: Price | None = None
    """What this model costs, for the router's cost accounting."""
    monitoring: MonitoringSpec = Field(
        default_factory=MonitoringSpec, json_schema_extra={"default": {}}
    )
    """Prometheus discovery of the engine pods."""

    model_config = validations(
        cel(
            "!has(self.resources.gpus) || !has(self.engine.tensorParallelSize) || "
            "self.resources.gpus % self.engine.tensorParallelSize == 0",
            "resources.gpus must be a multiple of engine.tensorParallelSize; "
            "set gpus to tensorParallelSize times the data-parallel degree",
            ".resources.gpus",
        ),
        cel(
            "!has(self.autoscaling.metrics.staleAfter) || !has(self.autoscaling.interval) || "
            "duration(self.autoscaling.metrics.staleAfter) >= duration(self.autoscaling.interval)",
            "autoscaling.metrics.staleAfter must be at least autoscaling.interval, or every "
            "signal reads stale; raise staleAfter or shorten interval",
            ".autoscaling.metrics.staleAfter",
        ),
    )

    @model_validator(mode="after")
    def _gpus_fit_tensor_parallelism(self) -> ModelDeploymentSpec:
        tp = self.engine.tensor_parallel_size
        gpus = self.resources.gpus
        if gpus is not None and gpus % tp:
            raise FieldError(
                "resources.gpus",
                f"{gpus} GPUs per replica is not a multiple of engine.tensorParallelSize ({tp}); "
                f"set gpus to {tp}, {2 * tp}, ... or lower tensorParallelSize",
            )
        if self.autoscaling.metrics.stale_after and (
            parse_duration(self.autoscaling.metrics.stale_after)
            < parse_duration(self.autoscaling.interval)
        ):
            raise FieldError(
                "autoscaling.metrics.staleAfter",
                "staleAfter is shorter than autoscaling.interval, so every signal would read "
                "stale; make it at least the interval",
            )
        return self

    @property
    def gpus_per_replica(self) -> int:
        return self.resources.gpus or self.engine.tensor_parallel_size


class ModelDeployment(SpecModel):
    """A model served by SGLang or vLLM on GPU nodes, autoscaled on queue depth."""

    api_version: Literal["tierwise.dev/v1alpha1"] = "tierwise.dev/v1alpha1"
    kind: Literal["ModelDeployment"] = "ModelDeployment"
    metadata: ObjectMeta
    spec: ModelDeploymentSpec
    status: ModelDeploymentStatus | None = None

    @property
    def served_model_name(self) -> str:
        return self.spec.model.served_name or self.metadata.name
