"""Status of a RoutingPolicy, derived from its backends and its router (pure).

Why it exists: a platform engineer reads ``kubectl get rp`` and the conditions to learn
whether requests can be served and, if not, what to fix; machines (GitOps health checks,
alerts) match on the condition reasons of :class:`PolicyReason`.

Rules:

* A backend is *ready* when it can take traffic now: a ModelDeployment with a ready replica,
  or one scaled to zero (the router holds its requests and the autoscaler wakes it), or an
  external API whose key Secret exists. A tier is ready when some backend of it is.
* ``Degraded`` names what is missing or broken (a ModelDeployment or Secret the policy
  names that does not exist, an invalid spec, a backend whose ModelDeployment failed);
  the tiers that work keep serving meanwhile.
* ``Ready`` holds when the router has every wanted replica ready (gateway), every tier is
  ready and nothing is degraded; ``Progressing`` while the router rolls out or backends load.

Counts of ready replicas are reported per backend, but an endpoint change is not a reason
to write: the plan compares everything and the reconcile writes only on a difference (the
router itself never needs a write to learn of an endpoint; see ``docs/routing.md``).
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from tierwise.api.common import ConditionStatus, ConditionType
from tierwise.api.routing_policy import RouterMode, RoutingPolicy
from tierwise.api.status import Phase


class PolicyReason(StrEnum):
    """Why a RoutingPolicy condition has its status."""

    READY = "RouterReady"
    TIERS_NOT_READY = "TiersNotReady"
    ROUTER_NOT_READY = "RouterNotReady"
    CREATING = "Creating"
    ROLLING_OUT = "RollingOut"
    BACKENDS_LOADING = "BackendsLoading"
    COMPLETE = "Complete"
    AS_EXPECTED = "AsExpected"
    INVALID_SPEC = "InvalidSpec"
    MISSING_MODEL_DEPLOYMENT = "MissingModelDeployment"
    MISSING_SECRET = "MissingSecret"
    BACKEND_FAILED = "BackendFailed"
    NOT_INJECTED = "SidecarNotInjected"
    CLASSIFIER_UNAVAILABLE = "ClassifierUnavailable"


@dataclass(frozen=True)
class PolicyProblem:
    """Something the policy names that is missing or broken, with the field pointing at it."""

    field: str
    message: str
    reason: PolicyReason

    def __str__(self) -> str:
        return f"{self.field}: {self.message}"


@dataclass(frozen=True)
class ModelFacts:
    """What the policy's status needs of one ModelDeployment (from its status)."""

    phase: str | None
    ready_replicas: int
    valid: bool = True


@dataclass(frozen=True)
class RouterFacts:
    """The router workload as observed: wanted and ready pods, rollout state."""

    wanted: int = 0
    ready: int = 0
    rolling: bool = False
    exists: bool = False


@dataclass(frozen=True)
class ArtifactFacts:
    """The tier classifier's ConfigMap as observed: absent, or the bytes of its key."""

    exists: bool
    data: bytes | None = None
    """The key's content; None when the ConfigMap has no such key."""


@dataclass(frozen=True)
class PolicyFacts:
    """Everything observed that status is derived from."""

    models: Mapping[str, ModelFacts]
    """ModelDeployments of the namespace by name (absent ones are missing)."""
    missing_secrets: frozenset[str]
    router: RouterFacts
    not_injected: tuple[str, ...] = ()
    """Pods labelled for this policy (sidecar mode) that carry no router sidecar."""
    artifact: ArtifactFacts | None = None
    """The tier classifier's ConfigMap (only when spec.classifier.tierQuality.configMap)."""


