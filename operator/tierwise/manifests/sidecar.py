"""The router as a native sidecar of an application pod (``spec.router.mode: sidecar``).

The mutating webhook calls :func:`inject_sidecar` with the pod being created; this module
decides everything about the mutation and stays pure (a new dict, the input untouched).

The sidecar is an init container with ``restartPolicy: Always`` (Kubernetes' native sidecar,
GA in 1.33): it starts before the application's containers, outlives them during
termination, and is restarted if it exits. It is placed first among the init containers so
the application's own init containers can call it too.

Probes: the router listens on 127.0.0.1 (nothing outside the pod can reach it), but the
kubelet's HTTP probes connect to the pod IP, so the probes run inside the container: a short
``python3`` (the router image's interpreter) fetching the endpoint on localhost.
- startup: ``/healthz``. The router listens only once its policy is installed, so this is
  what gates the application's start. It is deliberately not ``/readyz``, which also needs a
  healthy backend replica: with every self-hosted tier scaled to zero a startup probe on it
  would restart the sidecar in a loop and never start the application, whose requests are
  what scale the tiers up.
- readiness: ``/readyz`` (the pod is not Ready while the router can serve nothing).
- liveness: ``/healthz``.

Idempotent: a pod that carries ``tierwise.dev/router-injected`` or a container named
``tierwise-router`` is never injected again (webhooks may be reinvoked). Pods that must not
be touched get a :class:`SkipReason` instead, for the webhook's events and metrics.

The sidecar needs a service-account token for its watches. When a container of the pod
already mounts the token at the standard path (the ServiceAccount admission plugin runs
before webhooks), the sidecar mounts that same volume; otherwise (``automountServiceAccountToken:
false`` on the pod or its ServiceAccount) it alone gets a projected token volume, exactly
what the kubelet would have mounted. Application containers are never modified.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from enum import StrEnum
from typing import Any

from tierwise.api.routing_policy import RouterMode, RoutingPolicy
from tierwise.manifests.labels import label_value
from tierwise.manifests.router_names import ROUTING_POLICY_LABEL
from tierwise.manifests.router_pod import (
    SIDECAR,
    VOLUME_PREFIX,
    router_container,
    router_volumes,
)
from tierwise.manifests.router_settings import RouterRenderSettings

INJECTED_ANNOTATION = "tierwise.dev/router-injected"
TOKEN_PATH = "/var/run/secrets/kubernetes.io/serviceaccount"
TOKEN_VOLUME = f"{VOLUME_PREFIX}kube-api-access"
TOKEN_EXPIRATION_SECONDS = 3607
"""What the kubelet uses for its own projected tokens; the router re-reads the file."""
PROBE_TIMEOUT_SECONDS = 5
"""Generous: the probe starts an interpreter inside the sidecar's CPU limit."""


class SkipReason(StrEnum):
    """Why a pod is left as it is."""

    ALREADY_INJECTED = "already-injected"
    NOT_SIDECAR_MODE = "policy-not-in-sidecar-mode"
    NOT_LABELLED = "pod-not-labelled-for-this-policy"
    OTHER_NAMESPACE = "pod-in-another-namespace"
    HOST_NETWORK = "pod-uses-host-network"
    """localhost would be the node's: routers of two pods would fight over the port."""
    PORT_IN_USE = "router-port-used-by-the-pod"
    VOLUME_NAME_TAKEN = "volume-name-taken"
    NOT_A_POD = "not-a-pod"


def _local_probe(port: int, path: str, *, period: int, failures: int) -> dict[str, Any]:
    code = f"import urllib.request as u; u.urlopen('http://127.0.0.1:{port}{path}', timeout=3)"
    return {
        "exec": {"command": ["python3", "-c", code]},
        "periodSeconds": period,
        "timeoutSeconds": PROBE_TIMEOUT_SECONDS,
        "failureThreshold": failures,
    }


