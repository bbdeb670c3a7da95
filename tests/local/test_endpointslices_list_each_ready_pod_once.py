"""The EndpointSlice plan lists each selected pod once, with the real controller's conditions."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tierwise.local.endpointslices import (
    CONTROLLER_NAME,
    MANAGED_BY_LABEL,
    SERVICE_NAME_LABEL,
    SlicePlan,
    plan_slices,
)
from tierwise.local.workloads import PORT_ANNOTATION

NS = "default"


def service(*, target: Any = "http", selector: dict[str, str] | None = None,
            labels: dict[str, str] | None = None, **spec: Any) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Service",
            "metadata": {"name": "engine", "namespace": NS, "uid": "svc-uid",
                         "labels": labels or {"team": "a"}},
            "spec": {"selector": {"app": "engine"} if selector is None else selector,
                     "ports": [{"name": "http", "port": 80, "targetPort": target}], **spec}}


def pod(name: str, *, app: str = "engine", ready: bool = True, terminating: bool = False,
        ip: str | None = "10.0.0.1", node: str | None = "n1", local_port: int | None = None,
        container_port: int = 8000, phase: str = "Running") -> dict[str, Any]:
    meta: dict[str, Any] = {"name": name, "namespace": NS, "uid": f"uid-{name}",
                            "labels": {"app": app}, "annotations": {}}
    if local_port is not None:
        meta["annotations"][PORT_ANNOTATION] = str(local_port)
    if terminating:
        meta["deletionTimestamp"] = "2025-01-01T00:00:00Z"
    spec: dict[str, Any] = {"containers": [
        {"name": "c", "ports": [{"name": "http", "containerPort": container_port}]}]}
    if node:
        spec["nodeName"] = node
    status: dict[str, Any] = {"phase": phase, "conditions": [
        {"type": "Ready", "status": "True" if ready else "False"}]}
    if ip:
        status["podIP"] = ip
    return {"metadata": meta, "spec": spec, "status": status}


def apply(plan: SlicePlan, slices: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The slices after a plan, as the store would hold them."""
    out = {s["metadata"]["name"]: s for s in slices}
    for name in plan.delete:
        del out[name]
    for body in [*plan.update, *plan.create]:
        out[body["metadata"]["name"]] = body
    return list(out.values())


