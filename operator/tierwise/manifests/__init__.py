"""Pure functions from a validated ModelDeployment to the Kubernetes objects that run it.

Entry points: :func:`render_model_deployment`, :func:`child_identities`,
:func:`stale_children`, :func:`endpoint_url`, :func:`selector_string`, and
:class:`RenderSettings` for operator-wide choices.
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

__all__ = [
    "ChildRef",
    "RenderError",
    "RenderSettings",
    "child_identities",
    "endpoint_url",
    "render_model_deployment",
    "selector_string",
    "stale_children",
]
