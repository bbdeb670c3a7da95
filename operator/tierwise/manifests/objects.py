"""The child objects of a ModelDeployment, each built from the spec alone.

- Deployment: ``spec.replicas`` only when the caller passes a count. The controller (or
  the autoscaler behind it) owns the replica count and passes it; with ``None`` the field
  is left out, so a server-side apply under the ``tierwise`` field manager never claims it
  and never fights an HPA or KEDA (``autoscaling.mode: external``) that owns it.
  Rolling updates surge one pod and never take one down first: a GPU cluster without a
  spare node then keeps serving on the old pod (the new one waits Pending) instead of
  dropping capacity. ``progressDeadlineSeconds`` exceeds the startup budget so a slow
  load is not reported as a failed rollout.
- Service: ClusterIP on the engine port (named ``http``), the OpenAI API endpoint.
- PodDisruptionBudget (only when ``replicas.max > 1``): at most one replica disrupted at a
  time; pods that never became ready may always be evicted so a node drain cannot be
  blocked by a pod stuck loading.
- PodMonitor (only with ``monitoring.podMonitor``): Prometheus Operator scraping of
  ``/metrics`` on the ``http`` port.
"""

from __future__ import annotations

from typing import Any

from tierwise.api.model_deployment import ModelDeployment
from tierwise.engines.base import EngineProfile
from tierwise.manifests.labels import common_labels, object_meta, selector_labels, service_name
from tierwise.manifests.model_source import ModelLocation
from tierwise.manifests.pod import PORT_NAME, pod_spec, startup_budget_seconds
from tierwise.manifests.settings import RenderSettings

DEPLOYMENT = ("apps/v1", "Deployment")
SERVICE = ("v1", "Service")
PDB = ("policy/v1", "PodDisruptionBudget")
POD_MONITOR = ("monitoring.coreos.com/v1", "PodMonitor")
CHILD_KINDS = (DEPLOYMENT, SERVICE, PDB, POD_MONITOR)
"""Every kind a ModelDeployment may own, in the order they are rendered."""


def child_name(md: ModelDeployment, kind: tuple[str, str]) -> str:
    """Children share the ModelDeployment's name; the Service's must be an RFC 1035 label."""
    if kind == SERVICE:
        return service_name(md.metadata.name)
    return md.metadata.name


def scrape_annotations(engine: EngineProfile) -> dict[str, str]:
    return {
        "prometheus.io/scrape": "true",
        "prometheus.io/port": str(engine.port),
        "prometheus.io/path": engine.metrics_path,
    }


def deployment(
    md: ModelDeployment,
    engine: EngineProfile,
    location: ModelLocation,
    *,
    replicas: int | None,
    owner_uid: str | None,
    settings: RenderSettings,
) -> dict[str, Any]:
    template_meta: dict[str, Any] = {"labels": common_labels(md)}
    if md.spec.monitoring.scrape_annotations:
        template_meta["annotations"] = scrape_annotations(engine)
    spec: dict[str, Any] = {}
    if replicas is not None:
        spec["replicas"] = replicas
    spec |= {
        "selector": {"matchLabels": selector_labels(md)},
        "strategy": {
            "type": "RollingUpdate",
            "rollingUpdate": {"maxSurge": 1, "maxUnavailable": 0},
        },
        "revisionHistoryLimit": settings.revision_history_limit,
        "progressDeadlineSeconds": startup_budget_seconds(md, settings) + 600,
        "template": {
            "metadata": template_meta,
            "spec": pod_spec(md, engine, location, settings),
        },
    }
    return _object(md, DEPLOYMENT, owner_uid, spec)


def service(md: ModelDeployment, engine: EngineProfile, owner_uid: str | None) -> dict[str, Any]:
    port = {"name": PORT_NAME, "port": engine.port, "targetPort": PORT_NAME, "protocol": "TCP"}
    spec = {"type": "ClusterIP", "selector": selector_labels(md), "ports": [port]}
    return _object(md, SERVICE, owner_uid, spec)


def pod_disruption_budget(md: ModelDeployment, owner_uid: str | None) -> dict[str, Any]:
    spec = {
        "maxUnavailable": 1,
        "selector": {"matchLabels": selector_labels(md)},
        "unhealthyPodEvictionPolicy": "AlwaysAllow",
    }
    return _object(md, PDB, owner_uid, spec)


def pod_monitor(
    md: ModelDeployment, engine: EngineProfile, owner_uid: str | None, settings: RenderSettings
) -> dict[str, Any]:
    endpoint = {
        "port": PORT_NAME,
        "path": engine.metrics_path,
        "interval": settings.pod_monitor_interval,
    }
    spec = {"selector": {"matchLabels": selector_labels(md)}, "podMetricsEndpoints": [endpoint]}
    return _object(md, POD_MONITOR, owner_uid, spec)


def _object(
    md: ModelDeployment, kind: tuple[str, str], owner_uid: str | None, spec: dict[str, Any]
) -> dict[str, Any]:
    api_version, kind_name = kind
    return {
        "apiVersion": api_version,
        "kind": kind_name,
        "metadata": object_meta(md, child_name(md, kind), owner_uid),
        "spec": spec,
    }
