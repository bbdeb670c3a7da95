"""The whole product on a real cluster, as a platform engineer installs it: the chart from
the built image (e2e/conftest.py: ``release``), then ``examples/00-demo`` with a CPU-only
engine override, Ready, OpenAI requests through the router's Service to the right tier,
a scale-up that reaches the new replica, the admission webhooks (a refused spec, an
injected sidecar), deletion, and (in the fixture) an uninstall that leaves only the CRDs.

The operator runs in the cluster with the chart's RBAC; the engine pods run the simulator
behind vLLM's and SGLang's own command lines (images/engine-sim) on advertised fake GPUs.
Requests go through the API server's Service proxy, so nothing is port-forwarded.
"""

from __future__ import annotations

import json
import secrets
from pathlib import Path
from typing import Any

import pytest
import yaml
from e2e_support import ENGINE_IMAGE, GROUP, IMAGE, RELEASE_NAMESPACE, wait

EXAMPLE = Path(__file__).parents[1] / "examples" / "00-demo"
PROMPTS = {
    "small": "What is the capital of France?",
    "mid": "Why does this fail? Traceback (most recent call last): KeyError",
    "frontier": "Prove that there are infinitely many primes, step by step.",
}


def _docs(name: str) -> list[dict[str, Any]]:
    text = (EXAMPLE / name).read_text()
    return [d for d in yaml.safe_load_all(text) if d]


def _model_deployment(doc: dict[str, Any]) -> dict[str, Any]:
    """The example on a CPU-only cluster: the engine stand-in image, no GPU product."""
    spec = doc["spec"]
    spec["engine"]["image"] = ENGINE_IMAGE
    spec["resources"].pop("gpuProduct", None)
    spec["replicas"] = {"min": 1, "max": 2}
    return doc


def _frontier(namespace: str) -> list[dict[str, Any]]:
    """A stand-in for the frontier API inside the cluster (the simulator, OpenAI API)."""
    labels = {"app": "frontier-standin"}
    command = ["tierwise", "sim", "engine", "--engine", "vllm", "--model", "frontier-model",
               "--host", "0.0.0.0", "--port", "8000"]  # fmt: skip
    deployment = {
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": "frontier-standin", "namespace": namespace},
        "spec": {"selector": {"matchLabels": labels}, "template": {
            "metadata": {"labels": labels},
            "spec": {"containers": [{"name": "sim", "image": IMAGE, "command": command,
                                     "ports": [{"name": "http", "containerPort": 8000}]}]}}},
    }  # fmt: skip
    service = {
        "apiVersion": "v1", "kind": "Service",
        "metadata": {"name": "frontier-standin", "namespace": namespace},
        "spec": {"selector": labels, "ports": [{"name": "http", "port": 80, "targetPort": "http"}]},
    }  # fmt: skip
    return [deployment, service]


@pytest.fixture(scope="module")
def demo(api: Any, namespace: str) -> dict[str, Any]:
    import kubernetes.client as client
    from kubernetes import utils

    custom = client.CustomObjectsApi(api)
    core = client.CoreV1Api(api)
    for obj in _frontier(namespace):
        utils.create_from_dict(api, obj, namespace=namespace)
    core.create_namespaced_secret(namespace, {
        "metadata": {"name": "demo-frontier-key"},
        "stringData": {"api-key": f"sk-e2e-{secrets.token_hex(8)}"},
    })  # fmt: skip
    for doc in _docs("modeldeployments.yaml"):
        custom.create_namespaced_custom_object(
            GROUP, "v1alpha1", namespace, "modeldeployments", _model_deployment(doc)
        )
    (policy,) = _docs("routingpolicy.yaml")
    (frontier,) = [t for t in policy["spec"]["tiers"] if t["name"] == "frontier"]
    frontier["backends"][0]["external"]["baseURL"] = (
        f"http://frontier-standin.{namespace}.svc/v1"
    )
    custom.create_namespaced_custom_object(GROUP, "v1alpha1", namespace, "routingpolicies", policy)
    return policy


def _conditions(api: Any, namespace: str, plural: str, name: str) -> dict[str, str]:
    import kubernetes.client as client

    body = client.CustomObjectsApi(api).get_namespaced_custom_object(
        GROUP, "v1alpha1", namespace, plural, name
    )
    status = body.get("status") or {}
    if status.get("observedGeneration") != body["metadata"].get("generation"):
        return {}
    return {c["type"]: c["status"] for c in status.get("conditions") or []}


def _ask(
    api: Any, namespace: str, prompt: str, headers: dict[str, str] | None = None
) -> tuple[int, dict[str, str], dict[str, Any]]:
    """POST a chat completion to the router's Service through the API server's proxy:
    (status, lowercased headers, JSON body)."""
    path = f"/api/v1/namespaces/{namespace}/services/demo-router:http/proxy/v1/chat/completions"
    payload = {"model": "auto", "messages": [{"role": "user", "content": prompt}], "max_tokens": 8}
    method, url, sent_headers, body, post = api.param_serialize(
        method="POST",
        resource_path=path,
        header_params={"Content-Type": "application/json", **(headers or {})},
        body=payload,
        auth_settings=["BearerToken"],
    )
    response = api.call_api(method, url, header_params=sent_headers, body=body,
                            post_params=post, _request_timeout=60)  # fmt: skip
    response.read()
    answer = {k.lower(): str(v) for k, v in response.headers.items()}
    return int(response.status), answer, json.loads(response.data)


