"""The router's endpoint map (ModelDeployment name → replica base URLs), read from pods.

Why it exists: ``tierwise router --policy RP.yaml --endpoints EP.yaml`` needs to know where
each ModelDeployment's ready replicas answer. In a cluster the RoutingPolicy reconciler
will resolve that and write the routing table; it is not built yet, so on the embedded
cluster this module stands in for it: it lists the engine pods (label
``tierwise.dev/model-deployment``), keeps those whose ``Ready`` condition is ``True`` and
not being deleted, and turns each into ``http://<podIP>:<port>``, the port taken from
the local runner's annotation ``local.tierwise.dev/port`` (pods share one host here, so
the container port alone would not do).

:func:`endpoints_from_pods` is pure; :func:`read_endpoints` lists pods with the
``kubernetes`` client; :func:`endpoints_yaml` writes the EP.yaml the router reads.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any, cast

import kubernetes.client
import yaml

from tierwise.local.workloads import PORT_ANNOTATION
from tierwise.manifests.labels import MODEL_DEPLOYMENT_LABEL, label_value

Endpoints = dict[str, list[str]]


def _ready(pod: Mapping[str, Any]) -> bool:
    conditions = (pod.get("status") or {}).get("conditions") or []
    return any(c.get("type") == "Ready" and c.get("status") == "True" for c in conditions)


def pod_base_url(pod: Mapping[str, Any]) -> str | None:
    """``http://IP:PORT`` of a ready, running pod with a local port; None otherwise."""
    meta = pod.get("metadata") or {}
    if meta.get("deletionTimestamp") or not _ready(pod):
        return None
    port = (meta.get("annotations") or {}).get(PORT_ANNOTATION)
    ip = (pod.get("status") or {}).get("podIP")
    if not port or not ip or not (str(port).isascii() and str(port).isdigit()):
        return None
    host = f"[{ip}]" if ":" in ip else ip
    return f"http://{host}:{int(port)}"


def endpoints_from_pods(
    pods: Iterable[Mapping[str, Any]], names: Iterable[str] | None = None
) -> Endpoints:
    """Ready replica URLs per ModelDeployment (sorted, no duplicates).

    Pods carry ``label_value(name)``, which shortens names over 63 characters; ``names``
    (the ModelDeployments of interest) maps those back and limits the result to them.
    Without ``names`` the label value is the key.
    """
    wanted = None if names is None else {label_value(n): n for n in names}
    out: dict[str, set[str]] = {} if wanted is None else {n: set() for n in wanted.values()}
    for pod in pods:
        label = ((pod.get("metadata") or {}).get("labels") or {}).get(MODEL_DEPLOYMENT_LABEL)
        if not label:
            continue
        name = label if wanted is None else wanted.get(label)
        url = pod_base_url(pod)
        if name is None or url is None:
            continue
        out.setdefault(name, set()).add(url)
    return {name: sorted(urls) for name, urls in sorted(out.items())}


def read_endpoints(
    api: kubernetes.client.ApiClient, namespace: str, names: Iterable[str] | None = None
) -> Endpoints:
    """List the engine pods of ``namespace`` and map them with :func:`endpoints_from_pods`."""
    listed = kubernetes.client.CoreV1Api(api).list_namespaced_pod(
        namespace, label_selector=MODEL_DEPLOYMENT_LABEL
    )
    pods = [
        cast("dict[str, Any]", api.sanitize_for_serialization(pod))  # type: ignore[no-untyped-call]
        for pod in listed.items
    ]
    return endpoints_from_pods(pods, names)


def endpoints_yaml(endpoints: Mapping[str, Iterable[str]]) -> str:
    """EP.yaml for ``tierwise router --endpoints`` (a mapping of name to URL list)."""
    body = {name: list(urls) for name, urls in endpoints.items()}
    return yaml.safe_dump(body, sort_keys=True, allow_unicode=True)
