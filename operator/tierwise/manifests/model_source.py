"""Where the engine finds its weights, per model URI scheme.

- ``hf://ORG/NAME``: the engine downloads ``ORG/NAME`` itself into ``HF_HOME`` on the
  cache volume (``HF_TOKEN`` from the Secret reference for gated models; the revision
  becomes ``--revision``). Nothing else to mount.
- ``pvc://CLAIM/PATH``: the claim is mounted read-only at ``/models/CLAIM`` and the engine
  loads ``/models/CLAIM/PATH`` (the claim itself when PATH is empty).
- ``s3://BUCKET/PATH`` and ``gs://BUCKET/PATH``: the minimal path. An init container syncs
  the prefix into the cache volume at ``/model-cache/models/BUCKET/PATH`` with the cloud's
  own CLI (``aws s3 sync`` / ``gcloud storage rsync``; both skip files already there, so a
  restart with a persistent cache is cheap), then the engine loads that directory.
  Credentials come from the pod's identity (IRSA / EKS Pod Identity, GKE Workload Identity)
  or from ``spec.engine.env`` entries named ``AWS_*``, ``GOOGLE_*`` or ``CLOUDSDK_*``, which
  the init container also receives; no other engine variable is passed to it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from tierwise.api.model_deployment import EnvVar, ModelDeployment
from tierwise.manifests.settings import RenderSettings

SOURCE_VOLUME = "model-source"
CACHE_VOLUME = "model-cache"
DOWNLOADER_ENV_PREFIXES = ("AWS_", "GOOGLE_", "CLOUDSDK_")


@dataclass(frozen=True)
class ModelLocation:
    """What the pod needs so the engine can load the model."""

    model: str
    """The engine's model argument: a Hugging Face id or a local directory."""
    revision: str | None = None
    volumes: list[dict[str, Any]] = field(default_factory=list)
    mounts: list[dict[str, Any]] = field(default_factory=list)
    init_containers: list[dict[str, Any]] = field(default_factory=list)


def resolve(md: ModelDeployment, settings: RenderSettings) -> ModelLocation:
    scheme, _, rest = md.spec.model.uri.partition("://")
    rest = rest.strip("/")
    if scheme == "hf":
        return ModelLocation(model=rest, revision=md.spec.model.revision)
    if scheme == "pvc":
        return _from_claim(rest, settings)
    return _downloaded(md, scheme, rest, settings)


def _from_claim(rest: str, settings: RenderSettings) -> ModelLocation:
    claim, _, path = rest.partition("/")
    mount = f"{settings.models_mount_root}/{claim}"
    return ModelLocation(
        model=f"{mount}/{path}" if path else mount,
        volumes=[
            {
                "name": SOURCE_VOLUME,
                "persistentVolumeClaim": {"claimName": claim, "readOnly": True},
            }
        ],
        mounts=[{"name": SOURCE_VOLUME, "mountPath": mount, "readOnly": True}],
    )


def _downloaded(
    md: ModelDeployment, scheme: str, rest: str, settings: RenderSettings
) -> ModelLocation:
    target = f"{settings.cache_mount_path}/models/{rest}"
    source = f"{scheme}://{rest}"
    if scheme == "s3":
        image = settings.s3_downloader_image
        command = ["aws", "s3", "sync", "--only-show-errors", source, target]
    else:
        image = settings.gs_downloader_image
        command = ["gcloud", "storage", "rsync", "--recursive", source, target]
    init: dict[str, Any] = {
        "name": "model-download",
        "image": image,
        "command": command,
        "volumeMounts": [{"name": CACHE_VOLUME, "mountPath": settings.cache_mount_path}],
        "securityContext": container_security_context(),
    }
    env = [env_var(e) for e in md.spec.engine.env if e.name.startswith(DOWNLOADER_ENV_PREFIXES)]
    if env:
        init["env"] = env
    return ModelLocation(model=target, init_containers=[init])


def env_var(var: EnvVar) -> dict[str, Any]:
    """A core/v1 EnvVar; secret values stay behind their reference."""
    if var.secret_key_ref is not None:
        ref = {"name": var.secret_key_ref.name, "key": var.secret_key_ref.key}
        return {"name": var.name, "valueFrom": {"secretKeyRef": ref}}
    return {"name": var.name, "value": var.value or ""}


def container_security_context() -> dict[str, Any]:
    """What every Tierwise container gets: no privilege escalation, no capabilities."""
    return {
        "allowPrivilegeEscalation": False,
        "capabilities": {"drop": ["ALL"]},
    }
