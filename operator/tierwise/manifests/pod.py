"""The engine pod template: one container running SGLang or vLLM on the GPUs it requests.

Choices worth knowing (docs/engines.md has the long form):
- GPUs are requested and limited as ``spec.resources.gpus`` (default: the tensor-parallel
  size) of ``gpuResourceName``; the node selector adds the GPU product label, and the pod
  tolerates the ``<gpuResourceName>:NoSchedule`` taint GPU node pools carry.
- ``/dev/shm`` is a memory-backed emptyDir: NCCL and the engines' worker processes share
  tensors through it and the container runtime's 64Mi default breaks tensor parallelism.
- ``enableServiceLinks: false``: a Service named ``vllm`` would otherwise inject
  ``VLLM_PORT=tcp://...``, which vLLM reads as its own setting and fails on.
- ``automountServiceAccountToken: false``: the engine never talks to the Kubernetes API.
- Probes: startup on the health path with a budget for big models (see settings), then
  readiness (3 failures at 5 s take the pod out of the Service) and a conservative liveness
  check (5 failures at 30 s) so a long prefill is not mistaken for a hang.
"""

from __future__ import annotations

from typing import Any

from tierwise.api.model_deployment import ModelDeployment
from tierwise.engines.base import EngineProfile, LaunchConfig
from tierwise.manifests.model_source import (
    CACHE_VOLUME,
    ModelLocation,
    container_security_context,
    env_var,
)
from tierwise.manifests.settings import RenderSettings

CONTAINER_NAME = "engine"
PORT_NAME = "http"
SHM_VOLUME = "dshm"


def startup_budget_seconds(md: ModelDeployment, settings: RenderSettings) -> int:
    if md.spec.engine.tensor_parallel_size >= settings.large_tensor_parallel_size:
        return settings.large_startup_budget_seconds
    return settings.startup_budget_seconds


