"""Sidecar injection: the router becomes the pod's first init container with restartPolicy
Always on 127.0.0.1; injecting twice is injecting once; the application's containers, init
containers and volumes are left byte-identical; pods that must not be touched are not."""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from router_helpers import ROUTER_INPUTS, TOKEN_PATH, app_pods, load_inputs, policies_in

from tierwise.api.routing_policy import RoutingPolicy
from tierwise.manifests.labels import label_value
from tierwise.manifests.sidecar import (
    INJECTED_ANNOTATION,
    SkipReason,
    inject_sidecar,
    pod_service_account,
    skip_reason,
)


def _pod_and_policy(data: st.DataObject) -> tuple[dict[str, Any], RoutingPolicy]:
    rp = data.draw(policies_in("sidecar"))
    return data.draw(app_pods(label_value(rp.metadata.name))), rp


def _injected(data: st.DataObject) -> tuple[dict[str, Any], RoutingPolicy, dict[str, Any]]:
    pod, rp = _pod_and_policy(data)
    injected = inject_sidecar(pod, rp)
    assert injected is not None
    return pod, rp, injected


def _bytes(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False)


@settings(max_examples=80, deadline=None)
@given(st.data())
def test_injecting_twice_is_injecting_once(data: st.DataObject) -> None:
    pod, rp = _pod_and_policy(data)

    def apply(p: dict[str, Any]) -> dict[str, Any]:
        return inject_sidecar(p, rp) or p

    once = apply(pod)
    assert once != pod
    assert apply(once) == once
    assert inject_sidecar(once, rp) is None
    assert skip_reason(once, rp) == SkipReason.ALREADY_INJECTED


@settings(max_examples=80, deadline=None)
@given(st.data())
def test_the_application_is_left_byte_identical(data: st.DataObject) -> None:
    pod, rp = _pod_and_policy(data)
    before = copy.deepcopy(pod)
    injected = inject_sidecar(pod, rp)
    assert injected is not None
    assert pod == before  # the input is untouched
    spec, original = injected["spec"], before["spec"]
    assert _bytes(spec["containers"]) == _bytes(original["containers"])
    assert _bytes(spec["initContainers"][1:]) == _bytes(original.get("initContainers", []))
    kept = spec["volumes"][: len(original.get("volumes", []))]
    assert _bytes(kept) == _bytes(original.get("volumes", []))
    added = spec["volumes"][len(kept) :]
    assert all(v["name"].startswith("tierwise-") for v in added)
    names = [v["name"] for v in spec["volumes"]]
    assert len(names) == len(set(names))
    assert {k: v for k, v in spec.items() if k not in ("initContainers", "volumes")} == {
        k: v for k, v in original.items() if k not in ("initContainers", "volumes")
    }
    assert injected["metadata"]["labels"] == before["metadata"]["labels"]
    assert injected["metadata"]["annotations"] == {INJECTED_ANNOTATION: rp.metadata.name}


@settings(max_examples=80, deadline=None)
@given(st.data())
def test_the_sidecar_is_a_native_sidecar_on_localhost(data: st.DataObject) -> None:
    _, rp, injected = _injected(data)
    sidecar = injected["spec"]["initContainers"][0]
    port = rp.spec.router.port
    assert sidecar["name"] == "tierwise-router"
    assert sidecar["restartPolicy"] == "Always"
    args = sidecar["args"]
    assert args[args.index("--host") + 1] == "127.0.0.1"
    assert args[args.index("--port") + 1] == str(port)
    for probe, path in [("startupProbe", "/healthz"), ("readinessProbe", "/readyz")]:
        command = " ".join(sidecar[probe]["exec"]["command"])
        assert f"http://127.0.0.1:{port}{path}" in command
    assert all(p["name"] != "http" for p in sidecar["ports"])


