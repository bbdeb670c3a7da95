"""``kubectl apply`` of two ModelDeployments and a three-tier RoutingPolicy gives a routed
OpenAI endpoint: the operator deploys the router, the cluster runs it as a real process, and
requests through its Service reach the right tier and replica; new replicas get traffic
without an API write; a deleted tier degrades the policy while requests fall back, none
lost; a rotated key is used for the next requests; nothing is written once settled; no key
value appears in any object or log. About a minute of wall time."""

from __future__ import annotations

import concurrent.futures
import json
import logging
import time
from collections.abc import Iterator
from typing import Any

import httpx
import kubernetes.client
import pytest
from policy_harness import FIRST_KEY, NS, SECOND_KEY, Frontier

from tierwise.controller.runner import OperatorThread
from tierwise.local.cluster import EmulatedCluster
from tierwise.local.sim_workloads import SimWorkloadBackend
from tierwise.local.testing import wait_for

MD = ("tierwise.dev", "v1alpha1", NS, "modeldeployments")
RP = ("tierwise.dev", "v1alpha1", NS, "routingpolicies")
PROMPTS = {
    "small": "What is the capital of France?",
    "mid": "Why does this fail? Traceback (most recent call last): KeyError",
    "frontier": "Prove that there are infinitely many primes.",
}


def _md(name: str, replicas: int = 1) -> dict[str, Any]:
    return {
        "apiVersion": "tierwise.dev/v1alpha1",
        "kind": "ModelDeployment",
        "metadata": {"name": name},
        "spec": {
            "model": {"uri": f"hf://org/{name}"},
            "engine": {"name": "vllm"},
            "replicas": {"min": 1, "max": 4, "target": replicas},
            "autoscaling": {"enabled": False},
            "cost": {"perGPUHour": 1.0 if name == "small-llm" else 3.0},
        },
    }


def _policy(frontier_url: str) -> dict[str, Any]:
    return {
        "apiVersion": "tierwise.dev/v1alpha1",
        "kind": "RoutingPolicy",
        "metadata": {"name": "three"},
        "spec": {
            "models": ["auto"],
            "tiers": [
                {"name": "small", "backends": [{"modelDeployment": "small-llm"}]},
                {"name": "mid", "backends": [{"modelDeployment": "mid-llm"}]},
                {
                    "name": "frontier",
                    "backends": [
                        {
                            "external": {
                                "baseURL": frontier_url,
                                "model": "frontier-model",
                                "apiKeySecretRef": {"name": "frontier-key", "key": "api-key"},
                            }
                        }
                    ],
                    "price": {"inputPerMillionTokens": 2.0, "outputPerMillionTokens": 8.0},
                },
            ],
            "rules": [
                {"name": "code", "tier": "mid", "match": {"keywords": ["traceback", "def "]}},
                {"name": "hard", "tier": "frontier", "match": {"keywords": ["prove"]}},
            ],
            "defaultTier": "small",
            "balancing": {"policy": "round-robin"},
            "router": {"replicas": 1},
        },
    }


class Logs(logging.Handler):
    """Everything the operator (in this process) logs while the module runs."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(self.format(record))


@pytest.fixture(scope="module")
def logs() -> Iterator[Logs]:
    handler = Logs()
    root = logging.getLogger()
    root.addHandler(handler)
    yield handler
    root.removeHandler(handler)


@pytest.fixture(scope="module")
def deployed(
    logs: Logs,
    cluster: EmulatedCluster,
    api: kubernetes.client.ApiClient,
    operator: OperatorThread,
    frontier: Frontier,
) -> str:
    """The policy applied and Ready; the router's URL through its Service."""
    core = kubernetes.client.CoreV1Api(api)
    custom = kubernetes.client.CustomObjectsApi(api)
    core.create_namespaced_secret(
        NS, {"metadata": {"name": "frontier-key"}, "stringData": {"api-key": FIRST_KEY}}
    )
    for name in ("small-llm", "mid-llm"):
        custom.create_namespaced_custom_object(*MD, _md(name))
    custom.create_namespaced_custom_object(*RP, _policy(frontier.url))
    wait_for(lambda: _ready(custom), timeout=90, message="the policy Ready")
    url = cluster.service_url(NS, "three-router")
    wait_for(lambda: _ask(url, PROMPTS["small"]).status_code == 200, timeout=20,
             message="an answer through the router's Service")  # fmt: skip
    return url