def reference_problems(rp: RoutingPolicy, facts: PolicyFacts) -> list[PolicyProblem]:
    """Missing ModelDeployments and Secrets, and failed or invalid backends, by field."""
    problems: list[PolicyProblem] = []
    for t, tier in enumerate(rp.spec.tiers):
        for b, backend in enumerate(tier.backends):
            path = f"spec.tiers[{t}].backends[{b}]"
            if backend.model_deployment is not None:
                problems += _model_problem(path, backend.model_deployment, facts)
            elif backend.external is not None:
                name = backend.external.api_key_secret_ref.name
                if name in facts.missing_secrets:
                    problems.append(_missing_secret(f"{path}.external.apiKeySecretRef.name", name))
    auth = rp.spec.router.auth
    if auth is not None and auth.api_keys_secret_ref.name in facts.missing_secrets:
        field = "spec.router.auth.apiKeysSecretRef.name"
        problems.append(_missing_secret(field, auth.api_keys_secret_ref.name))
    problems += _artifact_problems(rp, facts.artifact)
    if facts.not_injected:
        message = (
            f"pods labelled for this policy run without the router sidecar: "
            f"{', '.join(facts.not_injected)} (created while the admission webhook was "
            "unreachable, or before sidecar mode); delete them so they are recreated with it"
        )
        problems.append(PolicyProblem("spec.router.mode", message, PolicyReason.NOT_INJECTED))
    return problems


def _artifact_problems(rp: RoutingPolicy, artifact: ArtifactFacts | None) -> list[PolicyProblem]:
    """The calibrated classifier's ConfigMap must exist, hold its key, and match the pin:
    otherwise the routers fail its rules closed (the default tier serves), which is safe
    but costly, so it is said here, at the control plane, with the fix."""
    classifier = rp.spec.classifier
    quality = classifier.tier_quality if classifier is not None else None
    if quality is None or quality.config_map is None or artifact is None:
        return []
    ref, field = quality.config_map, "spec.classifier.tierQuality.configMap"
    reason = PolicyReason.CLASSIFIER_UNAVAILABLE
    if not artifact.exists:
        message = (
            f"ConfigMap {ref.name!r} does not exist; apply the ConfigMap `tierwise route "
            "calibrate` wrote (its rules do not match meanwhile: the default tier serves)"
        )
        return [PolicyProblem(f"{field}.name", message, reason)]
    if artifact.data is None:
        message = f"ConfigMap {ref.name!r} has no key {ref.key!r}; fix the key or the ConfigMap"
        return [PolicyProblem(f"{field}.key", message, reason)]
    digest = hashlib.sha256(artifact.data).hexdigest()
    if quality.sha256 is not None and digest != quality.sha256:
        message = (
            f"ConfigMap {ref.name!r} key {ref.key!r} has sha256 {digest[:12]}..., not the "
            f"pinned {quality.sha256[:12]}...; apply the ConfigMap calibrate wrote with this "
            "policy fragment, or update the pin"
        )
        return [PolicyProblem("spec.classifier.tierQuality.sha256", message, reason)]
    return []


def _model_problem(path: str, name: str, facts: PolicyFacts) -> list[PolicyProblem]:
    model = facts.models.get(name)
    field = f"{path}.modelDeployment"
    if model is None:
        message = (
            f"ModelDeployment {name!r} does not exist in this namespace; create it or fix the "
            "name (its tier is skipped meanwhile)"
        )
        return [PolicyProblem(field, message, PolicyReason.MISSING_MODEL_DEPLOYMENT)]
    if not model.valid:
        message = f"ModelDeployment {name!r} has an invalid spec; see its status conditions"
        return [PolicyProblem(field, message, PolicyReason.BACKEND_FAILED)]
    if model.phase == Phase.FAILED.value:
        message = f"ModelDeployment {name!r} failed; see its status conditions"
        return [PolicyProblem(field, message, PolicyReason.BACKEND_FAILED)]
    return []


def _missing_secret(field: str, name: str) -> PolicyProblem:
    message = f"Secret {name!r} does not exist in this namespace; create it or fix the name"
    return PolicyProblem(field, message, PolicyReason.MISSING_SECRET)


def tier_statuses(rp: RoutingPolicy, facts: PolicyFacts) -> list[dict[str, Any]]:
    """``status.tiers``: every tier with each backend's readiness and ready replicas."""
    tiers: list[dict[str, Any]] = []
    for tier in rp.spec.tiers:
        backends = [_backend_status(b.model_deployment, b.key, b, facts) for b in tier.backends]
        ready = sum(1 for b in backends if b["ready"])
        tiers.append(
            {"name": tier.name, "ready": ready > 0, "readyBackends": ready, "backends": backends}
        )
    return tiers


