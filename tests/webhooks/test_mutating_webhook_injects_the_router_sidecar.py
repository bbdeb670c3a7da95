"""The mutating webhook over real HTTPS: a pod labelled for a sidecar-mode policy gets the
router as a native sidecar; injecting twice is impossible; unlabelled pods, gateway-mode
policies and missing policies are left untouched (with a warning saying why)."""

from __future__ import annotations

import base64
import json
from typing import Any

import jsonpatch
import kubernetes.client
import pytest
from webhook_harness import NS, Webhooks

POD = ("", "v1", "pods")
RP = ("tierwise.dev", "v1alpha1", NS, "routingpolicies")


def _policy(name: str, mode: str) -> dict[str, Any]:
    return {
        "apiVersion": "tierwise.dev/v1alpha1",
        "kind": "RoutingPolicy",
        "metadata": {"name": name},
        "spec": {
            "tiers": [{"name": "small", "backends": [{"modelDeployment": "small-llm"}]}],
            "router": {"mode": mode, "port": 15080},
        },
    }


def _pod(label: str | None) -> dict[str, Any]:
    labels = {"app": "chatbot"}
    if label is not None:
        labels["tierwise.dev/routing-policy"] = label
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"generateName": "chatbot-", "namespace": NS, "labels": labels},
        "spec": {
            "serviceAccountName": "chatbot",
            "containers": [
                {"name": "app", "image": "example/chatbot:1.0", "ports": [{"containerPort": 8080}]}
            ],
        },
    }


@pytest.fixture(scope="module", autouse=True)
def policies(api: kubernetes.client.ApiClient) -> None:
    custom = kubernetes.client.CustomObjectsApi(api)
    custom.create_namespaced_custom_object(*RP, _policy("side", "sidecar"))
    custom.create_namespaced_custom_object(*RP, _policy("gate", "gateway"))


def _mutate(webhooks: Webhooks, pod: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    answer = webhooks.review("inject-router", pod, resource=POD)["response"]
    assert answer["allowed"] is True
    if "patch" not in answer:
        return pod, answer
    ops = json.loads(base64.b64decode(answer["patch"]))
    return jsonpatch.apply_patch(pod, ops), answer


def test_a_labelled_pod_gets_the_router_as_a_native_sidecar(webhooks: Webhooks) -> None:
    pod = _pod("side")
    mutated, _ = _mutate(webhooks, pod)
    (sidecar,) = mutated["spec"]["initContainers"]
    assert sidecar["name"] == "tierwise-router"
    assert sidecar["restartPolicy"] == "Always"
    assert "127.0.0.1" in sidecar["args"]
    assert "15080" in sidecar["args"]
    assert mutated["spec"]["containers"] == pod["spec"]["containers"]  # the app is untouched
    assert mutated["metadata"]["annotations"]["tierwise.dev/router-injected"] == "side"


def test_injecting_twice_is_impossible(webhooks: Webhooks) -> None:
    once, _ = _mutate(webhooks, _pod("side"))
    twice, answer = _mutate(webhooks, once)
    assert "patch" not in answer
    assert twice == once


@pytest.mark.parametrize(
    ("label", "warning"),
    [
        ("gate", "runs in gateway mode"),
        ("nowhere", "no RoutingPolicy 'nowhere'"),
    ],
)
def test_pods_for_other_policies_are_untouched_with_a_warning(
    webhooks: Webhooks, label: str, warning: str
) -> None:
    pod = _pod(label)
    mutated, answer = _mutate(webhooks, pod)
    assert mutated == pod
    assert any(warning in w for w in answer.get("warnings", [])), answer


def test_an_unlabelled_pod_reaching_the_webhook_is_untouched(webhooks: Webhooks) -> None:
    pod = _pod(None)
    mutated, answer = _mutate(webhooks, pod)
    assert mutated == pod
    assert "patch" not in answer
