"""The reconcile, as a pure function: a ModelDeployment and what exists → a :class:`Plan`.

Create, update, resume and every change of a child all come here; nothing is driven by
``status.phase``. The plan lists the objects to apply (server-side apply, field manager
``tierwise``), the children to delete, the status to write and the events to post —
each only when it would change something, so planning twice against the same cluster
yields an empty plan.

Replicas ownership (``spec.replicas`` of the Deployment):

* autoscaling disabled — the operator owns it: ``replicas.target``, else ``replicas.min``;
* mode ``external`` — an HPA/KEDA owns it through the scale subresource; never set;
* modes ``tierwise`` and ``advisory`` — the Deployment is created with ``replicas.min``,
  and the same value is applied at once under the autoscaler's field manager
  (``tierwise-autoscaler``), so later applies by ``tierwise`` leave it alone. When
  autoscaling is switched on for an existing Deployment, its current count is handed over
  the same way *before* ``tierwise`` applies without the field: otherwise the API server
  would remove the field nobody owns any more and reset it to 1.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any, Protocol

from tierwise.api.model_deployment import AutoscalingMode, ModelDeployment, Phase
from tierwise.controller import checks
from tierwise.controller.children import Identity, identity_of, unwanted, up_to_date, with_hash
from tierwise.controller.kstatus import kstatus_conditions
from tierwise.controller.status import (
    ConditionLike,
    Health,
    Problem,
    Reason,
    conditions_of,
    deployment_health,
    phase_of,
    render_conditions,
)
from tierwise.manifests import RenderError, endpoint_url, selector_string

FIELD_MANAGER = "tierwise"
AUTOSCALER_FIELD_MANAGER = "tierwise-autoscaler"
MISSING_REFERENCE_RETRY_S = 30.0
_BAD_PHASES = frozenset({Phase.DEGRADED, Phase.FAILED})
STALLED = frozenset({Reason.INVALID_SPEC, Reason.PODS_FAILING, Reason.ROLLOUT_FAILED})
"""Degraded reasons that need a person (kstatus Stalled); the rest heal by waiting."""
SETTLED = frozenset({Reason.SCALED_TO_ZERO})
"""Ready False reasons that are a goal state, not work in progress."""


class Render(Protocol):
    """The manifests renderer: a validated spec → child objects (plain dicts)."""

    def __call__(
        self, md: ModelDeployment, *, owner_uid: str | None, replicas: int | None
    ) -> list[dict[str, Any]]: ...


class Outcome(StrEnum):
    OK = "ok"
    INVALID = "invalid"
    WAITING = "waiting"
    ERROR = "error"


class EventType(StrEnum):
    NORMAL = "Normal"
    WARNING = "Warning"


@dataclass(frozen=True)
class Apply:
    obj: dict[str, Any]
    manager: str = FIELD_MANAGER
    created: bool = False


@dataclass(frozen=True)
class Note:
    """A Kubernetes event about the ModelDeployment."""

    type: EventType
    reason: str
    message: str


@dataclass(frozen=True)
class Observed:
    """What exists in the namespace for one ModelDeployment."""

    children: Mapping[Identity, Mapping[str, Any]] = field(default_factory=dict)
    pods: Sequence[Mapping[str, Any]] = ()
    missing: frozenset[Identity] = frozenset()
    """Referenced Secrets and claims that were looked up and not found."""


@dataclass(frozen=True)
class Plan:
    applies: tuple[Apply, ...] = ()
    deletes: tuple[Identity, ...] = ()
    status: dict[str, Any] | None = None
    """The status fields to merge-patch, or None when status is already right."""
    events: tuple[Note, ...] = ()
    outcome: Outcome = Outcome.OK
    retry_after: float | None = None
    problems: tuple[Problem, ...] = ()

    @property
    def writes(self) -> int:
        return len(self.applies) + len(self.deletes) + (self.status is not None) + len(self.events)


def replicas_for(md: ModelDeployment, *, deployment_exists: bool) -> int | None:
    """Replicas the operator applies, or None when someone else owns them."""
    scaling, bounds = md.spec.autoscaling, md.spec.replicas
    if not scaling.enabled:
        return bounds.target if bounds.target is not None else bounds.min
    if scaling.mode is AutoscalingMode.EXTERNAL or deployment_exists:
        return None
    return bounds.min


def plan_reconcile(
    body: Mapping[str, Any], observed: Observed, *, render: Render, now: datetime
) -> Plan:
    """Everything one reconcile should do; see the module docs."""
    md, problems = checks.parse(body)
    if md is None:
        return _status_only(body, observed, problems, outcome=Outcome.INVALID, now=now)
    problems = checks.missing_problems(checks.references(md), observed.missing)
    if problems:
        return _status_only(body, observed, problems, outcome=Outcome.WAITING, now=now)
    deployment = _observed_deployment(observed)
    replicas = replicas_for(md, deployment_exists=deployment is not None)
    owner_uid = (body.get("metadata") or {}).get("uid")
    try:
        rendered = render(md, owner_uid=owner_uid, replicas=replicas)
    except RenderError as error:
        problems = [Problem(i.path, i.message) for i in error.issues]
        return _status_only(body, observed, problems, outcome=Outcome.INVALID, now=now)
    desired = [with_hash(obj) for obj in rendered]
    applies = [
        Apply(obj, created=identity_of(obj) not in observed.children)
        for obj in desired
        if not up_to_date(obj, observed.children.get(identity_of(obj)))
    ]
    handoff = _handoff(md, replicas, deployment, desired)
    applies = applies + handoff if deployment is None else handoff + applies
    deletes = unwanted(observed.children, (identity_of(o) for o in desired), owner_uid)
    status = _status(md, body, observed, replicas=replicas, now=now)
    events = change_notes(applies, deletes) + _status_notes(body, status, [])
    return Plan(
        applies=tuple(applies),
        deletes=tuple(deletes),
        status=changed_status(body, status),
        events=tuple(events),
    )


def _observed_deployment(observed: Observed) -> Mapping[str, Any] | None:
    found = [o for i, o in observed.children.items() if i.kind == "Deployment"]
    return found[0] if found else None


def _handoff(
    md: ModelDeployment,
    replicas: int | None,
    deployment: Mapping[str, Any] | None,
    desired: Sequence[Mapping[str, Any]],
) -> list[Apply]:
    """Give ``spec.replicas`` to the autoscaler's field manager: at creation, and on a
    Deployment whose replicas it does not own yet (autoscaling switched on later)."""
    scaling = md.spec.autoscaling
    if not scaling.enabled or scaling.mode is AutoscalingMode.EXTERNAL:
        return []
    if deployment is not None:
        current = (deployment.get("spec") or {}).get("replicas")
        owned = autoscaler_owns_replicas(deployment)
        replicas = current if owned is False and isinstance(current, int) else None
    if replicas is None:
        return []
    return [
        Apply(
            {
                "apiVersion": obj["apiVersion"],
                "kind": "Deployment",
                "metadata": {"name": obj["metadata"]["name"], "namespace": md.metadata.namespace},
                "spec": {"replicas": replicas},
            },
            manager=AUTOSCALER_FIELD_MANAGER,
        )
        for obj in desired
        if obj.get("kind") == "Deployment"
    ]


def autoscaler_owns_replicas(deployment: Mapping[str, Any]) -> bool | None:
    """Whether ``tierwise-autoscaler`` owns ``spec.replicas`` by its ``managedFields``;
    None when the object carries none (a server or cache that drops them: unknown)."""
    entries = (deployment.get("metadata") or {}).get("managedFields")
    if not entries:
        return None
    return any(
        e.get("manager") == AUTOSCALER_FIELD_MANAGER
        and "f:replicas" in ((e.get("fieldsV1") or {}).get("f:spec") or {})
        for e in entries
    )


def change_notes(applies: Sequence[Apply], deletes: Sequence[Identity]) -> list[Note]:
    """One event per kind of change (created, updated, deleted), naming every object."""
    ours = [a for a in applies if a.manager == FIELD_MANAGER]
    groups = (
        ("Created", [identity_of(a.obj) for a in ours if a.created]),
        ("Updated", [identity_of(a.obj) for a in ours if not a.created]),
        ("Deleted", list(deletes)),
    )
    return [
        Note(EventType.NORMAL, reason, f"{reason.lower()} " + ", ".join(map(str, idents)))
        for reason, idents in groups
        if idents
    ]


def _status(
    md: ModelDeployment,
    body: Mapping[str, Any],
    observed: Observed,
    *,
    replicas: int | None,
    now: datetime,
) -> dict[str, Any]:
    health = deployment_health(_observed_deployment(observed), observed.pods)
    target = replicas if replicas is not None else health.desired
    if target is not None and health.exists:
        health = dataclasses.replace(health, desired=target)
    status = _base_status(body, health, [], now=now)
    status.update(
        desiredReplicas=target,
        selector=selector_string(md),
        endpoint=endpoint_url(md),
        servedModelName=md.served_model_name,
    )
    return status


def _base_status(
    body: Mapping[str, Any], health: Health, problems: Sequence[Problem], *, now: datetime
) -> dict[str, Any]:
    phase = phase_of(health, problems)
    generation = (body.get("metadata") or {}).get("generation")
    previous = (body.get("status") or {}).get("conditions") or []
    values: list[ConditionLike] = [*conditions_of(health, phase, problems)]
    values += kstatus_conditions(values, stalled_reasons=STALLED, settled_reasons=SETTLED)
    return {
        "observedGeneration": generation,
        "phase": phase.value,
        "replicas": health.replicas,
        "readyReplicas": health.ready,
        "conditions": render_conditions(values, previous, generation=generation, now=now),
    }


def _status_only(
    body: Mapping[str, Any],
    observed: Observed,
    problems: list[Problem],
    *,
    outcome: Outcome,
    now: datetime,
) -> Plan:
    """A spec problem: report it on status and in an event, touch no child."""
    health = deployment_health(_observed_deployment(observed), observed.pods)
    status = _base_status(body, health, problems, now=now)
    retry = MISSING_REFERENCE_RETRY_S if outcome is Outcome.WAITING else None
    return Plan(
        status=changed_status(body, status),
        events=tuple(_status_notes(body, status, problems)),
        outcome=outcome,
        retry_after=retry,
        problems=tuple(problems),
    )


def _status_notes(
    body: Mapping[str, Any], status: Mapping[str, Any], problems: Sequence[Problem]
) -> list[Note]:
    """Events for a phase change and for a newly reported spec problem."""
    old = body.get("status") or {}
    notes: list[Note] = []
    old_degraded = _condition(old, "Degraded")
    new_degraded = _condition(status, "Degraded")
    if problems and (old_degraded or {}).get("message") != (new_degraded or {}).get("message"):
        reason = problems[0].reason
        notes.append(Note(EventType.WARNING, reason.value, "; ".join(map(str, problems))))
    if old.get("phase") != status["phase"]:
        bad = Phase(status["phase"]) in _BAD_PHASES
        message = f"phase {old.get('phase') or 'none'} -> {status['phase']}"
        if bad and new_degraded and new_degraded.get("message"):
            message += f": {new_degraded['message']}"
        notes.append(Note(EventType.WARNING if bad else EventType.NORMAL, "PhaseChanged", message))
    return notes


def _condition(status: Mapping[str, Any], kind: str) -> Mapping[str, Any] | None:
    for cond in status.get("conditions") or []:
        if cond.get("type") == kind:
            found: Mapping[str, Any] = cond
            return found
    return None


def changed_status(body: Mapping[str, Any], status: Mapping[str, Any]) -> dict[str, Any] | None:
    """The status patch, or None when the object already shows exactly this."""
    old = body.get("status") or {}
    if all(old.get(k) == v for k, v in status.items()):
        return None
    return dict(status)
