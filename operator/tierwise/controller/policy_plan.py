"""The RoutingPolicy reconcile as a pure function: a policy and what exists → a :class:`Plan`.

Why it exists: the same plan-then-execute shape as ModelDeployments (:mod:`.plan`), so one
executor performs both and a second reconcile against an unchanged cluster plans nothing.
The plan renders the policy document (:mod:`tierwise.manifests.router_config`) from the
policy and the ModelDeployments it names, then the router objects around it, and applies
only what differs from what exists (the ConfigMap is written only when the document
changed). Status comes from :mod:`.policy_status`; a ``TableChanged`` event names the old
and new document version.

An invalid spec (a cluster whose CRD lets through what the models refuse) touches no child:
the routers keep the last good document and status says what to fix.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

from pydantic import ValidationError

from tierwise.api.errors import issues_from
from tierwise.api.model_deployment import ModelDeployment
from tierwise.api.router_config import RouterConfig
from tierwise.api.routing_policy import RoutingPolicy
from tierwise.controller.checks import essence
from tierwise.controller.children import Identity, identity_of, unwanted, up_to_date, with_hash
from tierwise.controller.kstatus import kstatus_conditions
from tierwise.controller.plan import (
    Apply,
    EventType,
    Note,
    Outcome,
    Plan,
    change_notes,
    changed_status,
)
from tierwise.controller.policy_status import (
    PolicyFacts,
    PolicyProblem,
    PolicyReason,
    RouterFacts,
    policy_conditions,
    ready_fraction,
    reference_problems,
    tier_statuses,
)
from tierwise.controller.status import ConditionLike, Problem, render_conditions
from tierwise.manifests.router_config import router_config

MISSING_REFERENCE_RETRY_S = 30.0
_RETRIED = frozenset({PolicyReason.MISSING_SECRET, PolicyReason.CLASSIFIER_UNAVAILABLE})
"""Problems no watch event ends (Secrets and ConfigMaps are not watched): retried after a
delay. A missing ModelDeployment is not: its creation wakes the policy."""
STALLED = frozenset(
    {PolicyReason.INVALID_SPEC, PolicyReason.NOT_INJECTED, PolicyReason.CLASSIFIER_UNAVAILABLE}
)
"""Degraded reasons that need a person (kstatus Stalled): a spec to fix, a pod to recreate,
a classifier artefact to apply."""
TABLE_CHANGED = "TableChanged"


class RouterRender(Protocol):
    """The router manifests: objects a policy wants, and the URL its clients call."""

    @property
    def secrets_dir(self) -> str:
        """Where the router's Secret volumes are mounted (the document names key files)."""
        ...

    def objects(
        self,
        rp: RoutingPolicy,
        config: RouterConfig,
        *,
        owner_uid: str | None,
        sidecar_service_accounts: Sequence[str],
        pod_monitor: bool,
    ) -> list[dict[str, Any]]: ...

    def endpoint(self, rp: RoutingPolicy) -> str: ...

    def sidecar(self, pod: Mapping[str, Any], rp: RoutingPolicy) -> dict[str, Any] | None:
        """The pod with the router injected, or None when it has it already."""
        ...


@dataclass(frozen=True)
class PolicyObserved:
    """What exists for one RoutingPolicy."""

    children: Mapping[Identity, Mapping[str, Any]] = field(default_factory=dict)
    deployments: Mapping[str, ModelDeployment] = field(default_factory=dict)
    """Valid ModelDeployments of the namespace by name (the document's backend facts)."""
    facts: PolicyFacts = field(
        default_factory=lambda: PolicyFacts(
            models={}, missing_secrets=frozenset(), router=RouterFacts()
        )
    )
    sidecar_service_accounts: tuple[str, ...] = ()
    """ServiceAccounts of the pods labelled for this policy (sidecar mode)."""
    pod_monitor: bool = False
    """Whether the cluster serves the Prometheus Operator's PodMonitor kind."""


def parse_policy(body: Mapping[str, Any]) -> tuple[RoutingPolicy | None, list[Problem]]:
    """The validated model, or the problems that make it invalid (never both)."""
    try:
        return RoutingPolicy.model_validate(essence(body)), []
    except ValidationError as error:
        return None, [Problem(i.path, i.message) for i in issues_from(error, RoutingPolicy)]


