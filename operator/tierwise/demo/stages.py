"""The demo's start-up, stage by stage: cluster, operator, manifests, and the wait until the
operator has made them real.

Why it exists: before any traffic the demo brings up what a platform team would have —
a cluster with the CRDs, the operator watching a namespace, the manifests applied — and
waits for the operator's own answer that it is ready: each ModelDeployment's status and
the RoutingPolicy's ``Ready`` condition, which says its router serves the current policy
document. :mod:`tierwise.demo.run` strings these together.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

import kubernetes.client

from tierwise.api.common import GROUP, VERSION
from tierwise.demo.children import ChildProcess
from tierwise.demo.manifests import DemoError, Manifests, read_rows
from tierwise.demo.summary import DeploymentRow, PolicyView
from tierwise.local.cluster import EmulatedCluster
from tierwise.local.sim_workloads import SimWorkloadBackend
from tierwise.manifests.labels import label_value
from tierwise.manifests.router_names import ROUTING_POLICY_LABEL

Emit = Callable[[str], None]
AUTOSCALE_TICK_S = 0.5
"""How often the operator's autoscaling timer wakes (each ModelDeployment still decides on
its own ``spec.autoscaling.interval``; the demo's manifests use 1s)."""


@dataclass
class Running:
    """What the stages share while the demo is up."""

    workdir: Path
    manifests: Manifests
    namespace: str
    api: kubernetes.client.ApiClient
    cluster: EmulatedCluster
    backend: SimWorkloadBackend
    operator: ChildProcess | None = None
    router_url: str = ""
    frontier_url: str = ""

    def router_pods(self) -> list[str]:
        """Names of the policy's router pods (the operator deploys them)."""
        selector = f"{ROUTING_POLICY_LABEL}={label_value(self.manifests.policy_name)}"
        pods = kubernetes.client.CoreV1Api(self.api).list_namespaced_pod(
            self.namespace, label_selector=f"{selector},app.kubernetes.io/component=router"
        )
        return sorted(str(p.metadata.name) for p in pods.items if p.metadata is not None)

    def router_log(self, chars: int = 1500) -> str:
        tierwise = self.backend.tierwise
        if tierwise is None:
            return ""
        texts = []
        for pod in self.router_pods():
            try:
                texts.append(f"--- {pod}\n" + tierwise.logs(self.namespace, pod)[-chars:])
            except KeyError:
                continue
        return "\n".join(texts)

    def logs(self) -> str:
        """The operator's and the router's log tails (for a failure message)."""
        operator = self.operator.tail() if self.operator is not None else ""
        return f"operator log:\n{operator}\nrouter log:\n{self.router_log() or '(none)'}"


def operator_args(kubeconfig: Path, namespace: str) -> list[str]:
    """``tierwise operator`` as the demo runs it: both kinds reconciled, autoscaling on,
    engine and router pods read at the local port the embedded cluster gives them."""
    return [
        "operator",
        "--kubeconfig",
        str(kubeconfig),
        "-n",
        namespace,
        "--pod-metrics-address",
        "local-port",
        "--autoscale-tick",
        str(AUTOSCALE_TICK_S),
    ]


def policy_status(run: Running) -> dict[str, Any]:
    custom = kubernetes.client.CustomObjectsApi(run.api)
    body = cast(
        "dict[str, Any]",
        custom.get_namespaced_custom_object(
            GROUP, VERSION, run.namespace, "routingpolicies", run.manifests.policy_name
        ),
    )
    return dict(body.get("status") or {})


def _settled(rows: Sequence[DeploymentRow], policy: PolicyView) -> bool:
    serving = all(
        r.min_replicas == 0 or (r.phase == "Ready" and 0 < r.desired <= r.ready) for r in rows
    )
    return serving and policy.ready == "True"


def wait_settled(run: Running, *, timeout_s: float, emit: Emit) -> None:
    """Poll until every ModelDeployment that keeps replicas is Ready and the policy is
    Ready, printing each change of what the operator reports."""
    deadline = time.monotonic() + timeout_s
    seen: dict[str, object] = {}
    while True:
        if run.operator is not None:
            run.operator.check()
        rows = read_rows(run.api, run.namespace, run.manifests)
        policy = PolicyView.from_status(run.manifests.policy_name, policy_status(run))
        for r in rows:
            if r.phase != "-" and seen.get(r.name) != (r.phase, r.ready, r.desired):
                seen[r.name] = (r.phase, r.ready, r.desired)
                emit(f"      ModelDeployment {r.name}: {r.phase}, {r.ready}/{r.desired} ready")
        said = (policy.ready, policy.reason, policy.ready_tiers, policy.ready_routers)
        if policy.reason and seen.get("policy") != said:
            seen["policy"] = said
            emit(
                f"      RoutingPolicy {policy.name}: Ready={policy.ready} ({policy.reason}), "
                f"tiers {policy.ready_tiers or '-'}, router {policy.ready_routers or '-'}"
            )
        if _settled(rows, policy):
            return
        if time.monotonic() > deadline:
            raise DemoError(f"not ready after {timeout_s:.0f}s: {seen}\n{run.logs()}")
        time.sleep(0.2)


def wait_router(run: Running, get: Callable[[str], int], timeout_s: float = 30.0) -> None:
    """Until the router answers ``/readyz`` through its Service."""
    deadline = time.monotonic() + timeout_s
    while get(run.router_url + "/readyz") != 200:
        if time.monotonic() > deadline:
            raise DemoError(f"the router at {run.router_url} is not ready:\n{run.logs()}")
        time.sleep(0.1)