def _status(custom: kubernetes.client.CustomObjectsApi) -> dict[str, Any]:
    body = custom.get_namespaced_custom_object(*RP, "three")
    return dict(body.get("status") or {})


def _condition(status: dict[str, Any], kind: str) -> dict[str, Any]:
    return next((c for c in status.get("conditions") or [] if c["type"] == kind), {})


def _ready(custom: kubernetes.client.CustomObjectsApi) -> bool:
    return _condition(_status(custom), "Ready").get("status") == "True"


def _ask(url: str, prompt: str, model: str = "auto") -> httpx.Response:
    body = {"model": model, "messages": [{"role": "user", "content": prompt}], "max_tokens": 4}
    return httpx.post(url + "/v1/chat/completions", json=body, timeout=30)


def _pods(api: kubernetes.client.ApiClient, name: str) -> set[str]:
    core = kubernetes.client.CoreV1Api(api)
    pods = core.list_namespaced_pod(NS, label_selector=f"tierwise.dev/model-deployment={name}")
    return {p.metadata.name for p in pods.items if not p.metadata.deletion_timestamp}


def test_each_kind_of_request_reaches_its_tier_through_the_service(
    deployed: str, api: kubernetes.client.ApiClient, frontier: Frontier
) -> None:
    for tier, prompt in PROMPTS.items():
        answer = _ask(deployed, prompt)
        assert answer.status_code == 200, answer.text
        assert answer.headers["x-tierwise-tier"] == tier
        replica = answer.headers["x-tierwise-replica"]
        if tier == "frontier":
            assert replica == frontier.url.removesuffix("/v1")
        else:
            assert replica in _pods(api, f"{tier}-llm")
    status = _status(kubernetes.client.CustomObjectsApi(api))
    assert (status["readyTiers"], status["readyRouters"]) == ("3/3", "1/1")
    assert status["endpoint"] == "http://three-router.routing.svc:80/v1"
    pinned = _ask(deployed, "hello", model="frontier")  # tier pinning is off by default
    assert pinned.status_code == 404
    assert pinned.json()["error"]["code"] == "model_not_found"


def test_new_replicas_get_traffic_without_rewriting_the_document(
    deployed: str, api: kubernetes.client.ApiClient, operator: OperatorThread
) -> None:
    core, custom = kubernetes.client.CoreV1Api(api), kubernetes.client.CustomObjectsApi(api)
    before = core.read_namespaced_config_map("three-router", NS).metadata.resource_version
    custom.patch_namespaced_custom_object(*MD, "small-llm", {"spec": {"replicas": {"target": 3}}})
    wait_for(lambda: len(_pods(api, "small-llm")) == 3, timeout=30, message="3 small pods")

    def spread() -> bool:
        seen = {_ask(deployed, PROMPTS["small"]).headers["x-tierwise-replica"] for _ in range(6)}
        return seen == _pods(api, "small-llm")

    wait_for(spread, timeout=30, message="requests reach all three replicas")
    after = core.read_namespaced_config_map("three-router", NS).metadata.resource_version
    assert after == before  # an endpoint change is no document change
    small = _status(custom)["tiers"][0]
    wait_for(lambda: _status(custom)["tiers"][0]["backends"][0]["endpoints"] == 3, timeout=15,
             message="status counts three ready replicas")  # fmt: skip
    assert small["ready"] is True


