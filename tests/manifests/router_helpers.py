"""Shared by the router manifests tests: example inputs, settings, generated policies and pods."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from hypothesis import strategies as st
from render_helpers import HERE

from tierwise.api.documents import expand_paths, validate_document
from tierwise.api.model_deployment import ModelDeployment
from tierwise.api.routing_policy import RoutingPolicy
from tierwise.manifests.router import RouterRenderSettings, render_routing_policy
from tierwise.manifests.router_config import router_config

EXAMPLES = HERE.parent.parent / "examples"
ROUTER_INPUTS = HERE / "router_inputs"
ROUTER_GOLDEN = HERE / "golden" / "router"
GOLDEN_SETTINGS = RouterRenderSettings(image="ghcr.io/tierwise/tierwise:golden")
"""A fixed image, so golden files do not change with every release's version."""
ROUTER_KINDS = [
    "ConfigMap",
    "ServiceAccount",
    "Role",
    "RoleBinding",
    "Deployment",
    "Service",
    "PodDisruptionBudget",
    "PodMonitor",
]
"""Every kind a gateway policy renders, in order, when all are wanted."""
OWNER_UID = "5f0c2b8e-8d2a-4a53-9d1e-0b7f1d2c3e4f"
CANARY = "sk-canary-5d41402abc4b2a76b9719d911017c592"
"""A made-up API key; no rendered object may ever contain it."""


@dataclass
class Inputs:
    """The documents of a folder or file: ModelDeployments, RoutingPolicies, other objects."""

    deployments: list[ModelDeployment] = field(default_factory=list)
    policies: list[RoutingPolicy] = field(default_factory=list)
    others: list[dict[str, Any]] = field(default_factory=list)

    @property
    def policy(self) -> RoutingPolicy:
        (rp,) = self.policies
        return rp

    @property
    def pods(self) -> list[dict[str, Any]]:
        return [o for o in self.others if o.get("kind") == "Pod"]

    def render(self, **kwargs: Any) -> list[dict[str, Any]]:
        rp = self.policy
        by_name = {md.metadata.name: md for md in self.deployments}
        settings = kwargs.setdefault("settings", GOLDEN_SETTINGS)
        config = router_config(rp, by_name, secrets_dir=settings.secrets_dir)
        return render_routing_policy(rp, config, **kwargs)


def load_inputs(path: Path) -> Inputs:
    out = Inputs()
    for file in expand_paths([str(path)]):
        for raw in yaml.safe_load_all(file.read_text(encoding="utf-8")):
            if not raw:
                continue
            doc = validate_document(raw, source=str(file))
            assert doc.ok, doc.issues
            if isinstance(doc.resource, ModelDeployment):
                out.deployments.append(doc.resource)
            elif isinstance(doc.resource, RoutingPolicy):
                out.policies.append(doc.resource)
            else:
                out.others.append(raw)
    return out


GOLDEN_CASES: dict[str, tuple[Path, dict[str, Any]]] = {
    "00-demo": (EXAMPLES / "00-demo", {}),
    "03-three-tier-routing": (
        EXAMPLES / "03-three-tier-routing",
        {
            "owner_uid": OWNER_UID,
            "settings": RouterRenderSettings(
                image="ghcr.io/tierwise/tierwise:golden", pod_monitor=True
            ),
        },
    ),
    "sidecar": (ROUTER_INPUTS / "sidecar.yaml", {"sidecar_service_accounts": ["web", "batch"]}),
}


def by_kind(objects: list[dict[str, Any]], kind: str) -> dict[str, Any]:
    (obj,) = [o for o in objects if o["kind"] == kind]
    return obj


# -- generated policies -------------------------------------------------------------------

_SECRET_NAMES = st.sampled_from(
    ["provider-key", "keys.v2", "a", "team.example.com", "s" * 90 + ".long", "k" * 250]
)
_KEYS = st.sampled_from(["api-key", "primary", "secondary", "KEY_1", "key.txt"])
_POLICY_NAMES = st.from_regex(
    r"[a-z0-9]([-a-z0-9]{0,80}[a-z0-9])?(\.[a-z0-9]{1,5})?", fullmatch=True
)


def _secret_ref(draw: st.DrawFn) -> dict[str, str]:
    return {"name": draw(_SECRET_NAMES), "key": draw(_KEYS)}


