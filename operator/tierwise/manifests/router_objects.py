"""The router objects of a RoutingPolicy, each built from the policy (and settings) alone.

- ConfigMap: the policy document (``policy.json``), annotated with its version.
- ServiceAccount, Role, RoleBinding: read-only access to exactly what the router watches —
  its own ConfigMap (``resourceNames``; the router lists and watches it with a
  ``metadata.name`` field selector, which is what lets RBAC allow a named list/watch) and the
  namespace's EndpointSlices. No write verb, no wildcard, no Secret access (Secrets arrive as
  volumes, through the kubelet).
- Deployment: ``spec.router.replicas`` (the policy owns the count); rolling updates add pods
  before removing any (``maxUnavailable: 0``), pods spread over nodes when they can
  (``ScheduleAnyway``: one node must not block a rollout), per revision (``matchLabelKeys``).
  Probes: startup and liveness on ``/healthz`` (the process serves; a router whose backends
  are all down must not be restarted for it), readiness on ``/readyz``. Draining: see
  :mod:`tierwise.manifests.router_settings`.
- Service: type and port from ``spec.router.service``, to the container port named ``http``.
- PodDisruptionBudget (only when replicas > 1): one router pod disrupted at a time.
- PodMonitor (only when the settings say the CRD exists), else prometheus.io annotations.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from tierwise.api.router_config import CONFIG_KEY, RouterConfig, dump_config
from tierwise.api.routing_policy import RoutingPolicy
from tierwise.manifests.objects import DEPLOYMENT, PDB, POD_MONITOR, SERVICE
from tierwise.manifests.router_names import (
    PORT_NAME,
    router_labels,
    router_name,
    router_object_meta,
    router_selector,
    router_service_name,
)
from tierwise.manifests.router_pod import (
    GATEWAY,
    router_container,
    router_volumes,
    startup_checksum,
)
from tierwise.manifests.router_settings import RouterRenderSettings

CONFIG_MAP = ("v1", "ConfigMap")
SERVICE_ACCOUNT = ("v1", "ServiceAccount")
ROLE = ("rbac.authorization.k8s.io/v1", "Role")
ROLE_BINDING = ("rbac.authorization.k8s.io/v1", "RoleBinding")
ROUTER_KINDS = (
    CONFIG_MAP,
    SERVICE_ACCOUNT,
    ROLE,
    ROLE_BINDING,
    DEPLOYMENT,
    SERVICE,
    PDB,
    POD_MONITOR,
)
"""Every kind a RoutingPolicy may own, in the order they are rendered."""

READ_VERBS = ["get", "list", "watch"]
CHECKSUM_ANNOTATION = "tierwise.dev/startup-checksum"
POLICY_VERSION_ANNOTATION = "tierwise.dev/policy-version"
METRICS_PATH = "/metrics"


def object_name(rp: RoutingPolicy, kind: tuple[str, str]) -> str:
    return router_service_name(rp) if kind == SERVICE else router_name(rp)


def _object(
    rp: RoutingPolicy,
    kind: tuple[str, str],
    owner_uid: str | None,
    annotations: dict[str, str] | None = None,
    **body: Any,
) -> dict[str, Any]:
    api_version, kind_name = kind
    meta = router_object_meta(rp, object_name(rp, kind), owner_uid, annotations)
    return {"apiVersion": api_version, "kind": kind_name, "metadata": meta, **body}


def config_map(rp: RoutingPolicy, config: RouterConfig, owner_uid: str | None) -> dict[str, Any]:
    annotations = {POLICY_VERSION_ANNOTATION: config.version}
    return _object(rp, CONFIG_MAP, owner_uid, annotations, data={CONFIG_KEY: dump_config(config)})


def service_account(rp: RoutingPolicy, owner_uid: str | None) -> dict[str, Any]:
    return _object(rp, SERVICE_ACCOUNT, owner_uid)


def role(rp: RoutingPolicy, owner_uid: str | None) -> dict[str, Any]:
    rules = [
        {
            "apiGroups": [""],
            "resources": ["configmaps"],
            "resourceNames": [router_name(rp)],
            "verbs": list(READ_VERBS),
        },
        {
            "apiGroups": ["discovery.k8s.io"],
            "resources": ["endpointslices"],
            "verbs": list(READ_VERBS),
        },
    ]
    return _object(rp, ROLE, owner_uid, rules=rules)


def role_binding(
    rp: RoutingPolicy, service_accounts: Iterable[str], owner_uid: str | None
) -> dict[str, Any]:
    """Binds the Role to ``service_accounts`` of the policy's namespace (sorted, once each)."""
    subjects = []
    for name in sorted(set(service_accounts)):
        subject = {"kind": "ServiceAccount", "name": name}
        if rp.metadata.namespace:
            subject["namespace"] = rp.metadata.namespace
        subjects.append(subject)
    ref = {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": router_name(rp)}
    return _object(rp, ROLE_BINDING, owner_uid, roleRef=ref, subjects=subjects)


def gateway_probes(settings: RouterRenderSettings) -> dict[str, dict[str, Any]]:
    def http(path: str) -> dict[str, Any]:
        return {"path": path, "port": PORT_NAME}

    period = 2
    return {
        "startupProbe": {
            "httpGet": http("/healthz"),
            "periodSeconds": period,
            "timeoutSeconds": 2,
            "failureThreshold": -(-settings.startup_timeout_seconds // period),
        },
        "readinessProbe": {
            "httpGet": http("/readyz"),
            "periodSeconds": 5,
            "timeoutSeconds": 3,
            "failureThreshold": 3,
        },
        "livenessProbe": {
            "httpGet": http("/healthz"),
            "periodSeconds": 10,
            "timeoutSeconds": 5,
            "failureThreshold": 3,
        },
    }


def scrape_annotations(rp: RoutingPolicy) -> dict[str, str]:
    return {
        "prometheus.io/scrape": "true",
        "prometheus.io/port": str(rp.spec.router.port),
        "prometheus.io/path": METRICS_PATH,
    }


def gateway_pod_spec(rp: RoutingPolicy, settings: RouterRenderSettings) -> dict[str, Any]:
    container = router_container(rp, settings, GATEWAY)
    container.update(gateway_probes(settings))
    container["lifecycle"] = {"preStop": {"sleep": {"seconds": settings.pre_stop_sleep_seconds}}}
    user = settings.run_as_user
    spread = {
        "maxSkew": 1,
        "topologyKey": "kubernetes.io/hostname",
        "whenUnsatisfiable": "ScheduleAnyway",
        "labelSelector": {"matchLabels": router_selector(rp)},
        "matchLabelKeys": ["pod-template-hash"],
    }
    return {
        "serviceAccountName": router_name(rp),
        "automountServiceAccountToken": True,
        "enableServiceLinks": False,
        "terminationGracePeriodSeconds": settings.termination_grace_seconds,
        "securityContext": {
            "runAsNonRoot": True,
            "runAsUser": user,
            "runAsGroup": user,
            "fsGroup": user,
            "seccompProfile": {"type": "RuntimeDefault"},
        },
        "containers": [container],
        "volumes": router_volumes(rp, settings),
        "topologySpreadConstraints": [spread],
    }


def deployment(
    rp: RoutingPolicy, settings: RouterRenderSettings, owner_uid: str | None
) -> dict[str, Any]:
    pod = gateway_pod_spec(rp, settings)
    annotations = {CHECKSUM_ANNOTATION: startup_checksum(pod["containers"][0], pod["volumes"])}
    if not settings.pod_monitor:
        annotations |= scrape_annotations(rp)
    spec = {
        "replicas": rp.spec.router.replicas,
        "selector": {"matchLabels": router_selector(rp)},
        "strategy": {
            "type": "RollingUpdate",
            "rollingUpdate": {"maxSurge": "25%", "maxUnavailable": 0},
        },
        "revisionHistoryLimit": settings.revision_history_limit,
        "template": {
            "metadata": {"labels": router_labels(rp), "annotations": annotations},
            "spec": pod,
        },
    }
    return _object(rp, DEPLOYMENT, owner_uid, spec=spec)


def service(rp: RoutingPolicy, owner_uid: str | None) -> dict[str, Any]:
    wanted = rp.spec.router.service
    port = {"name": PORT_NAME, "port": wanted.port, "targetPort": PORT_NAME, "protocol": "TCP"}
    spec = {"type": wanted.type.value, "selector": router_selector(rp), "ports": [port]}
    return _object(rp, SERVICE, owner_uid, spec=spec)


def pod_disruption_budget(rp: RoutingPolicy, owner_uid: str | None) -> dict[str, Any]:
    spec = {
        "maxUnavailable": 1,
        "selector": {"matchLabels": router_selector(rp)},
        "unhealthyPodEvictionPolicy": "AlwaysAllow",
    }
    return _object(rp, PDB, owner_uid, spec=spec)


def pod_monitor(
    rp: RoutingPolicy, settings: RouterRenderSettings, owner_uid: str | None
) -> dict[str, Any]:
    endpoint = {
        "port": PORT_NAME,
        "path": METRICS_PATH,
        "interval": settings.pod_monitor_interval,
    }
    spec = {"selector": {"matchLabels": router_selector(rp)}, "podMetricsEndpoints": [endpoint]}
    return _object(rp, POD_MONITOR, owner_uid, spec=spec)