def test_a_deleted_tier_degrades_the_policy_and_requests_fall_back_none_lost(
    deployed: str, api: kubernetes.client.ApiClient
) -> None:
    custom = kubernetes.client.CustomObjectsApi(api)
    with concurrent.futures.ThreadPoolExecutor(4) as pool:
        load = [pool.submit(_ask, deployed, PROMPTS["mid"]) for _ in range(4)]
        custom.delete_namespaced_custom_object(*MD, "mid-llm")
        load += [pool.submit(_ask, deployed, PROMPTS["mid"]) for _ in range(8)]
        answers = [f.result() for f in load]
    assert [a.status_code for a in answers] == [200] * len(answers)

    def degraded() -> Any:
        status = _status(custom)
        return _condition(status, "Degraded").get("reason") == "MissingModelDeployment" and status

    status = wait_for(degraded, timeout=30, message="Degraded naming mid-llm")
    assert "'mid-llm' does not exist" in _condition(status, "Degraded")["message"]
    assert status["readyTiers"] == "2/3"
    wait_for(lambda: not _pods(api, "mid-llm"), timeout=30, message="mid pods gone")
    fallback = _ask(deployed, PROMPTS["mid"])
    assert fallback.status_code == 200
    assert fallback.headers["x-tierwise-tier"] == "frontier"  # escalated past the empty tier
    assert _ask(deployed, PROMPTS["small"]).headers["x-tierwise-tier"] == "small"

    custom.create_namespaced_custom_object(*MD, _md("mid-llm"))
    wait_for(lambda: _ready(custom), timeout=60, message="Ready again")
    wait_for(lambda: _ask(deployed, PROMPTS["mid"]).headers["x-tierwise-tier"] == "mid",
             timeout=20, message="code goes to mid again")  # fmt: skip


def test_a_rotated_key_is_what_the_next_requests_carry(
    deployed: str, api: kubernetes.client.ApiClient, frontier: Frontier
) -> None:
    core = kubernetes.client.CoreV1Api(api)
    frontier.expected = SECOND_KEY
    frontier.seen.clear()
    core.patch_namespaced_secret("frontier-key", NS, {"stringData": {"api-key": SECOND_KEY}})
    started = time.monotonic()
    failures = 0
    while time.monotonic() - started < 15:
        if _ask(deployed, PROMPTS["frontier"]).status_code == 200:
            break
        failures += 1
        time.sleep(0.2)
    took = time.monotonic() - started
    assert frontier.seen[-1] == SECOND_KEY, "the router still sends the old key"
    assert took < 5.0  # kubelet's refresh of the file (here ~0.5 s) plus the router's check
    after = [_ask(deployed, PROMPTS["frontier"]).status_code for _ in range(3)]
    assert after == [200, 200, 200]
    assert failures <= 10


def test_nothing_is_written_once_settled(deployed: str, operator: OperatorThread) -> None:
    last, since = operator.writes, time.monotonic()
    while time.monotonic() - since < 2.0:
        time.sleep(0.1)
        if operator.writes != last:
            last, since = operator.writes, time.monotonic()
    time.sleep(2.0)
    assert operator.writes == last


def test_no_key_value_in_objects_status_events_or_logs(
    deployed: str,
    api: kubernetes.client.ApiClient,
    backend: SimWorkloadBackend,
    logs: Logs,
) -> None:
    core = kubernetes.client.CoreV1Api(api)
    apps = kubernetes.client.AppsV1Api(api)
    custom = kubernetes.client.CustomObjectsApi(api)
    objects = [
        custom.get_namespaced_custom_object(*RP, "three"),
        *core.list_namespaced_config_map(NS).items,
        *core.list_namespaced_event(NS).items,
        *apps.list_namespaced_deployment(NS).items,
        *core.list_namespaced_pod(NS).items,
    ]
    text = json.dumps(api.sanitize_for_serialization(objects))
    assert backend.tierwise is not None
    routers = core.list_namespaced_pod(NS, label_selector="app.kubernetes.io/component=router")
    assert routers.items
    for pod in routers.items:
        text += backend.tierwise.logs(NS, pod.metadata.name)
    text += "\n".join(logs.lines)
    for key in (FIRST_KEY, SECOND_KEY):
        assert key not in text
