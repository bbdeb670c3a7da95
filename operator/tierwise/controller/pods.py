"""Where the autoscaler reads signals from: ready engine pods and router pods, as URLs.

Why it exists: the autoscaler scrapes ``/metrics`` of every ready engine pod of a
ModelDeployment and of the router pods (the demand signal). In a cluster a pod answers on
``http://<podIP>:<containerPort>``; on the embedded cluster every pod is a process on
127.0.0.1 and its real port is in the annotation ``local.tierwise.dev/port``. That
difference is one small strategy (:class:`PodAddress`), chosen by the operator's settings,
so the timer never special-cases tests.

Also here: the pod-deletion-cost annotation patch, the one pod write the autoscaler makes.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from enum import StrEnum
from typing import Any

from tierwise.autoscaler.deletion_cost import ANNOTATION as DELETION_COST
from tierwise.autoscaler.signals import PodTarget
from tierwise.controller.kube import KubeClient
from tierwise.controller.resources import POD

ROUTER_SELECTOR = "app.kubernetes.io/component=router"
"""Router pods the operator scrapes for demand, in the ModelDeployment's namespace."""
LOCAL_PORT_ANNOTATION = "local.tierwise.dev/port"
ROUTER_PORT_NAMES = ("metrics", "http")
"""Container port names tried, in order, on a router pod."""


class PodAddress(StrEnum):
    """How a pod's base URL is built."""

    POD_IP = "pod-ip"
    """``http://<status.podIP>:<containerPort>`` (in-cluster)."""
    LOCAL_PORT = "local-port"
    """``http://<podIP or 127.0.0.1>:<annotation local.tierwise.dev/port>`` (embedded cluster)."""


def is_ready(pod: Mapping[str, Any]) -> bool:
    """Ready condition True and not being deleted."""
    if (pod.get("metadata") or {}).get("deletionTimestamp"):
        return False
    conditions = (pod.get("status") or {}).get("conditions") or []
    return any(c.get("type") == "Ready" and c.get("status") == "True" for c in conditions)


def _container_port(pod: Mapping[str, Any], names: Iterable[str]) -> int | None:
    containers = (pod.get("spec") or {}).get("containers") or []
    ports = [p for c in containers for p in c.get("ports") or []]
    for name in names:
        for port in ports:
            if port.get("name") == name and port.get("containerPort"):
                return int(port["containerPort"])
    return int(ports[0]["containerPort"]) if ports and ports[0].get("containerPort") else None


def base_url(
    pod: Mapping[str, Any], address: PodAddress, *, port_names: Iterable[str] = ("http",)
) -> str | None:
    """The pod's ``http://host:port``, or None when it has no address yet."""
    meta = pod.get("metadata") or {}
    ip = (pod.get("status") or {}).get("podIP")
    if address is PodAddress.LOCAL_PORT:
        port_text = str((meta.get("annotations") or {}).get(LOCAL_PORT_ANNOTATION) or "")
        port = int(port_text) if port_text.isascii() and port_text.isdigit() else None
        ip = ip or "127.0.0.1"
    else:
        port = _container_port(pod, port_names)
    if not ip or port is None:
        return None
    host = f"[{ip}]" if ":" in ip else ip
    return f"http://{host}:{port}"


def engine_targets(
    pods: Iterable[Mapping[str, Any]], address: PodAddress, *, metrics_path: str
) -> tuple[PodTarget, ...]:
    """Ready engine pods as scrape targets, sorted by name."""
    targets = []
    for pod in pods:
        url = base_url(pod, address) if is_ready(pod) else None
        if url is None:
            continue
        name = str(pod["metadata"]["name"])
        node = (pod.get("spec") or {}).get("nodeName")
        targets.append(PodTarget(name=name, metrics_url=url + metrics_path, node=node))
    return tuple(sorted(targets, key=lambda t: t.name))


def router_metrics_urls(pods: Iterable[Mapping[str, Any]], address: PodAddress) -> list[str]:
    """``/metrics`` of every ready router pod."""
    urls = (base_url(p, address, port_names=ROUTER_PORT_NAMES) for p in pods if is_ready(p))
    return sorted(url + "/metrics" for url in urls if url is not None)


async def annotate_deletion_costs(
    kube: KubeClient, namespace: str, costs: Mapping[str, str]
) -> None:
    """Merge-patch ``controller.kubernetes.io/pod-deletion-cost`` onto each pod, so the
    ReplicaSet removes the replica whose loss costs least (a pod already gone costs nothing)."""
    for name, cost in sorted(costs.items()):
        await kube.patch_annotations(POD, namespace, name, {DELETION_COST: cost})
