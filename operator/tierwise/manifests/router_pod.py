"""The router container and its volumes, shared by the gateway Deployment and the sidecar.

One builder for both modes so a gateway router and an injected sidecar run the same command
the same way; they differ only in :class:`Binding` (container name, listen address, port
name) and in their probes (a sidecar on 127.0.0.1 cannot be reached by the kubelet's HTTP
probes, which connect to the pod IP; see :mod:`tierwise.manifests.sidecar`).

What the router reads, and when:
- The policy document: watched through the API (``--config-map``), with the mounted
  ConfigMap (``--config-file``) as fallback. Hot-reloaded: a new document never restarts it.
- Secret key files under ``<secrets dir>/<secret>/<key>``: re-read when they change (the
  kubelet refreshes Secret volumes that are not subPath mounts), so a rotated key needs no
  restart. Secret volumes are ``optional``: a missing Secret degrades the tiers that need it
  (the controller reports it) instead of keeping every router pod from starting. Only the
  keys the policy names are projected (``items``), never the whole Secret.
- Everything else (image, arguments, environment, which Secrets are mounted where) is read
  once at startup; :func:`startup_checksum` hashes exactly that.

The container runs restricted: non-root (UID/GID from the settings), read-only root
filesystem with an emptyDir on ``/tmp``, no privilege escalation, every capability dropped,
seccomp RuntimeDefault (set on the container too, because an application pod that receives
the sidecar may not set it at pod level).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any

import orjson

from tierwise.api.router_config import CONFIG_KEY
from tierwise.api.routing_policy import RoutingPolicy
from tierwise.manifests.labels import service_name
from tierwise.manifests.router_names import PORT_NAME, referenced_secrets, router_name
from tierwise.manifests.router_settings import RouterRenderSettings

VOLUME_PREFIX = "tierwise-"
"""Every router volume's name starts with it, so none clashes with an application's."""
CONFIG_VOLUME = f"{VOLUME_PREFIX}config"
TMP_VOLUME = f"{VOLUME_PREFIX}tmp"
TMP_SIZE_LIMIT = "64Mi"
CLASSIFIER_DIR = "/etc/tierwise/classifiers"
"""Where tier classifier artefacts are mounted (the router's --classifier-dir): NAME/KEY."""
READ_ONLY_FOR_ALL = 0o444
"""Secret file mode: readable by the router's UID whatever the pod's fsGroup (only the router
container mounts these volumes)."""
COMMAND = ["tierwise", "router"]


@dataclass(frozen=True)
class Binding:
    """Where one router container listens and how it is named in its pod."""

    container_name: str
    host: str
    port_name: str


GATEWAY = Binding(container_name="router", host="0.0.0.0", port_name=PORT_NAME)
SIDECAR = Binding(container_name="tierwise-router", host="127.0.0.1", port_name="tierwise-http")
"""A sidecar's port is not named ``http``: a Service of the application that targets its own
port by name must never resolve to the router's."""


def router_image(rp: RoutingPolicy, settings: RouterRenderSettings) -> str:
    return rp.spec.router.image or settings.image


def secrets_dir(settings: RouterRenderSettings) -> str:
    return settings.secrets_dir.rstrip("/") or "/"


def secret_volume_name(secret: str) -> str:
    """A DNS label unique per Secret (Secret names may hold dots and run to 253 chars)."""
    return service_name(f"{VOLUME_PREFIX}secret-{secret}")


def router_volumes(rp: RoutingPolicy, settings: RouterRenderSettings) -> list[dict[str, Any]]:
    """The policy ConfigMap, one Secret volume per referenced Secret (sorted), and /tmp."""
    volumes: list[dict[str, Any]] = [
        {"name": CONFIG_VOLUME, "configMap": {"name": router_name(rp)}}
    ]
    for secret, keys in referenced_secrets(rp).items():
        source = {
            "secretName": secret,
            "items": [{"key": key, "path": key} for key in keys],
            "defaultMode": READ_ONLY_FOR_ALL,
            "optional": True,
        }
        volumes.append({"name": secret_volume_name(secret), "secret": source})
    artifact = _classifier_config_map(rp)
    if artifact is not None:
        name, key = artifact
        source = {"name": name, "items": [{"key": key, "path": key}], "optional": True}
        volumes.append({"name": classifier_volume_name(name), "configMap": source})
    volumes.append({"name": TMP_VOLUME, "emptyDir": {"sizeLimit": TMP_SIZE_LIMIT}})
    return volumes


def classifier_volume_name(config_map: str) -> str:
    return service_name(f"{VOLUME_PREFIX}classifier-{config_map}")


def _classifier_config_map(rp: RoutingPolicy) -> tuple[str, str] | None:
    """The ConfigMap holding the tier classifier's artefact (``tierwise route calibrate``
    writes it), mounted ``optional`` so a missing one fails the classifier closed, visibly,
    instead of keeping the router from starting."""
    classifier = rp.spec.classifier
    quality = classifier.tier_quality if classifier is not None else None
    if quality is None or quality.config_map is None:
        return None
    return quality.config_map.name, quality.config_map.key


def router_mounts(rp: RoutingPolicy, settings: RouterRenderSettings) -> list[dict[str, Any]]:
    base = secrets_dir(settings).rstrip("/")
    mounts: list[dict[str, Any]] = [
        {"name": CONFIG_VOLUME, "mountPath": settings.config_mount_path, "readOnly": True}
    ]
    mounts.extend(
        {"name": secret_volume_name(secret), "mountPath": f"{base}/{secret}", "readOnly": True}
        for secret in referenced_secrets(rp)
    )
    artifact = _classifier_config_map(rp)
    if artifact is not None:
        folder = f"{CLASSIFIER_DIR}/{artifact[0]}"
        name = classifier_volume_name(artifact[0])
        mounts.append({"name": name, "mountPath": folder, "readOnly": True})
    mounts.append({"name": TMP_VOLUME, "mountPath": "/tmp"})
    return mounts


def router_args(rp: RoutingPolicy, settings: RouterRenderSettings, host: str) -> list[str]:
    config_file = f"{settings.config_mount_path.rstrip('/')}/{CONFIG_KEY}"
    return [
        "--config-map",
        router_name(rp),
        "--config-file",
        config_file,
        "--discovery",
        "kubernetes",
        "--secrets-dir",
        secrets_dir(settings),
        "--host",
        host,
        "--port",
        str(rp.spec.router.port),
        "--shutdown-grace",
        str(settings.shutdown_grace_seconds),
        "--log-level",
        settings.log_level,
        "--classifier-dir",
        CLASSIFIER_DIR,
        *(["--workers", str(rp.spec.router.workers)] if rp.spec.router.workers > 1 else []),
    ]


def router_env() -> list[dict[str, Any]]:
    """The router's namespace (its discovery watches and demand metrics) and pod name."""

    def field_ref(name: str, path: str) -> dict[str, Any]:
        return {"name": name, "valueFrom": {"fieldRef": {"fieldPath": path}}}

    return [
        field_ref("POD_NAMESPACE", "metadata.namespace"),
        field_ref("POD_NAME", "metadata.name"),
    ]


def router_resources(rp: RoutingPolicy) -> dict[str, dict[str, str]]:
    """Requests equal limits: a router's latency should not depend on its neighbours."""
    spec = rp.spec.router.resources
    amounts = {"cpu": spec.cpu, "memory": spec.memory}
    return {"requests": dict(amounts), "limits": dict(amounts)}


def router_security_context(settings: RouterRenderSettings) -> dict[str, Any]:
    return {
        "allowPrivilegeEscalation": False,
        "capabilities": {"drop": ["ALL"]},
        "readOnlyRootFilesystem": True,
        "runAsNonRoot": True,
        "runAsUser": settings.run_as_user,
        "runAsGroup": settings.run_as_user,
        "seccompProfile": {"type": "RuntimeDefault"},
    }


def router_container(
    rp: RoutingPolicy, settings: RouterRenderSettings, binding: Binding
) -> dict[str, Any]:
    """The container without probes or lifecycle (those differ per mode)."""
    port = {"name": binding.port_name, "containerPort": rp.spec.router.port, "protocol": "TCP"}
    return {
        "name": binding.container_name,
        "image": router_image(rp, settings),
        "imagePullPolicy": settings.image_pull_policy.value,
        "command": list(COMMAND),
        "args": router_args(rp, settings, binding.host),
        "env": router_env(),
        "ports": [port],
        "resources": router_resources(rp),
        "volumeMounts": router_mounts(rp, settings),
        "securityContext": router_security_context(settings),
    }


def startup_checksum(container: dict[str, Any], volumes: list[dict[str, Any]]) -> str:
    """Hash of what the router reads only at startup: image, command, arguments, environment,
    and which ConfigMap and Secret keys are mounted where. The policy document and Secret
    values are hot-reloaded and deliberately left out, so a new document never rolls pods."""
    startup = {
        key: container.get(key) for key in ("image", "command", "args", "env", "volumeMounts")
    }
    startup["volumes"] = volumes
    digest = hashlib.sha256(orjson.dumps(startup, option=orjson.OPT_SORT_KEYS))
    return digest.hexdigest()[:16]