def plan_policy(
    body: Mapping[str, Any], observed: PolicyObserved, *, render: RouterRender, now: datetime
) -> Plan:
    """Everything one reconcile of a RoutingPolicy should do; see the module docs."""
    rp, invalid = parse_policy(body)
    if rp is None:
        problems = [PolicyProblem(p.field, p.message, PolicyReason.INVALID_SPEC) for p in invalid]
        status = _status(body, None, observed, problems, version=None, endpoint=None, now=now)
        return Plan(
            status=changed_status(body, status),
            events=tuple(_problem_notes(body, status, problems)),
            outcome=Outcome.INVALID,
            problems=tuple(invalid),
        )
    config = router_config(rp, observed.deployments, secrets_dir=render.secrets_dir)
    owner_uid = (body.get("metadata") or {}).get("uid")
    desired = [
        with_hash(obj)
        for obj in render.objects(
            rp,
            config,
            owner_uid=owner_uid,
            sidecar_service_accounts=observed.sidecar_service_accounts,
            pod_monitor=observed.pod_monitor,
        )
    ]
    applies = [
        Apply(obj, created=identity_of(obj) not in observed.children)
        for obj in desired
        if not up_to_date(obj, observed.children.get(identity_of(obj)))
    ]
    deletes = unwanted(observed.children, (identity_of(o) for o in desired), owner_uid)
    problems = reference_problems(rp, observed.facts)
    status = _status(
        body, rp, observed, problems, version=config.version, endpoint=render.endpoint(rp), now=now
    )
    events = change_notes(applies, deletes) + _table_note(body, config.version)
    events += _problem_notes(body, status, problems)
    missing = any(p.reason in _RETRIED for p in problems)
    return Plan(
        applies=tuple(applies),
        deletes=tuple(deletes),
        status=changed_status(body, status),
        events=tuple(events),
        outcome=Outcome.WAITING if missing else Outcome.OK,
        retry_after=MISSING_REFERENCE_RETRY_S if missing else None,
        problems=tuple(Problem(p.field, p.message) for p in problems),
    )


def _status(
    body: Mapping[str, Any],
    rp: RoutingPolicy | None,
    observed: PolicyObserved,
    problems: Sequence[PolicyProblem],
    *,
    version: str | None,
    endpoint: str | None,
    now: datetime,
) -> dict[str, Any]:
    facts = observed.facts
    tiers = tier_statuses(rp, facts) if rp is not None else []
    router = facts.router
    generation = (body.get("metadata") or {}).get("generation")
    previous = (body.get("status") or {}).get("conditions") or []
    values: list[ConditionLike] = [*policy_conditions(rp, tiers, router, problems)]
    values += kstatus_conditions(values, stalled_reasons=STALLED)
    status: dict[str, Any] = {
        "observedGeneration": generation,
        "tiers": tiers,
        "readyTiers": ready_fraction(sum(1 for t in tiers if t["ready"]), len(tiers)),
        "routerReady": router.ready > 0,
        "routerReplicas": router.wanted,
        "routerReadyReplicas": router.ready,
        "readyRouters": ready_fraction(router.ready, router.wanted),
        "conditions": render_conditions(values, previous, generation=generation, now=now),
    }
    if version is not None:
        status["tableVersion"] = version
    if endpoint is not None:
        status["endpoint"] = endpoint
    return status


def _table_note(body: Mapping[str, Any], version: str) -> list[Note]:
    old = (body.get("status") or {}).get("tableVersion")
    if old == version:
        return []
    message = f"policy document {old or 'none'} -> {version}"
    return [Note(EventType.NORMAL, TABLE_CHANGED, message)]


def _problem_notes(
    body: Mapping[str, Any], status: Mapping[str, Any], problems: Sequence[PolicyProblem]
) -> list[Note]:
    """A Warning when the Degraded message changes to a new problem."""
    if not problems:
        return []
    old = _condition(body.get("status") or {}, "Degraded")
    new = _condition(status, "Degraded")
    if (old or {}).get("message") == (new or {}).get("message"):
        return []
    return [Note(EventType.WARNING, problems[0].reason.value, "; ".join(map(str, problems)))]


def _condition(status: Mapping[str, Any], kind: str) -> Mapping[str, Any] | None:
    for cond in status.get("conditions") or []:
        if cond.get("type") == kind:
            found: Mapping[str, Any] = cond
            return found
    return None