def _backend_status(md: str | None, key: str, backend: Any, facts: PolicyFacts) -> dict[str, Any]:
    if md is None:
        secret = backend.external.api_key_secret_ref.name
        if secret in facts.missing_secrets:
            return _backend(key, False, 0, f"Secret {secret!r} does not exist")
        return _backend(key, True, 1, "")
    model = facts.models.get(md)
    if model is None:
        return _backend(key, False, 0, "ModelDeployment does not exist")
    if not model.valid:
        return _backend(key, False, 0, "invalid spec")
    if model.ready_replicas > 0:
        return _backend(key, True, model.ready_replicas, "")
    if model.phase == Phase.SCALED_TO_ZERO.value:
        return _backend(key, True, 0, "scaled to zero; the router wakes it on demand")
    return _backend(key, False, 0, f"no ready replica (phase {model.phase or 'unknown'})")


def _backend(name: str, ready: bool, endpoints: int, message: str) -> dict[str, Any]:
    return {"name": name, "ready": ready, "endpoints": endpoints, "message": message}


@dataclass(frozen=True)
class PolicyCondition:
    type: ConditionType
    status: ConditionStatus
    reason: PolicyReason
    message: str


def policy_conditions(
    rp: RoutingPolicy | None,
    tiers: Sequence[Mapping[str, Any]],
    router: RouterFacts,
    problems: Sequence[PolicyProblem],
) -> list[PolicyCondition]:
    """Ready, Progressing and Degraded, always all three, in that order."""
    t, f = ConditionStatus.TRUE, ConditionStatus.FALSE
    kind = ConditionType
    unready = [str(x["name"]) for x in tiers if not x["ready"]]
    gateway = rp is not None and rp.spec.router.mode is RouterMode.GATEWAY
    router_ok = not gateway or (router.exists and router.ready >= max(router.wanted, 1))
    counts = f"router {router.ready}/{router.wanted} ready" if gateway else "sidecar mode"
    if problems:
        message = "; ".join(str(p) for p in problems)
        degraded = PolicyCondition(kind.DEGRADED, t, problems[0].reason, message)
    else:
        degraded = PolicyCondition(kind.DEGRADED, f, PolicyReason.AS_EXPECTED, "")
    if rp is None:
        ready = PolicyCondition(kind.READY, f, PolicyReason.INVALID_SPEC, "the spec is invalid")
    elif not router_ok:
        ready = PolicyCondition(kind.READY, f, PolicyReason.ROUTER_NOT_READY, counts)
    elif unready:
        message = f"tiers without a ready backend: {', '.join(unready)}"
        ready = PolicyCondition(kind.READY, f, PolicyReason.TIERS_NOT_READY, message)
    elif problems:
        ready = PolicyCondition(kind.READY, f, problems[0].reason, degraded.message)
    else:
        message = f"{len(tiers)}/{len(tiers)} tiers ready, {counts}"
        ready = PolicyCondition(kind.READY, t, PolicyReason.READY, message)
    return [ready, _progressing(rp, gateway, router, unready, problems, counts), degraded]


def _progressing(
    rp: RoutingPolicy | None,
    gateway: bool,
    router: RouterFacts,
    unready: Sequence[str],
    problems: Sequence[PolicyProblem],
    counts: str,
) -> PolicyCondition:
    t, f = ConditionStatus.TRUE, ConditionStatus.FALSE
    kind = ConditionType.PROGRESSING
    if rp is None:
        return PolicyCondition(kind, f, PolicyReason.COMPLETE, "")
    if gateway and not router.exists:
        return PolicyCondition(kind, t, PolicyReason.CREATING, "router being created")
    if gateway and (router.rolling or router.ready < router.wanted):
        return PolicyCondition(kind, t, PolicyReason.ROLLING_OUT, counts)
    blocked = {p.field for p in problems}
    if unready and not blocked:
        message = f"waiting for backends of {', '.join(unready)}"
        return PolicyCondition(kind, t, PolicyReason.BACKENDS_LOADING, message)
    return PolicyCondition(kind, f, PolicyReason.COMPLETE, "")


def ready_fraction(ready: int, total: int) -> str:
    return f"{ready}/{total}"
