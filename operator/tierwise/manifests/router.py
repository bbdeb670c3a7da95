"""The manifests API for a RoutingPolicy's router: policy in, objects out.

Pure: no client, no clock, no randomness, so the same inputs always render the same objects
and the controller's server-side apply is a no-op when nothing changed.

Controller contract:
- :func:`render_routing_policy` returns plain dicts in a fixed order, ready to apply.
  Gateway mode: ConfigMap, ServiceAccount, Role, RoleBinding, Deployment, Service, then the
  PodDisruptionBudget (replicas > 1) and the PodMonitor (``settings.pod_monitor``). Sidecar
  mode: ConfigMap, Role, and a RoleBinding for the ServiceAccounts of the injected pods
  (none when there are none); the router itself is injected into application pods by
  :func:`tierwise.manifests.sidecar.inject_sidecar`.
- :func:`router_object_names` names what should exist; :func:`stale_router_objects` what a
  previous spec may have created and this one no longer wants (the PDB once replicas drop
  to 1, every gateway-only object once the mode is sidecar, the PodMonitor once the CRD is
  gone: deleting a kind whose CRD does not exist answers 404, which means done).

Rolling: the pod template carries ``tierwise.dev/startup-checksum``, a hash of what the router
reads only at startup (see :func:`tierwise.manifests.router_pod.startup_checksum`). The policy
document is not part of it, nor of the pod template at all: the router watches its ConfigMap
and swaps the table atomically without dropping a request, so a new document (a tier, a
rule, a price, a ModelDeployment appearing) reaches every router in about a second and rolls
no pod. A pod restart would cost in-flight streams, prefix-cache affinity and the classifier's
warm-up for nothing.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from tierwise.api.router_config import RouterConfig
from tierwise.api.routing_policy import RouterMode, RoutingPolicy
from tierwise.manifests.objects import DEPLOYMENT, PDB, POD_MONITOR, SERVICE
from tierwise.manifests.render import ChildRef
from tierwise.manifests.router_names import router_endpoint_url, router_service_name
from tierwise.manifests.router_objects import (
    CONFIG_MAP,
    ROLE,
    ROLE_BINDING,
    ROUTER_KINDS,
    SERVICE_ACCOUNT,
    config_map,
    deployment,
    object_name,
    pod_disruption_budget,
    pod_monitor,
    role,
    role_binding,
    service,
    service_account,
)
from tierwise.manifests.router_pod import secrets_dir
from tierwise.manifests.router_settings import RouterRenderSettings

__all__ = [
    "RouterRenderSettings",
    "render_routing_policy",
    "router_endpoint_url",
    "router_object_names",
    "router_service_name",
    "stale_router_objects",
]


def _wanted_kinds(
    rp: RoutingPolicy, settings: RouterRenderSettings, service_accounts: tuple[str, ...]
) -> list[tuple[str, str]]:
    if rp.spec.router.mode == RouterMode.SIDECAR:
        return [CONFIG_MAP, ROLE, *([ROLE_BINDING] if service_accounts else [])]
    wanted = [CONFIG_MAP, SERVICE_ACCOUNT, ROLE, ROLE_BINDING, DEPLOYMENT, SERVICE]
    if rp.spec.router.replicas > 1:
        wanted.append(PDB)
    if settings.pod_monitor:
        wanted.append(POD_MONITOR)
    return wanted


def router_object_names(
    rp: RoutingPolicy,
    *,
    settings: RouterRenderSettings | None = None,
    sidecar_service_accounts: Iterable[str] = (),
) -> list[ChildRef]:
    """The objects :func:`render_routing_policy` produces for these inputs, in order."""
    kinds = _wanted_kinds(rp, settings or RouterRenderSettings(), tuple(sidecar_service_accounts))
    return [ChildRef(*kind, object_name(rp, kind)) for kind in kinds]


def stale_router_objects(
    rp: RoutingPolicy,
    *,
    settings: RouterRenderSettings | None = None,
    sidecar_service_accounts: Iterable[str] = (),
) -> list[ChildRef]:
    """Router objects an earlier spec (or settings) may have created that these no longer
    want; the controller deletes them (absent ones are fine)."""
    wanted = set(
        _wanted_kinds(rp, settings or RouterRenderSettings(), tuple(sidecar_service_accounts))
    )
    return [ChildRef(*k, object_name(rp, k)) for k in ROUTER_KINDS if k not in wanted]


def _check_config(rp: RoutingPolicy, config: RouterConfig, settings: RouterRenderSettings) -> None:
    """The document must come from this policy and name the folder the Secrets are mounted
    in; a mismatch is a caller's bug that would send every external tier a missing key."""
    if config.policy.name != rp.metadata.name:
        raise ValueError(
            f"policy document is for RoutingPolicy {config.policy.name!r}, not {rp.metadata.name!r}"
        )
    if config.secrets_dir != secrets_dir(settings):
        raise ValueError(
            f"policy document's secretsDir {config.secrets_dir!r} differs from the router's "
            f"{secrets_dir(settings)!r}; build it with router_config(..., "
            "secrets_dir=settings.secrets_dir)"
        )


def render_routing_policy(
    rp: RoutingPolicy,
    config: RouterConfig,
    *,
    settings: RouterRenderSettings | None = None,
    owner_uid: str | None = None,
    sidecar_service_accounts: Iterable[str] = (),
) -> list[dict[str, Any]]:
    """Every router object of ``rp``, as the operator applies them.

    ``config``: the policy document (:func:`tierwise.manifests.router_config.router_config`).
    ``owner_uid``: the policy's ``metadata.uid``; ``None`` (offline) omits owner references.
    ``sidecar_service_accounts``: in sidecar mode, the ServiceAccounts of the pods the router
    is injected into (ignored in gateway mode, where the router has its own).
    Raises ``ValueError`` when ``config`` does not belong to ``rp`` and ``settings``.
    """
    chosen = settings or RouterRenderSettings()
    _check_config(rp, config, chosen)
    accounts = tuple(sidecar_service_accounts)
    builders = {
        CONFIG_MAP: lambda: config_map(rp, config, owner_uid),
        SERVICE_ACCOUNT: lambda: service_account(rp, owner_uid),
        ROLE: lambda: role(rp, owner_uid),
        ROLE_BINDING: lambda: role_binding(rp, _subjects(rp, accounts), owner_uid),
        DEPLOYMENT: lambda: deployment(rp, chosen, owner_uid),
        SERVICE: lambda: service(rp, owner_uid),
        PDB: lambda: pod_disruption_budget(rp, owner_uid),
        POD_MONITOR: lambda: pod_monitor(rp, chosen, owner_uid),
    }
    return [builders[kind]() for kind in _wanted_kinds(rp, chosen, accounts)]


def _subjects(rp: RoutingPolicy, accounts: tuple[str, ...]) -> tuple[str, ...]:
    if rp.spec.router.mode == RouterMode.SIDECAR:
        return accounts
    return (object_name(rp, SERVICE_ACCOUNT),)
