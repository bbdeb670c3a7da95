"""What ``tierwise demo`` applies: the manifests of ``examples/00-demo`` and their Secret.

Why it exists: the demo applies a user's manifests as a user would, so they are read and
validated with the same code as ``tierwise validate`` (an invalid file stops the demo with
the field and the fix, before anything starts). Two things are adapted for the local
run, and only in the copies handed to the router: every external backend is pointed at
the local frontier stand-in, and each referenced API-key Secret gets a random value,
created in the cluster and written as a mounted-Secret file (never printed).
:func:`read_rows` reads back what the operator reports in each ModelDeployment's status.
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
from tierwise.local.demo_report import DeploymentRow, tier_of_deployments


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


def write_secrets(
    api: kubernetes.client.ApiClient,
    namespace: str,
    externals: Sequence[Mapping[str, Any]],
    folder: Path,
) -> None:
    """A random key per referenced Secret: created in the cluster and 'mounted' as a file."""
    core = kubernetes.client.CoreV1Api(api)
    for ref in {(e["apiKeySecretRef"]["name"], e["apiKeySecretRef"]["key"]) for e in externals}:
        name, key = ref
        value = "sk-demo-" + secrets.token_urlsafe(24)
        path = folder / name / key
        path.parent.mkdir(parents=True, exist_ok=True)
        path.touch(mode=0o600)
        path.write_text(value)
        core.create_namespaced_secret(
            namespace,
            kubernetes.client.V1Secret(
                metadata=kubernetes.client.V1ObjectMeta(
                    name=name, labels={"app.kubernetes.io/part-of": "tierwise-demo"}
                ),
                type="Opaque",
                data={key: base64.b64encode(value.encode()).decode()},
            ),
        )


def apply_manifests(api: kubernetes.client.ApiClient, namespace: str, manifests: Manifests) -> None:
    custom = kubernetes.client.CustomObjectsApi(api)
    for body in manifests.deployments:
        custom.create_namespaced_custom_object(
            GROUP, VERSION, namespace, "modeldeployments", copy.deepcopy(body)
        )
    custom.create_namespaced_custom_object(
        GROUP, VERSION, namespace, "routingpolicies", copy.deepcopy(manifests.policy)
    )


def read_rows(
    api: kubernetes.client.ApiClient,
    namespace: str,
    manifests: Manifests,
    endpoints: Mapping[str, Sequence[str]] | None = None,
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
                endpoints=tuple((endpoints or {}).get(name, ())),
            )
        )
    return rows