def endpoints_by_pod(slices: list[dict[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    out: dict[str, list[dict[str, Any]]] = {}
    for s in slices:
        for ep in s["endpoints"]:
            out.setdefault(ep["targetRef"]["name"], []).append(ep)
    return out


def test_conditions_follow_readiness_and_termination() -> None:
    pods = [pod("a"), pod("b", ready=False, ip="10.0.0.2"),
            pod("c", terminating=True, ip="10.0.0.3"),
            pod("d", terminating=True, ready=False, ip="10.0.0.4")]
    slices = apply(plan_slices(service(), pods, []), [])
    eps = {name: e[0]["conditions"] for name, e in endpoints_by_pod(slices).items()}
    assert eps == {
        "a": {"ready": True, "serving": True, "terminating": False},
        "b": {"ready": False, "serving": False, "terminating": False},
        "c": {"ready": False, "serving": True, "terminating": True},
        "d": {"ready": False, "serving": False, "terminating": True},
    }


def test_publish_not_ready_addresses_makes_every_pod_ready() -> None:
    slices = apply(plan_slices(service(publishNotReadyAddresses=True),
                               [pod("a", ready=False)], []), [])
    assert slices[0]["endpoints"][0]["conditions"]["ready"] is True


@pytest.mark.parametrize("excluded", [
    pod("x", ip=None), pod("x", node=None), pod("x", app="other"), pod("x", phase="Succeeded"),
], ids=["no-ip", "unscheduled", "not-selected", "finished"])
def test_pods_that_cannot_serve_are_left_out(excluded: dict[str, Any]) -> None:
    slices = apply(plan_slices(service(), [excluded], []), [])
    assert [(s["endpoints"], s["ports"]) for s in slices] == [([], [])]  # the placeholder


def test_an_endpoint_carries_its_pod_reference_and_node() -> None:
    slices = apply(plan_slices(service(), [pod("a")], []), [])
    assert slices[0]["endpoints"][0] == {
        "addresses": ["10.0.0.1"], "nodeName": "n1",
        "conditions": {"ready": True, "serving": True, "terminating": False},
        "targetRef": {"kind": "Pod", "namespace": NS, "name": "a", "uid": "uid-a"}}
    assert slices[0]["addressType"] == "IPv4"


def test_labels_owner_and_name_follow_the_service() -> None:
    body = plan_slices(service(labels={"team": "a", SERVICE_NAME_LABEL: "spoof"}),
                       [pod("a")], []).create[0]
    meta = body["metadata"]
    assert meta["labels"] == {"team": "a", SERVICE_NAME_LABEL: "engine",
                              MANAGED_BY_LABEL: CONTROLLER_NAME}
    assert meta["ownerReferences"] == [{"apiVersion": "v1", "kind": "Service",
                                        "name": "engine", "uid": "svc-uid",
                                        "controller": True, "blockOwnerDeletion": True}]
    assert meta["generateName"] == "engine-"
    assert meta["name"].startswith("engine-")
    assert len(meta["name"]) == len("engine-") + 5


@pytest.mark.parametrize(("target", "pods", "ports"), [
    ("http", [pod("a", container_port=8000), pod("b", ip="10.0.0.2", container_port=8000)],
     [[8000]]),
    ("http", [pod("a", container_port=8000), pod("b", ip="10.0.0.2", container_port=9000)],
     [[8000], [9000]]),
    ("http", [pod("a", local_port=41001), pod("b", ip="10.0.0.2", local_port=41002)],
     [[41001], [41002]]),
    (7000, [pod("a", local_port=41001), pod("b", ip="10.0.0.2", local_port=41002)], [[7000]]),
    ("metrics", [pod("a")], [[]]),
], ids=["same-named-port", "different-named-ports", "local-runner-ports", "numeric",
        "missing-name"])
def test_endpoints_are_grouped_by_their_resolved_ports(
    target: Any, pods: list[dict[str, Any]], ports: list[list[int]],
) -> None:
    slices = apply(plan_slices(service(target=target), pods, []), [])
    assert sorted([p["port"] for p in s["ports"]] for s in slices) == ports
    assert sum(len(s["endpoints"]) for s in slices) == len(pods)


def test_a_second_plan_over_its_own_result_is_empty() -> None:
    pods = [pod(f"p{i}", ip=f"10.0.0.{i}", local_port=41000 + i % 2) for i in range(7)]
    slices = apply(plan_slices(service(), pods, [], max_endpoints=2), [])
    assert len(slices) == 4  # two port sets (four and three pods), at most two per slice
    assert not plan_slices(service(), pods, slices, max_endpoints=2)


def test_one_new_pod_rewrites_one_slice() -> None:
    pods = [pod(f"p{i}", ip=f"10.0.0.{i}") for i in range(5)]
    slices = apply(plan_slices(service(), pods, [], max_endpoints=2), [])
    plan = plan_slices(service(), [*pods, pod("p9", ip="10.0.0.9")], slices, max_endpoints=2)
    assert (len(plan.update), len(plan.create), plan.delete) == (1, 0, [])


def test_a_service_without_selector_loses_its_managed_slices() -> None:
    slices = apply(plan_slices(service(), [pod("a")], []), [])
    plan = plan_slices(service(selector={}), [pod("a")], slices)
    assert plan.delete == [slices[0]["metadata"]["name"]]
    assert not plan.create


def test_slices_of_other_services_and_managers_are_left_alone() -> None:
    foreign = {"metadata": {"name": "engine-manual", "namespace": NS,
                            "labels": {SERVICE_NAME_LABEL: "engine"}},
               "addressType": "IPv4", "endpoints": [], "ports": []}
    plan = plan_slices(service(), [pod("a")], [foreign])
    assert foreign["metadata"]["name"] not in plan.delete
    assert len(plan.create) == 1


# -- property ------------------------------------------------------------------------------

pod_specs = st.lists(st.tuples(
    st.booleans(),                 # selected
    st.booleans(),                 # ready
    st.booleans(),                 # terminating
    st.booleans(),                 # has an IP
    st.booleans(),                 # scheduled
    st.sampled_from([None, 41001, 41002, 41003]),  # local runner port
), max_size=25)


def make_pods(specs: list[tuple[bool, bool, bool, bool, bool, int | None]],
              tag: str) -> list[dict[str, Any]]:
    return [pod(f"{tag}{i}", app="engine" if selected else "other", ready=ready,
                terminating=terminating, ip=f"10.1.{i // 250}.{i % 250}" if has_ip else None,
                node="n1" if scheduled else None, local_port=port)
            for i, (selected, ready, terminating, has_ip, scheduled, port) in enumerate(specs)]


def check(pods: list[dict[str, Any]], slices: list[dict[str, Any]]) -> None:
    by_pod = endpoints_by_pod(slices)
    for p in pods:
        meta, status = p["metadata"], p["status"]
        selected = meta["labels"]["app"] == "engine"
        listed = selected and bool(status.get("podIP")) and bool(p["spec"].get("nodeName"))
        ready = status["conditions"][0]["status"] == "True" and "deletionTimestamp" not in meta
        entries = by_pod.get(meta["name"], [])
        assert len(entries) == (1 if listed else 0), meta["name"]
        if listed:
            assert entries[0]["conditions"]["ready"] is ready
    names = [s["metadata"]["name"] for s in slices]
    assert len(names) == len(set(names))
    assert all(len(s["endpoints"]) <= 4 for s in slices)
    assert len(slices) >= 1  # a Service with a selector always has a slice, maybe a placeholder


@settings(max_examples=200, deadline=None)
@given(pod_specs, pod_specs)
def test_every_ready_selected_pod_is_listed_once_through_any_change(
    first: list[tuple[bool, bool, bool, bool, bool, int | None]],
    second: list[tuple[bool, bool, bool, bool, bool, int | None]],
) -> None:
    svc = service()
    before = make_pods(first, "p")
    slices = apply(plan_slices(svc, before, [], max_endpoints=4), [])
    check(before, slices)
    assert not plan_slices(svc, before, slices, max_endpoints=4)
    after = make_pods(second, "p")  # same names: pods change, appear and disappear
    slices = apply(plan_slices(svc, after, slices, max_endpoints=4), slices)
    check(after, slices)
    assert not plan_slices(svc, after, slices, max_endpoints=4)
