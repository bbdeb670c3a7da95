"""Performing a :class:`~tierwise.controller.plan.Plan`: the only side effects of a reconcile.

Order matters little for correctness (everything is idempotent), but it is chosen so a
failure half-way leaves the most useful state: children first, then deletions, then the
status that describes them, then events. Events are best-effort: a failure to post one
is logged, never a reason to retry the reconcile.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import aiohttp

from tierwise.controller.kube import ApiError, KubeClient
from tierwise.controller.plan import Plan
from tierwise.controller.resources import MODEL_DEPLOYMENT, Resource, resource_for_kind

if TYPE_CHECKING:
    from tierwise.controller.cluster_view import ClusterView

log = logging.getLogger(__name__)


async def execute(
    plan: Plan,
    kube: KubeClient,
    owner: Mapping[str, Any],
    *,
    kind: Resource = MODEL_DEPLOYMENT,
    view: ClusterView | None = None,
) -> None:
    """Apply, delete, patch status (of ``owner``, a ``kind``) and post events as planned;
    what was applied or deleted goes into ``view`` at once (its watch reports it later), so
    a reconcile right after this one does not apply it again."""
    meta = owner["metadata"]
    namespace, name = meta["namespace"], meta["name"]
    for apply in plan.applies:
        obj = {**apply.obj, "metadata": {**apply.obj["metadata"], "namespace": namespace}}
        written = await kube.apply(obj, manager=apply.manager)
        if view is not None:
            view.note({"apiVersion": obj["apiVersion"], "kind": obj["kind"], **written})
    for ident in plan.deletes:
        await kube.delete(resource_for_kind(ident.kind), namespace, ident.name)
        if view is not None:
            view.note_deleted(ident.kind, namespace, ident.name)
    if plan.status is not None:
        await kube.patch_status(kind, namespace, name, plan.status)
    for note in plan.events:
        try:
            await kube.post_event(
                owner, type=note.type.value, reason=note.reason, message=note.message
            )
        except (ApiError, aiohttp.ClientError, OSError) as error:
            log.warning("could not post event %s on %s/%s: %s", note.reason, namespace, name, error)