def probes(
    md: ModelDeployment, engine: EngineProfile, settings: RenderSettings
) -> dict[str, dict[str, Any]]:
    def http(path: str) -> dict[str, Any]:
        return {"path": path, "port": PORT_NAME}

    period = settings.startup_period_seconds
    return {
        "startupProbe": {
            "httpGet": http(engine.startup_path),
            "periodSeconds": period,
            "timeoutSeconds": 5,
            "failureThreshold": -(-startup_budget_seconds(md, settings) // period),
        },
        "readinessProbe": {
            "httpGet": http(engine.readiness_path),
            "periodSeconds": 5,
            "timeoutSeconds": 5,
            "failureThreshold": 3,
        },
        "livenessProbe": {
            "httpGet": http(engine.liveness_path),
            "periodSeconds": 30,
            "timeoutSeconds": 30,
            "failureThreshold": 5,
        },
    }


def resources(md: ModelDeployment) -> dict[str, dict[str, str]]:
    """Requests equal limits: GPUs cannot be overcommitted, and a CPU or memory limit
    above the request would make an engine's OOM kill depend on its neighbours."""
    spec = md.spec.resources
    amounts = {spec.gpu_resource_name: str(md.spec.gpus_per_replica)}
    if spec.cpu is not None:
        amounts["cpu"] = spec.cpu
    if spec.memory is not None:
        amounts["memory"] = spec.memory
    return {"requests": dict(amounts), "limits": dict(amounts)}


def environment(md: ModelDeployment, settings: RenderSettings) -> list[dict[str, Any]]:
    """HF_HOME on the cache, HF_TOKEN by reference, then the user's variables; a user
    variable with the same name replaces Tierwise's (env is keyed by name under
    server-side apply, so duplicates would be rejected)."""
    ours: list[dict[str, Any]] = [
        {"name": "HF_HOME", "value": f"{settings.cache_mount_path}/huggingface"}
    ]
    token = md.spec.model.token_secret_ref
    if token is not None:
        ref = {"name": token.name, "key": token.key}
        ours.append({"name": "HF_TOKEN", "valueFrom": {"secretKeyRef": ref}})
    user = [env_var(e) for e in md.spec.engine.env]
    names = {e["name"] for e in user}
    return [e for e in ours if e["name"] not in names] + user


def volumes(md: ModelDeployment, location: ModelLocation) -> list[dict[str, Any]]:
    """Pod volumes: shared memory, model cache, model source."""
    shm = {
        "name": SHM_VOLUME,
        "emptyDir": {"medium": "Memory", "sizeLimit": md.spec.resources.shared_memory},
    }
    cache_spec = md.spec.model.cache
    cache: dict[str, Any]
    if cache_spec is not None and cache_spec.claim_name:
        cache = {
            "name": CACHE_VOLUME,
            "persistentVolumeClaim": {"claimName": cache_spec.claim_name},
        }
    else:
        empty: dict[str, Any] = {}
        if cache_spec is not None and cache_spec.size_limit:
            empty["sizeLimit"] = cache_spec.size_limit
        cache = {"name": CACHE_VOLUME, "emptyDir": empty}
    return [shm, cache, *location.volumes]


def engine_container(
    md: ModelDeployment,
    engine: EngineProfile,
    location: ModelLocation,
    settings: RenderSettings,
) -> dict[str, Any]:
    launch = LaunchConfig.from_spec(
        md.spec.engine,
        model=location.model,
        served_name=md.served_model_name,
        gpus=md.spec.gpus_per_replica,
        revision=location.revision,
    )
    mounts = [
        {"name": SHM_VOLUME, "mountPath": "/dev/shm"},
        {"name": CACHE_VOLUME, "mountPath": settings.cache_mount_path},
        *location.mounts,
    ]
    security = container_security_context()
    if engine.run_as_user is not None:
        security["runAsNonRoot"] = True
    return {
        "name": CONTAINER_NAME,
        "image": md.spec.engine.image
        or settings.engine_image_map.get(engine.name.value)
        or engine.image,
        "command": engine.command(launch),
        "ports": [{"name": PORT_NAME, "containerPort": engine.port, "protocol": "TCP"}],
        "env": environment(md, settings),
        "resources": resources(md),
        "volumeMounts": mounts,
        **probes(md, engine, settings),
        "lifecycle": {
            "preStop": {"exec": {"command": ["sleep", str(settings.pre_stop_sleep_seconds)]}}
        },
        "securityContext": security,
    }


def pod_security_context(engine: EngineProfile) -> dict[str, Any]:
    """seccomp RuntimeDefault always; non-root only where the engine image supports it
    (the upstream vLLM and SGLang images run as root and write under /root)."""
    context: dict[str, Any] = {"seccompProfile": {"type": "RuntimeDefault"}}
    if engine.run_as_user is not None:
        context.update(
            runAsNonRoot=True,
            runAsUser=engine.run_as_user,
            runAsGroup=engine.run_as_user,
            fsGroup=engine.run_as_user,
        )
    return context


def scheduling(md: ModelDeployment, settings: RenderSettings) -> dict[str, Any]:
    """Node selector (user labels, then the GPU product), tolerations, affinity, priority."""
    placement = md.spec.placement
    out: dict[str, Any] = {}
    selector = dict(placement.node_selector)
    if md.spec.resources.gpu_product:
        selector[settings.gpu_product_label] = md.spec.resources.gpu_product
    if selector:
        out["nodeSelector"] = selector
    gpu_taint = {
        "key": md.spec.resources.gpu_resource_name,
        "operator": "Exists",
        "effect": "NoSchedule",
    }
    user = [
        t.model_dump(mode="json", by_alias=True, exclude_none=True) for t in placement.tolerations
    ]
    out["tolerations"] = [gpu_taint, *(t for t in user if t != gpu_taint)]
    if placement.affinity:
        out["affinity"] = placement.affinity
    if placement.priority_class_name:
        out["priorityClassName"] = placement.priority_class_name
    return out


def pod_spec(
    md: ModelDeployment,
    engine: EngineProfile,
    location: ModelLocation,
    settings: RenderSettings,
) -> dict[str, Any]:
    spec: dict[str, Any] = {
        "enableServiceLinks": False,
        "automountServiceAccountToken": False,
        "terminationGracePeriodSeconds": settings.termination_grace_seconds,
        "securityContext": pod_security_context(engine),
    }
    if location.init_containers:
        spec["initContainers"] = location.init_containers
    spec["containers"] = [engine_container(md, engine, location, settings)]
    spec["volumes"] = volumes(md, location)
    spec.update(scheduling(md, settings))
    return spec
