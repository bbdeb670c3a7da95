"""What ``tierwise demo`` applies: the manifests of ``examples/00-demo`` and their Secret.

Why it exists: the demo applies a user's manifests as a user would, so they are read and
validated with the same code as ``tierwise validate`` (an invalid file stops the demo with
the field and the fix, before anything starts). Two things are adapted for the local
run: every external backend's ``baseURL`` is pointed at the local frontier stand-in in
the RoutingPolicy that is applied, and each referenced API-key Secret is created with a
random value (never printed), which the router receives as a mounted Secret file like in
a cluster. :func:`read_rows` reads back what the operator reports in each
ModelDeployment's status, and the ready replicas its EndpointSlices list.
"""

from __future__ import annotations

import base64
import copy
import secrets
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

import kubernetes.client

from tierwise.api.common import GROUP, VERSION
from tierwise.api.documents import load_documents
from tierwise.demo.summary import DeploymentRow, tier_of_deployments
from tierwise.manifests.labels import MODEL_DEPLOYMENT_LABEL, label_value


class DemoError(Exception):
    """The demo could not run; the message says what failed and where its log is."""


@dataclass(frozen=True)
class Manifests:
    """The demo's ModelDeployments and its one RoutingPolicy, as raw documents."""

    deployments: tuple[dict[str, Any], ...]
    policy: dict[str, Any]

    @property
    def names(self) -> list[str]:
        return [d["metadata"]["name"] for d in self.deployments]

    @property
    def policy_name(self) -> str:
        return str(self.policy["metadata"]["name"])

    def engines(self) -> dict[str, str]:
        """ModelDeployment name -> engine (``vllm``, ``sglang``)."""
        return {d["metadata"]["name"]: d["spec"]["engine"]["name"] for d in self.deployments}

    def bounds(self, name: str) -> tuple[int, int]:
        """``replicas.min`` and ``max`` of a ModelDeployment (the API's defaults: 1, 1)."""
        body = next(d for d in self.deployments if d["metadata"]["name"] == name)
        replicas = body["spec"].get("replicas") or {}
        return int(replicas.get("min", 1)), int(replicas.get("max", 1))

    def to_zero(self) -> list[str]:
        """ModelDeployments a tier uses that may scale to zero (``replicas.min: 0``)."""
        used = {n for names in self.tiers.values() for n in names}
        return [n for n in self.names if n in used and self.bounds(n)[0] == 0]

    @property
    def tiers(self) -> dict[str, list[str]]:
        return {
            t["name"]: [b["modelDeployment"] for b in t["backends"] if "modelDeployment" in b]
            for t in self.policy["spec"]["tiers"]
        }

    def externals(self) -> list[dict[str, Any]]:
        return [
            b["external"]
            for t in self.policy["spec"]["tiers"]
            for b in t["backends"]
            if "external" in b
        ]


def load_manifests(folder: Path) -> Manifests:
    """Read and validate every YAML file of ``folder`` (raises :class:`DemoError`)."""
    files = sorted(p for p in folder.glob("*.y*ml")) if folder.is_dir() else []
    if not files:
        raise DemoError(
            f"no manifests in {folder}: run from a source checkout or pass "
            "--manifests DIR (examples/00-demo)"
        )
    deployments: list[dict[str, Any]] = []
    policies: list[dict[str, Any]] = []
    for path in files:
        for doc in load_documents(path):
            if doc.issues:
                raise DemoError(f"{path}: {doc.label}: " + "; ".join(map(str, doc.issues)))
            if doc.kind == "ModelDeployment":
                deployments.append(doc.raw)
            elif doc.kind == "RoutingPolicy":
                policies.append(doc.raw)
    if len(policies) != 1 or not deployments:
        raise DemoError(f"{folder}: need ModelDeployments and exactly one RoutingPolicy")
    return Manifests(tuple(deployments), policies[0])


