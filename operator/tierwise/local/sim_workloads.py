"""Engine pods of the embedded cluster as simulator processes.

Why it exists: the operator renders a ModelDeployment into a Deployment whose container
runs ``vllm serve ...`` or ``python3 -m sglang.launch_server ...``. There are no GPUs and
no engines here, so :class:`SimWorkloadBackend` reads what a kubelet would start — the
engine (label ``app.kubernetes.io/name``, else the command), the served model name
(``--served-model-name``) — and starts
``python -m tierwise.sim engine --engine E --model NAME --port P --profile PROFILE``
instead, through :class:`~tierwise.local.processes.ProcessBackend`: one process per pod,
Ready when ``/health`` answers (both engines and the simulator serve it). The demo, the
router's end-to-end tests and anyone who wants a cluster that really answers OpenAI
requests use it.

The latency profile is not in the pod: the caller maps ModelDeployment names to a
simulator profile (``{"small-llm": "small"}``); others get ``default_profile``. Likewise
``engine_args`` adds simulator flags per ModelDeployment (``{"small-llm": ["--max-running",
"2"]}``: fewer batch slots, so a laptop-sized burst builds a queue the autoscaler sees). Pods whose
container runs Tierwise's own entry point (``command: [tierwise, ...]``, the router) run as
real ``tierwise`` processes through :class:`~tierwise.local.kubelet.TierwisePodBackend`
(unless ``tierwise_pods=False``); anything else gets instant fake pods, as with
:class:`~tierwise.local.workloads.FakeBackend`, so one cluster holds all three.
"""

from __future__ import annotations

import hashlib
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from tierwise.local.kubelet import TierwisePodBackend
from tierwise.local.processes import ProcessBackend
from tierwise.local.workloads import ClusterHandle, FakeBackend, PodEndpoint, PodInfo, PodState
from tierwise.manifests.labels import MODEL_DEPLOYMENT_LABEL
from tierwise.sim.config import EngineKind
from tierwise.sim.latency import Profile

ENGINE_LABEL = "app.kubernetes.io/name"
SERVED_NAME_FLAG = "--served-model-name"
DEFAULT_HEALTH_PATH = "/health"


@dataclass(frozen=True, slots=True)
class SimPodSpec:
    """What one simulator process for an engine pod is started with."""

    engine: EngineKind
    model: str
    profile: Profile
    model_deployment: str
    seed: int = 0
    extra_args: tuple[str, ...] = ()
    """More ``tierwise sim engine`` flags (``--max-running 2``)."""


def _container(template: Mapping[str, Any]) -> Mapping[str, Any]:
    containers = (template.get("spec") or {}).get("containers") or []
    named = [c for c in containers if c.get("name") == "engine"]
    found: Mapping[str, Any] = (named or containers or [{}])[0]
    return found


def _argv(container: Mapping[str, Any]) -> list[str]:
    return [str(a) for a in (container.get("command") or []) + (container.get("args") or [])]


def _engine(labels: Mapping[str, str], argv: Sequence[str]) -> EngineKind | None:
    label = labels.get(ENGINE_LABEL, "")
    if label in {e.value for e in EngineKind}:
        return EngineKind(label)
    for kind in EngineKind:
        if any(kind.value in part for part in argv[:3]):
            return kind
    return None


def flag_value(argv: Sequence[str], flag: str) -> str | None:
    """The value of ``flag`` in ``argv`` (``--flag V`` or ``--flag=V``); the last one wins."""
    value: str | None = None
    for i, part in enumerate(argv):
        if part == flag and i + 1 < len(argv):
            value = argv[i + 1]
        elif part.startswith(flag + "="):
            value = part[len(flag) + 1 :]
    return value


