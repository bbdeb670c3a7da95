"""Names, labels, owner references and Secret references of a RoutingPolicy's router objects.

Every object is named ``<policy>-router`` (the Service's name made an RFC 1035 label), so
``kubectl get all -l tierwise.dev/routing-policy=NAME`` finds them and a policy's objects
never collide with another policy's. Selectors hold only what never changes for a policy
(Deployment and PodDisruptionBudget selectors are immutable) and include
``app.kubernetes.io/name: tierwise-router``: application pods that opt into a sidecar carry
``tierwise.dev/routing-policy: NAME`` too and must never land behind the gateway Service.
"""

from __future__ import annotations

from typing import Any

from tierwise.api.common import API_VERSION
from tierwise.api.routing_policy import RouterMode, RoutingPolicy
from tierwise.manifests.labels import MANAGED_BY, PART_OF, label_value, service_name

ROUTING_POLICY_LABEL = "tierwise.dev/routing-policy"
"""On the router's objects and pods; on application pods, the opt-in to a sidecar."""
APP_NAME = "tierwise-router"
COMPONENT = "router"
MAX_NAME = 253
PORT_NAME = "http"
"""The router container's port (gateway): the Service's targetPort and the scrape port."""


def router_name(rp: RoutingPolicy) -> str:
    """``<policy>-router``; a name too long for an object name is shortened with a hash."""
    name = f"{rp.metadata.name}-router"
    return name if len(name) <= MAX_NAME else label_value(name)


def router_service_name(rp: RoutingPolicy) -> str:
    """The gateway Service's name (an RFC 1035 label, at most 63 characters)."""
    return service_name(f"{rp.metadata.name}-router")


def router_endpoint_url(rp: RoutingPolicy) -> str:
    """Where applications call the router (for ``status.endpoint``): the gateway Service's
    in-cluster URL, or the sidecar's localhost port."""
    router = rp.spec.router
    if router.mode == RouterMode.SIDECAR:
        return f"http://localhost:{router.port}/v1"
    host = router_service_name(rp)
    if rp.metadata.namespace:
        host = f"{host}.{rp.metadata.namespace}.svc"
    return f"http://{host}:{router.service.port}/v1"


def router_selector(rp: RoutingPolicy) -> dict[str, str]:
    value = label_value(rp.metadata.name)
    return {
        "app.kubernetes.io/name": APP_NAME,
        "app.kubernetes.io/instance": value,
        "app.kubernetes.io/component": COMPONENT,
        ROUTING_POLICY_LABEL: value,
    }


def router_labels(rp: RoutingPolicy) -> dict[str, str]:
    """Labels of every router object and pod (the autoscaler finds router pods by
    ``app.kubernetes.io/component=router``)."""
    selector = router_selector(rp)
    return {
        "app.kubernetes.io/name": APP_NAME,
        "app.kubernetes.io/instance": selector["app.kubernetes.io/instance"],
        "app.kubernetes.io/component": COMPONENT,
        "app.kubernetes.io/part-of": PART_OF,
        "app.kubernetes.io/managed-by": MANAGED_BY,
        ROUTING_POLICY_LABEL: selector[ROUTING_POLICY_LABEL],
    }


def policy_owner_references(rp: RoutingPolicy, owner_uid: str | None) -> list[dict[str, Any]]:
    """The RoutingPolicy as controller owner (deleting it deletes its router objects), or
    nothing offline, where no uid exists."""
    if not owner_uid:
        return []
    return [
        {
            "apiVersion": API_VERSION,
            "kind": "RoutingPolicy",
            "name": rp.metadata.name,
            "uid": owner_uid,
            "controller": True,
            "blockOwnerDeletion": True,
        }
    ]


def router_object_meta(
    rp: RoutingPolicy,
    name: str,
    owner_uid: str | None,
    annotations: dict[str, str] | None = None,
) -> dict[str, Any]:
    meta: dict[str, Any] = {"name": name}
    if rp.metadata.namespace:
        meta["namespace"] = rp.metadata.namespace
    meta["labels"] = router_labels(rp)
    if annotations:
        meta["annotations"] = annotations
    owners = policy_owner_references(rp, owner_uid)
    if owners:
        meta["ownerReferences"] = owners
    return meta


def referenced_secrets(rp: RoutingPolicy) -> dict[str, tuple[str, ...]]:
    """Every Secret the router reads, with the keys it reads, both sorted: external backends'
    API keys and the accepted client keys of ``spec.router.auth``."""
    refs = [
        backend.external.api_key_secret_ref
        for tier in rp.spec.tiers
        for backend in tier.backends
        if backend.external is not None
    ]
    if rp.spec.router.auth is not None:
        refs.append(rp.spec.router.auth.api_keys_secret_ref)
    keys: dict[str, set[str]] = {}
    for ref in refs:
        keys.setdefault(ref.name, set()).add(ref.key)
    return {name: tuple(sorted(keys[name])) for name in sorted(keys)}
