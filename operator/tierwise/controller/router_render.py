"""The router manifests, bound to the operator's render settings.

Why it exists: the policy plan (:mod:`.policy_plan`) is pure and takes a
:class:`~tierwise.controller.policy_plan.RouterRender`; this is the production one, built
once per operator run from its settings (the router image above all), with the one fact a
reconcile observes (whether the PodMonitor kind is served) passed per call.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from typing import Any

from tierwise.api.router_config import RouterConfig
from tierwise.api.routing_policy import RoutingPolicy
from tierwise.manifests import (
    RouterRenderSettings,
    inject_sidecar,
    render_routing_policy,
    router_endpoint_url,
)


@dataclasses.dataclass(frozen=True)
class ManifestRouterRender:
    settings: RouterRenderSettings = dataclasses.field(default_factory=RouterRenderSettings)

    @property
    def secrets_dir(self) -> str:
        return self.settings.secrets_dir

    def objects(
        self,
        rp: RoutingPolicy,
        config: RouterConfig,
        *,
        owner_uid: str | None,
        sidecar_service_accounts: Sequence[str],
        pod_monitor: bool,
    ) -> list[dict[str, Any]]:
        settings = dataclasses.replace(self.settings, pod_monitor=pod_monitor)
        return render_routing_policy(
            rp,
            config,
            settings=settings,
            owner_uid=owner_uid,
            sidecar_service_accounts=sidecar_service_accounts,
        )

    def endpoint(self, rp: RoutingPolicy) -> str:
        return router_endpoint_url(rp)

    def sidecar(self, pod: Mapping[str, Any], rp: RoutingPolicy) -> dict[str, Any] | None:
        return inject_sidecar(pod, rp, self.settings)
