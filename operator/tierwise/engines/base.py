"""What every inference engine profile provides, so manifests and autoscaling stay generic.

The manifests, the autoscaler and the router never branch on ``engine == "vllm"``: they ask
an :class:`EngineProfile` for the image, the command line, the port, the probe paths and the
metric names. Adding an engine means adding one module that builds a profile and one line
in :mod:`tierwise.engines.registry`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

from tierwise.api.model_deployment import EngineName, EngineSpec
from tierwise.engines.args import FlagSyntax, groups_from, is_flag, merge, split_groups

METRICS_PATH = "/metrics"


@dataclass(frozen=True)
class EngineMetrics:
    """Prometheus metric names an engine exposes (as scraped, counters with ``_total``).

    Engines report prefix-cache effectiveness differently: vLLM as two counters (queried and
    hit tokens), SGLang as one gauge (hit rate). The unused form is ``None``.
    """

    waiting_requests: str
    running_requests: str
    kv_cache_usage: str
    """0-1 fraction of the KV cache in use."""
    kv_cache_usage_former: tuple[str, ...] = field(default=(), kw_only=True)
    """Names older engine versions serve ``kv_cache_usage`` under (still read)."""
    prompt_tokens_total: str
    generation_tokens_total: str
    time_to_first_token_seconds: str
    """A histogram; the ``_bucket``/``_sum``/``_count`` series carry this prefix."""
    prefix_cache_hit_rate: str | None = None
    prefix_cache_queries_total: str | None = None
    prefix_cache_hits_total: str | None = None


@dataclass(frozen=True)
class LaunchConfig:
    """Everything an engine's command line depends on, already resolved from the spec.

    ``model`` is what the engine loads: a Hugging Face repository id (``ORG/NAME``) for
    ``hf://`` sources or a local directory for ``pvc://``, ``s3://`` and ``gs://`` sources.
    """

    model: str
    served_name: str
    tensor_parallel_size: int = 1
    data_parallel_size: int = 1
    """Engine replicas inside one pod (GPUs per pod / tensor-parallel size)."""
    prefix_caching: bool = True
    context_length: int | None = None
    quantization: str | None = None
    revision: str | None = None
    extra_args: tuple[str, ...] = ()

    @classmethod
    def from_spec(
        cls,
        engine: EngineSpec,
        *,
        model: str,
        served_name: str,
        gpus: int | None = None,
        revision: str | None = None,
    ) -> LaunchConfig:
        """``gpus`` per pod (default: the tensor-parallel size); GPUs beyond one
        tensor-parallel group become data-parallel engine replicas inside the pod."""
        tp = engine.tensor_parallel_size
        return cls(
            model=model,
            served_name=served_name,
            tensor_parallel_size=tp,
            data_parallel_size=max(1, (gpus or tp) // tp),
            prefix_caching=engine.prefix_caching,
            context_length=engine.context_length,
            quantization=engine.quantization,
            revision=revision,
            extra_args=tuple(engine.args),
        )


@dataclass(frozen=True)
class ArgIssue:
    """A user argument Tierwise cannot accept, with the spec field to use instead."""

    index: int
    """Position in ``spec.engine.args``."""
    message: str

    @property
    def path(self) -> str:
        return f"spec.engine.args[{self.index}]"

    def __str__(self) -> str:
        return f"{self.path}: {self.message}"


FlagBuilder = Callable[[LaunchConfig], Sequence[tuple[str, ...]]]


@dataclass(frozen=True)
class EngineProfile:
    """One inference engine as Tierwise runs it."""

    name: EngineName
    image: str
    """Default image, pinned; ``spec.engine.image`` overrides it."""
    port: int
    """The one HTTP port (OpenAI API, health and /metrics); the container port is ``http``."""
    entrypoint: tuple[str, ...]
    flags: FlagBuilder = field(compare=False)
    """Default groups for a launch: each tuple is one flag with its values (or the model)."""
    syntax: FlagSyntax = field(compare=False)
    reserved: Mapping[str, str] = field(compare=False)
    """Canonical flags users may not set in args -> what to set instead."""
    startup_path: str
    readiness_path: str
    liveness_path: str
    metrics: EngineMetrics
    metrics_path: str = METRICS_PATH
    run_as_user: int | None = None
    """A non-root uid the image works with; ``None`` where the upstream image needs root."""

    def image_for(self, engine: EngineSpec) -> str:
        return engine.image or self.image

    def command(self, launch: LaunchConfig) -> list[str]:
        """The container command: entrypoint, Tierwise's flags, then the user's args.

        A user flag replaces Tierwise's flag of the same name (with its value); see
        docs/engines.md for the precedence. Reserved flags are not checked here: call
        :meth:`check_args` first.
        """
        defaults = groups_from(self.flags(launch), self.syntax)
        user = split_groups(launch.extra_args, self.syntax)
        return [*self.entrypoint, *merge(defaults, user)]

    def check_args(self, args: Sequence[str]) -> list[ArgIssue]:
        """User args that would break what Tierwise manages (port, model, parallelism)."""
        issues: list[ArgIssue] = []
        for index, token in enumerate(args):
            if not is_flag(token):
                continue
            key = self.syntax.canonical(token)
            instead = self.reserved.get(key)
            if instead is not None:
                flag = token.split("=", 1)[0]
                issues.append(ArgIssue(index, f"{flag} is managed by Tierwise; {instead}"))
        return issues
