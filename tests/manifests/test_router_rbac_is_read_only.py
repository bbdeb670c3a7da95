"""The router's Role grants read access to exactly what it watches and nothing else, and the
RoleBinding names exactly the router's (or the injected pods') ServiceAccounts."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st
from router_helpers import by_kind, routing_policies

from tierwise.api.routing_policy import RouterMode, RoutingPolicy
from tierwise.manifests.router import render_routing_policy
from tierwise.manifests.router_config import router_config

READ = {"get", "list", "watch"}
ACCOUNTS = st.lists(st.sampled_from(["web", "batch", "default", "a.b"]), max_size=6)


@settings(max_examples=60, deadline=None)
@given(routing_policies(), ACCOUNTS)
def test_role_grants_no_write_verb_and_no_wildcard(rp: RoutingPolicy, accounts: list[str]) -> None:
    objects = render_routing_policy(rp, router_config(rp, {}), sidecar_service_accounts=accounts)
    rules = by_kind(objects, "Role")["rules"]
    for rule in rules:
        assert set(rule["verbs"]) <= READ
        for field in ("apiGroups", "resources", "verbs", "resourceNames"):
            assert "*" not in rule.get(field, [])
    granted = {(g, r) for rule in rules for g in rule["apiGroups"] for r in rule["resources"]}
    assert granted == {("", "configmaps"), ("discovery.k8s.io", "endpointslices")}


@settings(max_examples=60, deadline=None)
@given(routing_policies())
def test_configmap_access_is_limited_to_the_policy_configmap(rp: RoutingPolicy) -> None:
    objects = render_routing_policy(rp, router_config(rp, {}))
    (rule,) = [r for r in by_kind(objects, "Role")["rules"] if "configmaps" in r["resources"]]
    assert rule["resourceNames"] == [by_kind(objects, "ConfigMap")["metadata"]["name"]]


@settings(max_examples=60, deadline=None)
@given(routing_policies(), ACCOUNTS)
def test_role_binding_names_exactly_the_routers_service_accounts(
    rp: RoutingPolicy, accounts: list[str]
) -> None:
    objects = render_routing_policy(rp, router_config(rp, {}), sidecar_service_accounts=accounts)
    bindings = [o for o in objects if o["kind"] == "RoleBinding"]
    if rp.spec.router.mode == RouterMode.SIDECAR:
        expected = sorted(set(accounts))
    else:
        expected = [by_kind(objects, "ServiceAccount")["metadata"]["name"]]
    if not expected:
        assert bindings == []
        return
    (binding,) = bindings
    assert [s["name"] for s in binding["subjects"]] == expected
    assert {s["kind"] for s in binding["subjects"]} == {"ServiceAccount"}
    assert binding["roleRef"] == {
        "apiGroup": "rbac.authorization.k8s.io",
        "kind": "Role",
        "name": by_kind(objects, "Role")["metadata"]["name"],
    }
    for subject in binding["subjects"]:
        assert subject.get("namespace") == rp.metadata.namespace
