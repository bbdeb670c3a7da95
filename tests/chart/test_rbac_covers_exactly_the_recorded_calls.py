"""The chart's RBAC is exactly what the operator's code needs: no request it makes is
refused, no permission it holds goes unused, no wildcard, Secrets only read by name.

"Needs" is derived from the code, three ways:

* every API request the operator made in the representative run on the embedded cluster
  (tests/operator_scenario.py), where the emulated API server enforced the chart's rules
  for the operator's token (a missing rule shows up as a refused request, and as an
  operator that did not get its work done);
* the kinds the operator owns (``tierwise.controller.resources``): each can be listed,
  applied and deleted, also where the run did not happen to delete one;
* the routers' Roles the operator applied in the run: Kubernetes lets it create a Role only
  with permissions it holds itself (it holds no ``escalate`` or ``bind``).

Both the cluster-wide chart and the namespaced one (a Role per watched namespace).
"""

from __future__ import annotations

from typing import Any

import pytest
import yaml

from chart_support import CHART, NAMESPACE, ci_values, render
from operator_scenario import Recording
from rbac_model import (
    Attributes,
    Grant,
    allowed,
    attributes,
    grants_for,
    rule_allows,
    rule_attributes,
    wildcards,
)
from scenario_objects import NS
from tierwise.controller.resources import (
    CHILD_RESOURCES,
    MODEL_DEPLOYMENT,
    ROUTER_CHILD_RESOURCES,
    ROUTING_POLICY,
)

SERVICE_ACCOUNT = f"{NAMESPACE}:tierwise-operator"
TOLERATED: dict[Attributes, str] = {}
"""Requests the code makes knowing they may be refused, and what it does then."""


@pytest.fixture(params=["cluster-wide", "namespaced"])
def run(
    request: pytest.FixtureRequest,
) -> tuple[Recording, list[dict[str, Any]]]:
    name = "operator_recording" if request.param == "cluster-wide" else (
        "namespaced_operator_recording"
    )
    recording: Recording = request.getfixturevalue(name)
    return recording, recording.chart


def _grants(chart: list[dict[str, Any]]) -> list[Grant]:
    return grants_for(chart, SERVICE_ACCOUNT)


def _router_roles(recording: Recording) -> list[dict[str, Any]]:
    """The Roles the operator applied (server-side apply bodies) in the run."""
    return [
        call.body
        for call in recording.operator_calls
        if call.method == "PATCH" and "/roles/" in call.path and isinstance(call.body, dict)
    ]


def _needed(recording: Recording) -> list[Attributes]:
    needed = [
        attrs
        for call in recording.operator_calls
        if (attrs := attributes(call.method, call.path, call.params)) is not None
    ]
    namespace = NS
    for resource in {*CHILD_RESOURCES, *ROUTER_CHILD_RESOURCES}:
        for verb in ("list", "patch", "delete"):
            needed.append(Attributes(verb, resource.group, resource.plural, namespace, None))
    # A refresh (the watchdog's, or a policy's after a model changed) GETs an object the
    # in-memory view has not seen yet; whether a run hits that window is timing.
    watched = {a.namespace for a in needed if a.resource == MODEL_DEPLOYMENT.plural}
    for namespace in watched:
        for kind in (MODEL_DEPLOYMENT, ROUTING_POLICY):
            needed.append(Attributes("get", kind.group, kind.plural, namespace, None))
    for role in _router_roles(recording):
        for rule in role.get("rules") or []:
            needed += rule_attributes(rule, role["metadata"]["namespace"])
    return needed


def _as_rule(attrs: Attributes) -> str:
    rule = {"apiGroups": [attrs.group], "resources": [attrs.resource], "verbs": [attrs.verb]}
    return yaml.safe_dump([rule], default_flow_style=True).strip()


