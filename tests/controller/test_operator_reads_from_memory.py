"""The operator watches only what Tierwise owns and reconciles from memory.

On a busy cluster the API server must not stream every Pod and Deployment to the operator,
and a reconcile must not LIST or GET: children and pods come from label-selected watches
(tierwise.controller.cluster_view), the ModelDeployment from kopf's watch. Every request
the operator makes is recorded at the emulated API server (told apart from this test's own
requests by its HTTP client). Wall time about 15 s.
"""

from __future__ import annotations

import random
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import kmock
import kubernetes.client
import pytest
from controller_helpers import md_body, operator_options

from tierwise.controller.runner import OperatorThread
from tierwise.local.cluster import EmulatedCluster
from tierwise.local.testing import wait_for

GROUP, VERSION, PLURAL = "tierwise.dev", "v1alpha1", "modeldeployments"


@dataclass(frozen=True)
class Call:
    method: str
    path: str
    params: dict[str, str]
    accept: str

    @property
    def verb(self) -> str:
        if self.method != "GET":
            return self.method
        if self.params.get("watch") in ("true", "1"):
            return "WATCH"
        return "GET" if _is_object(self.path) else "LIST"


def _is_object(path: str) -> bool:
    parts = path.strip("/").split("/")
    after = parts[parts.index("namespaces") + 2 :] if "namespaces" in parts else []
    return len(after) >= 2  # plural/name[/subresource]


@dataclass
class Recorder:
    """The emulated API server's hook: records the operator's requests; optionally fails
    a fraction of its writes with 409, 500 or 503."""

    write_faults: float = 0.0
    calls: list[Call] = field(default_factory=list)
    faults: int = 0
    _random: random.Random = field(default_factory=lambda: random.Random(14))
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def __call__(self, request: kmock.Request) -> int | None:
        headers = {k.lower(): str(v) for k, v in request.headers.items()}
        if "aiohttp" not in headers.get("user-agent", ""):
            return None  # this test's own client
        method = str(request.method.value).upper()
        call = Call(method, request.url.path, dict(request.params), headers.get("accept", ""))
        with self._lock:
            self.calls.append(call)
            if method != "GET" and self._random.random() < self.write_faults:
                self.faults += 1
                return self._random.choice((409, 500, 503))
        return None

    def since(self, start: int) -> list[Call]:
        with self._lock:
            return list(self.calls[start:])


@pytest.fixture
def recorder(cluster: EmulatedCluster) -> Recorder:
    hook = Recorder()
    cluster.server.fault = hook
    return hook


@pytest.fixture
def recorded_operator(cluster: EmulatedCluster, recorder: Recorder) -> Iterator[OperatorThread]:
    with OperatorThread(operator_options(cluster)) as running:
        yield running


def _ready_at(custom: kubernetes.client.CustomObjectsApi, name: str, generation: int) -> bool:
    body: dict[str, Any] = custom.get_namespaced_custom_object(
        GROUP, VERSION, "models", PLURAL, name
    )
    status = body.get("status") or {}
    return status.get("phase") == "Ready" and status.get("observedGeneration") == generation


def test_a_spec_change_costs_writes_only(
    recorded_operator: OperatorThread,
    recorder: Recorder,
    custom: kubernetes.client.CustomObjectsApi,
    core: kubernetes.client.CoreV1Api,
) -> None:
    core.create_namespaced_secret(
        "models", {"metadata": {"name": "hf-token"}, "stringData": {"token": "s3cret"}}
    )
    spec = {
        "model": {
            "uri": "hf://Qwen/Qwen2.5-0.5B",
            "tokenSecretRef": {"name": "hf-token", "key": "token"},
        },
        "engine": {"name": "vllm"},
    }
    custom.create_namespaced_custom_object(GROUP, VERSION, "models", PLURAL, md_body(spec=spec))
    wait_for(lambda: _ready_at(custom, "qwen", 1), timeout=20, message="Ready at generation 1")
    secret_reads = [c for c in recorder.since(0) if "/secrets/" in c.path]
    assert secret_reads, "the token Secret's existence was checked"
    assert all("as=PartialObjectMetadata" in c.accept for c in secret_reads), secret_reads

    start = len(recorder.since(0))
    custom.patch_namespaced_custom_object(
        GROUP, VERSION, "models", PLURAL, "qwen", {"spec": {"model": {"uri": "hf://Qwen/Qwen2.5-1.5B"}}}
    )
    wait_for(lambda: _ready_at(custom, "qwen", 2), timeout=20, message="Ready at generation 2")
    calls = recorder.since(start)
    reads = [f"{c.verb} {c.path}" for c in calls if c.verb in ("GET", "LIST")]
    assert reads == [], "a reconcile read the API server instead of its memory"
    assert any(c.verb == "PATCH" and "/deployments/" in c.path for c in calls)


def test_pods_and_deployments_are_watched_by_tierwise_labels_only(
    recorded_operator: OperatorThread,
    recorder: Recorder,
    custom: kubernetes.client.CustomObjectsApi,
) -> None:
    custom.create_namespaced_custom_object(GROUP, VERSION, "models", PLURAL, md_body())
    wait_for(lambda: _ready_at(custom, "qwen", 1), timeout=20, message="Ready")
    opened = [
        c for c in recorder.since(0) if c.verb in ("LIST", "WATCH") and "/apps/v1" in c.path
    ]
    opened += [
        c for c in recorder.since(0) if c.verb in ("LIST", "WATCH") and c.path.endswith("/pods")
    ]
    assert {c.verb for c in opened} == {"LIST", "WATCH"}
    unselected = [c.path for c in opened if "tierwise" not in c.params.get("labelSelector", "")]
    assert unselected == [], "a Pod or Deployment watch without Tierwise's label selector"


def test_every_object_becomes_ready_despite_failing_writes(
    cluster: EmulatedCluster, custom: kubernetes.client.CustomObjectsApi
) -> None:
    """A fifth of the operator's writes (kopf's included) fail; nothing periodic lists
    the ModelDeployments any more, so the retries and the watchdog must bring each one."""
    recorder = Recorder(write_faults=0.2)
    cluster.server.fault = recorder
    names = [f"m{i}" for i in range(8)]
    with OperatorThread(operator_options(cluster)) as operator:
        assert operator.reconciler is not None
        operator.reconciler.resync_s = 0.5
        for name in names:
            custom.create_namespaced_custom_object(
                GROUP, VERSION, "models", PLURAL, md_body(name)
            )
        wait_for(
            lambda: all(_ready_at(custom, n, 1) for n in names),
            timeout=60,
            message="every ModelDeployment Ready despite write faults",
        )
    assert recorder.faults > 0