@settings(max_examples=80, deadline=None)
@given(st.data())
def test_the_sidecar_alone_gets_a_token_when_the_pod_has_none(data: st.DataObject) -> None:
    pod, _, injected = _injected(data)
    sidecar = injected["spec"]["initContainers"][0]
    (mount,) = [m for m in sidecar["volumeMounts"] if m["mountPath"] == TOKEN_PATH]
    existing = [
        m
        for c in pod["spec"]["containers"]
        for m in c.get("volumeMounts", [])
        if m["mountPath"] == TOKEN_PATH
    ]
    volume = next(v for v in injected["spec"]["volumes"] if v["name"] == mount["name"])
    if existing:
        assert mount == existing[0]
        assert not any(v["name"] == "tierwise-kube-api-access" for v in injected["spec"]["volumes"])
    else:
        sources = volume["projected"]["sources"]
        assert {next(iter(s)) for s in sources} == {
            "serviceAccountToken",
            "configMap",
            "downwardAPI",
        }
        assert mount["readOnly"] is True


def _golden_pod() -> tuple[dict[str, Any], RoutingPolicy]:
    inputs = load_inputs(ROUTER_INPUTS / "sidecar.yaml")
    return copy.deepcopy(inputs.pods[0]), inputs.policy


def _gateway(rp: RoutingPolicy) -> RoutingPolicy:
    raw = rp.model_dump(mode="json", by_alias=True, exclude_none=True)
    raw["spec"]["router"]["mode"] = "gateway"
    return RoutingPolicy.model_validate(raw)


def _edit(change: str, pod: dict[str, Any]) -> None:
    spec, meta = pod["spec"], pod["metadata"]
    if change == "annotated":
        meta["annotations"] = {INJECTED_ANNOTATION: "assistant"}
    elif change == "has-container":
        spec["initContainers"] = [{"name": "tierwise-router", "image": "x"}]
    elif change == "unlabelled":
        del meta["labels"]["tierwise.dev/routing-policy"]
    elif change == "other-policy":
        meta["labels"]["tierwise.dev/routing-policy"] = "someone-else"
    elif change == "other-namespace":
        meta["namespace"] = "team-b"
    elif change == "host-network":
        spec["hostNetwork"] = True
    elif change == "port-taken":
        spec["containers"][0]["ports"].append({"containerPort": 18080})
    elif change == "volume-taken":
        spec["volumes"].append({"name": "tierwise-config", "emptyDir": {}})
    elif change == "no-spec":
        del pod["spec"]


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ("annotated", SkipReason.ALREADY_INJECTED),
        ("has-container", SkipReason.ALREADY_INJECTED),
        ("unlabelled", SkipReason.NOT_LABELLED),
        ("other-policy", SkipReason.NOT_LABELLED),
        ("other-namespace", SkipReason.OTHER_NAMESPACE),
        ("host-network", SkipReason.HOST_NETWORK),
        ("port-taken", SkipReason.PORT_IN_USE),
        ("volume-taken", SkipReason.VOLUME_NAME_TAKEN),
        ("no-spec", SkipReason.NOT_A_POD),
    ],
)
def test_pods_that_must_not_be_touched_are_not(change: str, reason: SkipReason) -> None:
    pod, rp = _golden_pod()
    assert skip_reason(pod, rp) is None
    _edit(change, pod)
    assert skip_reason(pod, rp) == reason
    assert inject_sidecar(pod, rp) is None


def test_a_gateway_policy_injects_nothing() -> None:
    pod, rp = _golden_pod()
    assert skip_reason(pod, _gateway(rp)) == SkipReason.NOT_SIDECAR_MODE
    assert inject_sidecar(pod, _gateway(rp)) is None


@pytest.mark.parametrize(
    ("spec", "account"),
    [
        ({"serviceAccountName": "web"}, "web"),
        ({"serviceAccount": "legacy"}, "legacy"),
        ({}, "default"),
    ],
)
def test_the_pods_service_account_is_what_the_role_binding_names(
    spec: dict[str, str], account: str
) -> None:
    assert pod_service_account({"spec": {"containers": [], **spec}}) == account