def test_every_request_the_operator_made_was_allowed(
    run: tuple[Recording, list[dict[str, Any]]],
) -> None:
    recording, _ = run
    refused = sorted({a for a in recording.denied if a not in TOLERATED})
    assert not refused, "add to charts/tierwise/files/rbac-rules.yaml:\n" + "\n".join(
        f"  {_as_rule(a)}   # {a}" for a in refused
    )
    assert len(recording.operator_calls) > 200, "the run made too few requests to judge"


def test_every_owned_kind_and_router_permission_is_granted(
    run: tuple[Recording, list[dict[str, Any]]],
) -> None:
    recording, chart = run
    grants = _grants(chart)
    missing = sorted(
        {a for a in _needed(recording) if a not in TOLERATED and not allowed(grants, a)}
    )
    assert not missing, "\n".join(f"{_as_rule(a)}   # {a}" for a in missing)


def test_every_granted_permission_is_used(run: tuple[Recording, list[dict[str, Any]]]) -> None:
    recording, chart = run
    needed = _needed(recording)
    unused: list[str] = []
    for grant in _grants(chart):
        for rule in grant.rules:
            for granted in rule_attributes(rule, grant.namespace):
                probe = {**rule, "apiGroups": [granted.group], "resources": [granted.resource],
                         "verbs": [granted.verb]}  # fmt: skip
                if not any(rule_allows(probe, n) for n in needed):
                    unused.append(str(granted))
    assert not unused, "granted but never needed (drop from files/rbac-rules.yaml):\n" + (
        "\n".join(sorted(set(unused)))
    )


def test_routers_get_exactly_what_they_watch(operator_recording: Recording) -> None:
    """Each router's requests are allowed by the Role the operator made for it, and the
    Role's permissions are ones the operator holds (so the API server let it create them)."""
    roles = _router_roles(operator_recording)
    assert roles, "the run applied no router Role"
    router_grants = [Grant(r["metadata"]["namespace"], tuple(r["rules"])) for r in roles]
    calls = [
        a
        for c in operator_recording.router_calls
        if (a := attributes(c.method, c.path, c.params)) is not None
    ]
    assert {(a.verb, a.resource) for a in calls} >= {
        ("watch", "configmaps"),
        ("watch", "endpointslices"),
    }
    assert [str(a) for a in calls if not allowed(router_grants, a)] == []
    operator = _grants(operator_recording.chart)
    for role in roles:
        for rule in role["rules"]:
            for attrs in rule_attributes(rule, role["metadata"]["namespace"]):
                assert allowed(operator, attrs), f"the operator cannot grant {attrs}"


@pytest.mark.parametrize("values", [None, "namespaced-values.yaml"])
def test_no_wildcards_no_escalation_and_secrets_only_read_by_name(values: str | None) -> None:
    chart = render(ci_values(CHART / "ci" / values) if values else None)
    rbac = [o for o in chart if o["kind"] in ("Role", "ClusterRole")]
    assert wildcards(rbac) == []
    verbs = {v for o in rbac for r in o["rules"] for v in r["verbs"]}
    assert not verbs & {"escalate", "bind", "impersonate", "deletecollection"}
    for obj in rbac:
        for rule in obj["rules"]:
            if "secrets" in rule["resources"]:
                assert rule["verbs"] == ["get"], obj["metadata"]["name"]
    if values:
        cluster_rules = [r for o in rbac if o["kind"] == "ClusterRole" for r in o["rules"]]
        assert {res for r in cluster_rules for res in r["resources"]} == {
            "customresourcedefinitions",
            "namespaces",
        }, "namespaced mode: only kopf's discovery reads are cluster-wide"
        roles = {o["metadata"]["namespace"] for o in rbac if o["kind"] == "Role"}
        assert roles == {"apps", "team-b"}


def test_the_operator_did_all_its_work_under_the_chart_rules(
    run: tuple[Recording, list[dict[str, Any]]],
) -> None:
    recording, _ = run
    assert recording.failures == []
    assert recording.held_request_answered
    assert recording.deletion_costs_seen
