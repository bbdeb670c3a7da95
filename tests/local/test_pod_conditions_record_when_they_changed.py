"""A pod's conditions carry ``lastTransitionTime``, kept while the status holds and moved
when it flips, as kubelet writes them: the autoscaler measures a replica's cold start from
the pod's creation to its Ready transition. Pure; instant."""

from __future__ import annotations

from typing import Any

from tierwise.local.workloads import PodEndpoint, PodHealth, PodState, pod_status

TEMPLATE: dict[str, Any] = {"spec": {"containers": [{"name": "engine"}]}}
ENDPOINT = PodEndpoint("127.0.0.1", 8000)


def ready_condition(status: dict[str, Any]) -> dict[str, Any]:
    found: dict[str, Any] = next(c for c in status["conditions"] if c["type"] == "Ready")
    return found


def test_every_condition_says_when_it_last_changed() -> None:
    status = pod_status(PodState(PodHealth.STARTING), ENDPOINT, TEMPLATE, {})
    assert {c["type"] for c in status["conditions"]} == {"PodScheduled", "Ready",
                                                         "ContainersReady"}
    assert all(c["lastTransitionTime"].endswith("Z") for c in status["conditions"])


def test_an_unchanged_status_keeps_its_time_and_a_flip_moves_it() -> None:
    old = "2020-01-01T00:00:00Z"
    starting = pod_status(PodState(PodHealth.STARTING), ENDPOINT, TEMPLATE, {})
    for condition in starting["conditions"]:
        condition["lastTransitionTime"] = old
    still = pod_status(PodState(PodHealth.STARTING), ENDPOINT, TEMPLATE, starting)
    assert ready_condition(still) == {"type": "Ready", "status": "False",
                                      "lastTransitionTime": old}
    assert still == pod_status(PodState(PodHealth.STARTING), ENDPOINT, TEMPLATE, still)
    ready = pod_status(PodState(PodHealth.READY), ENDPOINT, TEMPLATE, still)
    assert ready_condition(ready)["status"] == "True"
    assert ready_condition(ready)["lastTransitionTime"] > old
    scheduled = next(c for c in ready["conditions"] if c["type"] == "PodScheduled")
    assert scheduled["lastTransitionTime"] == old