def sim_pod_spec(
    pod: PodInfo,
    profiles: Mapping[str, str],
    *,
    default_profile: str = Profile.MID,
    engine_args: Mapping[str, Sequence[str]] | None = None,
) -> SimPodSpec | None:
    """The simulator for ``pod``, or None when it is not an engine pod (pure)."""
    labels = (pod.template.get("metadata") or {}).get("labels") or {}
    container = _container(pod.template)
    argv = _argv(container)
    engine = _engine(labels, argv)
    if engine is None:
        return None
    owner = str(labels.get(MODEL_DEPLOYMENT_LABEL) or pod.deployment)
    profile = Profile(profiles.get(owner, profiles.get(pod.deployment, default_profile)))
    seed = int.from_bytes(hashlib.sha256(pod.name.encode()).digest()[:4], "big")
    return SimPodSpec(
        engine=engine,
        model=flag_value(argv, SERVED_NAME_FLAG) or owner,
        profile=profile,
        model_deployment=owner,
        seed=seed,
        extra_args=tuple((engine_args or {}).get(owner, ())),
    )


def sim_command(spec: SimPodSpec, port: int, *, host: str = "127.0.0.1") -> list[str]:
    """The command line of the simulator process for one engine pod."""
    return [
        sys.executable, "-m", "tierwise.sim", "engine",
        "--engine", spec.engine.value, "--model", spec.model,
        "--profile", spec.profile.value, "--seed", str(spec.seed),
        "--host", host, "--port", str(port), *spec.extra_args,
    ]  # fmt: skip


class SimWorkloadBackend:
    """Engine pods become simulators, Tierwise pods real processes, the rest instant fakes."""

    def __init__(
        self,
        profiles: Mapping[str, str] | None = None,
        *,
        default_profile: str = Profile.MID,
        host: str = "127.0.0.1",
        stop_timeout: float = 5.0,
        tierwise_pods: bool = True,
        engine_args: Mapping[str, Sequence[str]] | None = None,
    ) -> None:
        self.profiles = dict(profiles or {})
        self.engine_args = {name: tuple(args) for name, args in (engine_args or {}).items()}
        self.default_profile = Profile(default_profile)
        for profile in self.profiles.values():
            Profile(profile)  # fail at construction, not inside the controller loop
        self.processes = ProcessBackend(
            self._command, host=host, stop_timeout=stop_timeout, health_path=DEFAULT_HEALTH_PATH
        )
        self.fakes = FakeBackend()
        self.tierwise = TierwisePodBackend(others=self.fakes) if tierwise_pods else None
        """Runs Tierwise's own pods (routers); it hands the pods it does not run to ``fakes``."""
        self.specs: dict[tuple[str, str], SimPodSpec] = {}
        self._fake_pods: set[tuple[str, str]] = set()

    def bind(self, cluster: ClusterHandle) -> None:
        if self.tierwise is not None:
            self.tierwise.bind(cluster)

    @property
    def _others(self) -> FakeBackend | TierwisePodBackend:
        return self.tierwise if self.tierwise is not None else self.fakes

    def spec_for(self, pod: PodInfo) -> SimPodSpec | None:
        return sim_pod_spec(
            pod, self.profiles, default_profile=self.default_profile, engine_args=self.engine_args
        )

    def _command(self, pod: PodInfo, port: int) -> list[str]:
        spec = self.specs[(pod.namespace, pod.name)]
        return sim_command(spec, port, host=self.processes.host)

    async def start(self, pod: PodInfo) -> PodEndpoint:
        key = (pod.namespace, pod.name)
        spec = self.spec_for(pod)
        if spec is None:
            self._fake_pods.add(key)
            return await self._others.start(pod)
        self.specs[key] = spec
        return await self.processes.start(pod)

    async def state(self, pod: PodInfo) -> PodState:
        if (pod.namespace, pod.name) in self._fake_pods:
            return await self._others.state(pod)
        return await self.processes.state(pod)

    async def stop(self, pod: PodInfo, grace: float | None = None) -> None:
        key = (pod.namespace, pod.name)
        if key in self._fake_pods:
            self._fake_pods.discard(key)
            await self._others.stop(pod, grace)
            return
        self.specs.pop(key, None)
        await self.processes.stop(pod, grace)

    async def aclose(self) -> None:
        await self.processes.aclose()
        await self._others.aclose()  # the Tierwise backend closes the fakes it hands pods to
        self.specs.clear()
        self._fake_pods.clear()
