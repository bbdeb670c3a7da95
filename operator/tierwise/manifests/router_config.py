"""A RoutingPolicy plus the ModelDeployments it names → the router's policy document.

Why it exists: the operator (into the policy's ConfigMap) and ``tierwise router --policy``
(locally, from files) must hand the router the same document, built the same way. Pure:
the same inputs give the same document and the same version, so the operator's write is
skipped when nothing changed.
"""

from __future__ import annotations

from collections.abc import Mapping

from tierwise.api.model_deployment import ModelDeployment
from tierwise.api.router_config import (
    DEFAULT_SECRETS_DIR,
    BackendInfo,
    PolicyRef,
    RouterConfig,
    with_version,
)
from tierwise.api.routing_policy import RoutingPolicy
from tierwise.manifests.labels import service_name
from tierwise.manifests.pod import PORT_NAME


def named_model_deployments(policy: RoutingPolicy) -> list[str]:
    """Every ModelDeployment the policy names, sorted, once each."""
    return sorted(
        {
            backend.model_deployment
            for tier in policy.spec.tiers
            for backend in tier.backends
            if backend.model_deployment is not None
        }
    )


def backend_info(md: ModelDeployment) -> BackendInfo:
    """Every engine's Service serves the OpenAI API on the port named ``PORT_NAME``."""
    return BackendInfo(
        service=service_name(md.metadata.name),
        port_name=PORT_NAME,
        served_model_name=md.served_model_name,
        gpus_per_replica=md.spec.gpus_per_replica,
        cost=md.spec.cost,
    )


def router_config(
    policy: RoutingPolicy,
    deployments: Mapping[str, ModelDeployment],
    *,
    secrets_dir: str = DEFAULT_SECRETS_DIR,
    report_missing: bool = True,
) -> RouterConfig:
    """The policy document for ``policy`` (``deployments``: ModelDeployments by name; those
    the policy names but that are absent are listed in ``missing``, which tells routers not
    to hold requests for them). ``report_missing=False`` when ``deployments`` is not the
    whole truth (local files may leave ModelDeployments out)."""
    names = named_model_deployments(policy)
    meta = policy.metadata
    config = RouterConfig(
        policy=PolicyRef(
            name=meta.name, namespace=meta.namespace or "default", generation=meta.generation
        ),
        secrets_dir=secrets_dir.rstrip("/") or "/",
        spec=policy.spec,
        backends={n: backend_info(deployments[n]) for n in names if n in deployments},
        missing=[n for n in names if n not in deployments] if report_missing else [],
    )
    return with_version(config)
