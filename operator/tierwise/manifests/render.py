"""The manifests API the controller and ``tierwise render`` call: spec in, objects out.

Pure: no client, no clock, no randomness, so the same ModelDeployment always renders to
the same objects (the controller's server-side apply is then a no-op when nothing
changed, and ``tierwise render`` output can be reviewed in Git).

Controller contract:
- :func:`render_model_deployment` returns plain dicts in a fixed order (Deployment,
  Service, then PodDisruptionBudget and PodMonitor when wanted), ready to apply.
- :func:`stale_children` names the children that must be deleted because the spec no
  longer wants them (the PDB once ``replicas.max`` drops to 1, the PodMonitor once
  disabled); :func:`child_identities` names the ones that should exist.
- :class:`RenderError` means the spec cannot be rendered (engine args that collide with
  fields Tierwise manages): a permanent error, reported on the ``spec.engine.args[i]``
  paths it carries; retrying cannot help.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from tierwise.api.model_deployment import ModelDeployment
from tierwise.engines.base import ArgIssue
from tierwise.engines.registry import engine_for
from tierwise.manifests import model_source
from tierwise.manifests.labels import selector_string
from tierwise.manifests.objects import (
    CHILD_KINDS,
    DEPLOYMENT,
    PDB,
    POD_MONITOR,
    SERVICE,
    child_name,
    deployment,
    pod_disruption_budget,
    pod_monitor,
    service,
)
from tierwise.manifests.settings import RenderSettings

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


@dataclass(frozen=True)
class ChildRef:
    """One child object's identity: what a delete or a get needs."""

    api_version: str
    kind: str
    name: str


class RenderError(ValueError):
    """The spec is valid YAML for the CRD but cannot become a working pod."""

    def __init__(self, issues: list[ArgIssue]) -> None:
        super().__init__("; ".join(str(i) for i in issues))
        self.issues = issues


def _wanted_kinds(md: ModelDeployment) -> list[tuple[str, str]]:
    wanted = [DEPLOYMENT, SERVICE]
    if md.spec.replicas.max > 1:
        wanted.append(PDB)
    if md.spec.monitoring.pod_monitor:
        wanted.append(POD_MONITOR)
    return wanted


def child_identities(md: ModelDeployment) -> list[ChildRef]:
    """The children :func:`render_model_deployment` produces for this spec, in order."""
    return [ChildRef(*kind, child_name(md, kind)) for kind in _wanted_kinds(md)]


def stale_children(md: ModelDeployment) -> list[ChildRef]:
    """Children a previous spec may have created that this spec no longer wants."""
    wanted = set(_wanted_kinds(md))
    return [ChildRef(*k, child_name(md, k)) for k in CHILD_KINDS if k not in wanted]


def endpoint_url(md: ModelDeployment) -> str:
    """In-cluster base URL of the OpenAI-compatible API (for ``status.endpoint``)."""
    engine = engine_for(md.spec.engine.name)
    host = child_name(md, SERVICE)
    if md.metadata.namespace:
        host = f"{host}.{md.metadata.namespace}.svc"
    return f"http://{host}:{engine.port}/v1"


def render_model_deployment(
    md: ModelDeployment,
    *,
    replicas: int | None = None,
    owner_uid: str | None = None,
    settings: RenderSettings | None = None,
) -> list[dict[str, Any]]:
    """Every child object of ``md``, as the operator applies them.

    ``replicas``: the count the controller decided; ``None`` leaves ``spec.replicas`` out of
    the Deployment (see :mod:`tierwise.manifests.objects`). ``owner_uid``: the
    ModelDeployment's ``metadata.uid``; ``None`` (offline) omits owner references.
    """
    settings = settings or RenderSettings()
    engine = engine_for(md.spec.engine.name)
    issues = engine.check_args(md.spec.engine.args)
    if issues:
        raise RenderError(issues)
    location = model_source.resolve(md, settings)
    out = [
        deployment(md, engine, location, replicas=replicas, owner_uid=owner_uid, settings=settings),
        service(md, engine, owner_uid),
    ]
    kinds = _wanted_kinds(md)
    if PDB in kinds:
        out.append(pod_disruption_budget(md, owner_uid))
    if POD_MONITOR in kinds:
        out.append(pod_monitor(md, engine, owner_uid, settings))
    return out