@st.composite
def routing_policy_docs(draw: st.DrawFn) -> dict[str, Any]:
    """Raw RoutingPolicy documents: both modes, ModelDeployment and external backends,
    shared and distinct Secrets, client auth or not, every Service type."""
    tiers = []
    for index in range(draw(st.integers(1, 4))):
        backends: list[dict[str, Any]] = []
        for slot in range(draw(st.integers(1, 3))):
            if draw(st.booleans()):
                backends.append({"modelDeployment": f"md-{index}-{slot}"})
            else:
                external = {
                    "baseURL": "https://api.example.com/v1",
                    "model": f"model-{index}-{slot}",
                    "apiKeySecretRef": _secret_ref(draw),
                }
                backends.append({"external": external})
        tiers.append({"name": f"tier-{index}", "backends": backends})
    router: dict[str, Any] = {
        "mode": draw(st.sampled_from(["gateway", "sidecar"])),
        "replicas": draw(st.integers(1, 5)),
        "port": draw(st.integers(1024, 65535)),
        "service": {
            "type": draw(st.sampled_from(["ClusterIP", "NodePort", "LoadBalancer"])),
            "port": draw(st.integers(1, 65535)),
        },
    }
    if draw(st.booleans()):
        router["image"] = "registry.example.com/router:custom"
    if draw(st.booleans()):
        router["auth"] = {"apiKeysSecretRef": _secret_ref(draw)}
    metadata: dict[str, Any] = {"name": draw(_POLICY_NAMES)}
    if draw(st.booleans()):
        metadata["namespace"] = "llm"
    return {
        "apiVersion": "tierwise.dev/v1alpha1",
        "kind": "RoutingPolicy",
        "metadata": metadata,
        "spec": {"tiers": tiers, "router": router},
    }


def routing_policies() -> st.SearchStrategy[RoutingPolicy]:
    return routing_policy_docs().map(RoutingPolicy.model_validate)


def policies_in(mode: str) -> st.SearchStrategy[RoutingPolicy]:
    """Generated policies, all in ``mode`` (gateway or sidecar)."""

    def with_mode(doc: dict[str, Any]) -> RoutingPolicy:
        doc["spec"]["router"]["mode"] = mode
        return RoutingPolicy.model_validate(doc)

    return routing_policy_docs().map(with_mode)


def referenced(rp: RoutingPolicy) -> dict[str, set[str]]:
    """Secret name -> keys, computed independently of the code under test."""
    out: dict[str, set[str]] = {}
    for tier in rp.spec.tiers:
        for backend in tier.backends:
            if backend.external is not None:
                ref = backend.external.api_key_secret_ref
                out.setdefault(ref.name, set()).add(ref.key)
    if rp.spec.router.auth is not None:
        ref = rp.spec.router.auth.api_keys_secret_ref
        out.setdefault(ref.name, set()).add(ref.key)
    return out


# -- generated application pods -----------------------------------------------------------

TOKEN_PATH = "/var/run/secrets/kubernetes.io/serviceaccount"
_TEXT = st.text(alphabet=st.characters(codec="utf-8", exclude_categories=("Cs", "Cc")), max_size=12)


@st.composite
def _container(draw: st.DrawFn, name: str, volumes: list[str]) -> dict[str, Any]:
    container: dict[str, Any] = {"name": name, "image": f"registry.example.com/{name}:1"}
    if draw(st.booleans()):
        container["ports"] = [{"name": "http", "containerPort": draw(st.integers(1, 1023))}]
    if draw(st.booleans()):
        container["env"] = [{"name": "NOTE", "value": draw(_TEXT)}]
    mounts = [{"name": v, "mountPath": f"/data/{v}"} for v in volumes if draw(st.booleans())]
    if mounts:
        container["volumeMounts"] = mounts
    return container


@st.composite
def app_pods(draw: st.DrawFn, policy: str) -> dict[str, Any]:
    """Application pods labelled for ``policy``: init containers or not, volumes, token
    automount on, off or unset, the token already mounted (as admission does) or not."""
    volumes = [f"data-{i}" for i in range(draw(st.integers(0, 2)))]
    spec: dict[str, Any] = {
        "containers": [
            draw(_container(f"app-{i}", volumes)) for i in range(draw(st.integers(1, 3)))
        ],
    }
    if draw(st.booleans()):
        spec["initContainers"] = [draw(_container("setup", volumes))]
    automount = draw(st.sampled_from([None, True, False]))
    if automount is not None:
        spec["automountServiceAccountToken"] = automount
    if draw(st.booleans()):
        spec["serviceAccountName"] = "app"
    pod_volumes: list[dict[str, Any]] = [{"name": v, "emptyDir": {}} for v in volumes]
    if automount is not False and draw(st.booleans()):
        pod_volumes.append({"name": "kube-api-access-abcde", "projected": {"sources": []}})
        for container in spec["containers"]:
            container.setdefault("volumeMounts", []).append(
                {"name": "kube-api-access-abcde", "mountPath": TOKEN_PATH, "readOnly": True}
            )
    if pod_volumes:
        spec["volumes"] = pod_volumes
    labels = {
        "tierwise.dev/routing-policy": policy,
        "app": draw(st.sampled_from(["web", "worker"])),
    }
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"generateName": "app-", "labels": labels},
        "spec": spec,
    }