def effective_policy(manifests: Manifests, frontier_url: str | None) -> dict[str, Any]:
    """The RoutingPolicy with every external backend pointed at the local stand-in."""
    policy = copy.deepcopy(manifests.policy)
    for tier in policy["spec"]["tiers"]:
        for backend in tier["backends"]:
            if "external" in backend and frontier_url is not None:
                backend["external"]["baseURL"] = frontier_url + "/v1"
    return policy


def create_secrets(
    api: kubernetes.client.ApiClient, namespace: str, externals: Sequence[Mapping[str, Any]]
) -> None:
    """A random key per referenced Secret, created in the cluster (never printed)."""
    core = kubernetes.client.CoreV1Api(api)
    keys: dict[str, dict[str, str]] = {}
    for e in externals:
        ref = e["apiKeySecretRef"]
        keys.setdefault(ref["name"], {})[ref["key"]] = "sk-demo-" + secrets.token_urlsafe(24)
    for name, data in keys.items():
        core.create_namespaced_secret(
            namespace,
            kubernetes.client.V1Secret(
                metadata=kubernetes.client.V1ObjectMeta(
                    name=name, labels={"app.kubernetes.io/part-of": "tierwise-demo"}
                ),
                type="Opaque",
                data={k: base64.b64encode(v.encode()).decode() for k, v in data.items()},
            ),
        )


def apply_manifests(
    api: kubernetes.client.ApiClient,
    namespace: str,
    manifests: Manifests,
    frontier_url: str | None,
) -> None:
    """Create the ModelDeployments, then the RoutingPolicy (externals at the stand-in)."""
    custom = kubernetes.client.CustomObjectsApi(api)
    for body in manifests.deployments:
        custom.create_namespaced_custom_object(
            GROUP, VERSION, namespace, "modeldeployments", copy.deepcopy(body)
        )
    custom.create_namespaced_custom_object(
        GROUP, VERSION, namespace, "routingpolicies", effective_policy(manifests, frontier_url)
    )


def ready_endpoints(api: kubernetes.client.ApiClient, namespace: str, name: str) -> list[str]:
    """The ready replicas of a ModelDeployment's Service, from its EndpointSlices (what
    the router discovers): ``http://ADDRESS:PORT`` of each endpoint not marked unready."""
    slices = kubernetes.client.DiscoveryV1Api(api).list_namespaced_endpoint_slice(
        namespace, label_selector=f"{MODEL_DEPLOYMENT_LABEL}={label_value(name)}"
    )
    return sorted(
        {
            f"http://{address}:{port.port}"
            for piece in slices.items
            for port in piece.ports or []
            if port.name == "http"
            for endpoint in piece.endpoints or []
            if endpoint.conditions is None or endpoint.conditions.ready is not False
            for address in endpoint.addresses
        }
    )


def read_rows(
    api: kubernetes.client.ApiClient, namespace: str, manifests: Manifests
) -> list[DeploymentRow]:
    """One row per ModelDeployment from its status (what ``kubectl get md`` shows)."""
    custom = kubernetes.client.CustomObjectsApi(api)
    tiers = tier_of_deployments(manifests.tiers)
    rows = []
    for name in manifests.names:
        body = cast(
            "dict[str, Any]",
            custom.get_namespaced_custom_object(
                GROUP, VERSION, namespace, "modeldeployments", name
            ),
        )
        spec, status = body.get("spec") or {}, body.get("status") or {}
        rows.append(
            DeploymentRow(
                name=name,
                engine=spec["engine"]["name"],
                served_name=status.get("servedModelName")
                or spec["model"].get("servedName")
                or name,
                ready=int(status.get("readyReplicas") or 0),
                desired=int(status.get("desiredReplicas") or 0),
                phase=status.get("phase") or "-",
                tier=tiers.get(name, ""),
                endpoints=tuple(ready_endpoints(api, namespace, name)),
                min_replicas=manifests.bounds(name)[0],
                max_replicas=manifests.bounds(name)[1],
            )
        )
    return rows