def sidecar_container(rp: RoutingPolicy, settings: RouterRenderSettings) -> dict[str, Any]:
    """The router as a native sidecar on 127.0.0.1:``spec.router.port`` (without the service
    account token mount, which depends on the pod: see :func:`inject_sidecar`)."""
    port = rp.spec.router.port
    container = router_container(rp, settings, SIDECAR)
    container["restartPolicy"] = "Always"
    startup_period = 2
    container |= {
        "startupProbe": _local_probe(
            port,
            "/healthz",
            period=startup_period,
            failures=-(-settings.startup_timeout_seconds // startup_period),
        ),
        "readinessProbe": _local_probe(port, "/readyz", period=5, failures=3),
        "livenessProbe": _local_probe(port, "/healthz", period=10, failures=3),
    }
    return container


def _containers(spec: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    return [*(spec.get("initContainers") or []), *(spec.get("containers") or [])]


def skip_reason(
    pod: Mapping[str, Any], rp: RoutingPolicy, settings: RouterRenderSettings | None = None
) -> SkipReason | None:
    """Why ``pod`` must not receive ``rp``'s sidecar, or None when it should."""
    spec = pod.get("spec")
    meta = pod.get("metadata") or {}
    if not isinstance(spec, Mapping) or not isinstance(meta, Mapping):
        return SkipReason.NOT_A_POD
    if rp.spec.router.mode != RouterMode.SIDECAR:
        return SkipReason.NOT_SIDECAR_MODE
    containers = _containers(spec)
    if INJECTED_ANNOTATION in (meta.get("annotations") or {}) or any(
        c.get("name") == SIDECAR.container_name for c in containers
    ):
        return SkipReason.ALREADY_INJECTED
    label = (meta.get("labels") or {}).get(ROUTING_POLICY_LABEL)
    if label not in (rp.metadata.name, label_value(rp.metadata.name)):
        return SkipReason.NOT_LABELLED
    namespace = meta.get("namespace")
    if namespace and rp.metadata.namespace and namespace != rp.metadata.namespace:
        return SkipReason.OTHER_NAMESPACE
    if spec.get("hostNetwork"):
        return SkipReason.HOST_NETWORK
    ports = {p.get("containerPort") for c in containers for p in c.get("ports") or []}
    if rp.spec.router.port in ports:
        return SkipReason.PORT_IN_USE
    ours = {v["name"] for v in router_volumes(rp, settings or RouterRenderSettings())}
    ours.add(TOKEN_VOLUME)
    if ours & {v.get("name") for v in spec.get("volumes") or []}:
        return SkipReason.VOLUME_NAME_TAKEN
    return None


def pod_service_account(pod: Mapping[str, Any]) -> str:
    """The ServiceAccount a pod runs as (what the sidecar's RoleBinding must name): its
    ``serviceAccountName``, the deprecated ``serviceAccount``, else ``default``."""
    spec = pod.get("spec") or {}
    return str(spec.get("serviceAccountName") or spec.get("serviceAccount") or "default")


def _token_volume() -> dict[str, Any]:
    """The projected volume the kubelet mounts as ``kube-api-access-*``."""
    sources = [
        {"serviceAccountToken": {"path": "token", "expirationSeconds": TOKEN_EXPIRATION_SECONDS}},
        {"configMap": {"name": "kube-root-ca.crt", "items": [{"key": "ca.crt", "path": "ca.crt"}]}},
        {
            "downwardAPI": {
                "items": [{"path": "namespace", "fieldRef": {"fieldPath": "metadata.namespace"}}]
            }
        },
    ]
    return {"name": TOKEN_VOLUME, "projected": {"sources": sources, "defaultMode": 0o444}}


def _existing_token_mount(spec: Mapping[str, Any]) -> dict[str, Any] | None:
    for container in _containers(spec):
        for mount in container.get("volumeMounts") or []:
            if str(mount.get("mountPath", "")).rstrip("/") == TOKEN_PATH:
                return dict(mount)
    return None


def inject_sidecar(
    pod: Mapping[str, Any], rp: RoutingPolicy, settings: RouterRenderSettings | None = None
) -> dict[str, Any] | None:
    """``pod`` with ``rp``'s router sidecar, its volumes and the injected annotation; None
    when the pod already has it or must not be touched (:func:`skip_reason` says why)."""
    settings = settings or RouterRenderSettings()
    if skip_reason(pod, rp, settings) is not None:
        return None
    out = copy.deepcopy(dict(pod))
    spec = out["spec"]
    sidecar = sidecar_container(rp, settings)
    volumes = router_volumes(rp, settings)
    token_mount = _existing_token_mount(spec)
    if token_mount is None:
        volumes.append(_token_volume())
        token_mount = {"name": TOKEN_VOLUME, "mountPath": TOKEN_PATH, "readOnly": True}
    sidecar["volumeMounts"].append(token_mount)
    spec["initContainers"] = [sidecar, *(spec.get("initContainers") or [])]
    spec["volumes"] = [*(spec.get("volumes") or []), *volumes]
    meta = out["metadata"] = dict(out.get("metadata") or {})
    meta["annotations"] = {**(meta.get("annotations") or {}), INJECTED_ANNOTATION: rp.metadata.name}
    return out
