"""Pure functions from validated custom resources to the Kubernetes objects that run them.

ModelDeployment: :func:`render_model_deployment`, :func:`child_identities`,
:func:`stale_children`, :func:`endpoint_url`, :func:`selector_string`, and
:class:`RenderSettings` for operator-wide choices.

RoutingPolicy: :func:`render_routing_policy`, :func:`router_object_names`,
:func:`stale_router_objects`, :func:`router_service_name`, :func:`router_endpoint_url`,
:class:`RouterRenderSettings`; sidecar mode: :func:`inject_sidecar`,
:func:`sidecar_container`, :func:`skip_reason`, :func:`pod_service_account`.
"""

from tierwise.manifests.render import (
    ChildRef,
    RenderError,
    RenderSettings,
    child_identities,
    endpoint_url,
    render_model_deployment,
    selector_string,
    stale_children,
)
from tierwise.manifests.router import (
    RouterRenderSettings,
    render_routing_policy,
    router_endpoint_url,
    router_object_names,
    router_service_name,
    stale_router_objects,
)
from tierwise.manifests.sidecar import (
    SkipReason,
    inject_sidecar,
    pod_service_account,
    sidecar_container,
    skip_reason,
)

__all__ = [
    "ChildRef",
    "RenderError",
    "RenderSettings",
    "RouterRenderSettings",
    "SkipReason",
    "child_identities",
    "endpoint_url",
    "inject_sidecar",
    "pod_service_account",
    "render_model_deployment",
    "render_routing_policy",
    "router_endpoint_url",
    "router_object_names",
    "router_service_name",
    "selector_string",
    "sidecar_container",
    "skip_reason",
    "stale_children",
    "stale_router_objects",
]