def test_the_demo_becomes_ready(api: Any, namespace: str, demo: dict[str, Any]) -> None:
    for name in ("small-llm", "mid-llm"):
        wait(lambda n=name: _conditions(api, namespace, "modeldeployments", n).get("Ready")
             == "True", timeout=300, what=f"ModelDeployment {name} Ready")  # fmt: skip
    wait(
        lambda: _conditions(api, namespace, "routingpolicies", "demo").get("Ready") == "True",
        timeout=300,
        what="RoutingPolicy demo Ready",
    )
    assert _conditions(api, namespace, "routingpolicies", "demo")["Stalled"] == "False"


@pytest.mark.parametrize("tier", ["small", "mid", "frontier"])
def test_requests_through_the_router_reach_their_tier(
    api: Any, namespace: str, demo: dict[str, Any], tier: str
) -> None:
    status, headers, body = _ask(api, namespace, PROMPTS[tier])
    assert status == 200
    assert headers["x-tierwise-tier"] == tier
    assert body["choices"][0]["message"]["content"]


def test_a_scale_up_reaches_the_new_replica(api: Any, namespace: str, demo: dict[str, Any]) -> None:
    import kubernetes.client as client

    custom = client.CustomObjectsApi(api)
    custom.patch_namespaced_custom_object(
        GROUP, "v1alpha1", namespace, "modeldeployments", "small-llm",
        {"spec": {"replicas": {"min": 2, "max": 2}}},
    )  # fmt: skip
    apps = client.AppsV1Api(api)
    def ready() -> int:
        status = apps.read_namespaced_deployment("small-llm", namespace).status
        return int((status.ready_replicas if status else 0) or 0)

    wait(lambda: ready() == 2, timeout=300, what="two ready small-llm replicas")
    seen: set[str] = set()

    def both() -> bool:
        _, headers, _ = _ask(api, namespace, f"{PROMPTS['small']} {len(seen)}")
        seen.add(headers.get("x-tierwise-replica", ""))
        return len(seen - {""}) >= 2

    wait(both, timeout=120, what="requests served by both small-llm replicas")


def test_the_validating_webhook_refuses_a_managed_engine_flag(api: Any, namespace: str) -> None:
    import kubernetes.client as client

    bad = {"apiVersion": f"{GROUP}/v1alpha1", "kind": "ModelDeployment",
           "metadata": {"name": "bad-port"},
           "spec": {"model": {"uri": "hf://Qwen/Qwen2.5-0.5B"},
                    "engine": {"name": "vllm", "args": ["--port", "9000"]}}}  # fmt: skip
    with pytest.raises(client.ApiException) as refused:
        client.CustomObjectsApi(api).create_namespaced_custom_object(
            GROUP, "v1alpha1", namespace, "modeldeployments", bad
        )
    assert refused.value.status in (400, 422)
    assert "spec.engine.args[0]" in str(refused.value.body)


def test_the_mutating_webhook_injects_the_router_sidecar(
    api: Any, namespace: str, demo: dict[str, Any]
) -> None:
    import kubernetes.client as client

    custom = client.CustomObjectsApi(api)
    tiers = [{"name": "small", "backends": [{"modelDeployment": "small-llm"}]}]
    sidecar = {"apiVersion": f"{GROUP}/v1alpha1", "kind": "RoutingPolicy",
               "metadata": {"name": "side"},
               "spec": {"tiers": tiers, "router": {"mode": "sidecar"}}}  # fmt: skip
    custom.create_namespaced_custom_object(GROUP, "v1alpha1", namespace, "routingpolicies", sidecar)
    command = ["tierwise", "sim", "engine", "--port", "9999"]
    labels = {"tierwise.dev/routing-policy": "side"}
    container = {"name": "app", "image": IMAGE, "command": command}
    pod = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "app", "labels": labels},
           "spec": {"containers": [container]}}  # fmt: skip
    created = client.CoreV1Api(api).create_namespaced_pod(namespace, pod)
    names = [c.name for c in created.spec.init_containers or []]
    assert "tierwise-router" in names


def test_deleting_the_policy_and_models_removes_what_they_made(
    api: Any, namespace: str, demo: dict[str, Any]
) -> None:
    import kubernetes.client as client

    custom, apps = client.CustomObjectsApi(api), client.AppsV1Api(api)
    custom.delete_namespaced_custom_object(GROUP, "v1alpha1", namespace, "routingpolicies", "demo")
    for name in ("small-llm", "mid-llm"):
        custom.delete_namespaced_custom_object(
            GROUP, "v1alpha1", namespace, "modeldeployments", name
        )

    def cleaned() -> bool:
        left = {d.metadata.name for d in apps.list_namespaced_deployment(namespace).items}
        return not left & {"demo-router", "small-llm", "mid-llm"}

    wait(cleaned, timeout=180, what="the router and engine Deployments deleted")


def test_the_operator_runs_with_least_privilege(api: Any) -> None:
    """Asked of the API server itself (SubjectAccessReview): the chart's ServiceAccount may
    read a Secret by name but not list Secrets, and may not touch Nodes."""
    import kubernetes.client as client

    user = f"system:serviceaccount:{RELEASE_NAMESPACE}:tierwise-operator"

    def can(verb: str, resource: str, name: str | None = None) -> bool:
        review = client.AuthorizationV1Api(api).create_subject_access_review({
            "apiVersion": "authorization.k8s.io/v1", "kind": "SubjectAccessReview",
            "spec": {"user": user, "resourceAttributes": {
                "verb": verb, "resource": resource, "namespace": "default",
                **({"name": name} if name else {})}}})  # fmt: skip
        return bool(review.status.allowed)

    assert can("get", "secrets", "some-key")
    assert not can("list", "secrets")
    assert not can("get", "nodes")
    assert can("patch", "deployments", "x")
