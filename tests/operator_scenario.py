"""One representative life of the operator on the embedded cluster, with every API request
recorded: what the chart's RBAC is derived from, and what the GitOps tests read.

Two operator replicas run with kopf peering, as the chart deploys them, authenticated with
their own token (so their requests are told apart from the routers' and the test's own),
serving the admission webhooks with the certificate the chart generates. The scenario:

1. the chart's kopf peering CRDs and peering object, the ModelDeployment and RoutingPolicy
   CRDs, Secrets (a Hugging Face token, a frontier key) and a PersistentVolumeClaim;
2. ModelDeployments ``chat`` (autoscaled, token Secret, PodMonitor) and ``weights``
   (pvc:// weights, fixed replicas); RoutingPolicies ``gateway`` (a router Deployment the
   cluster runs as a real process, an external tier with its key Secret) and ``sidecar``;
3. the webhooks over HTTPS: a refused ModelDeployment, an accepted RoutingPolicy, a pod
   labelled for the sidecar policy (injected); then that pod created without the sidecar
   (the policy binds its ServiceAccount and reports it);
4. autoscaling: up to 2 replicas, down to 1 (pod deletion costs), to zero, and back from
   zero for a request the router holds (the operator reads the router's demand);
5. the working replica stops; the waiting one takes over (resume), deletes ``weights``'
   children when it is deleted, and forgets the deleted ``sidecar`` policy.

About a minute on two cores.
"""

from __future__ import annotations

import base64
import concurrent.futures
import http.client
import json
import socket
import ssl
import tempfile
import time
import urllib.request
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import kubernetes.client
import yaml

from chart_support import NAMESPACE, chart_crds, find, render
from rbac_model import Attributes, Grant, allowed, attributes, grants_for
from scenario_objects import (
    APP_POD,
    BROKEN,
    CHAT,
    DANGLING,
    GATEWAY,
    GROUP,
    NS,
    SIDECAR,
    VERSION,
    WEIGHTS,
    md,
)
from tierwise.controller.autoscaling import AutoscalerSettings
from tierwise.controller.cli import startup_priority
from tierwise.controller.kube import load_config
from tierwise.controller.pods import PodAddress
from tierwise.controller.runner import OperatorOptions, OperatorThread
from tierwise.controller.webhooks import WebhookSettings
from tierwise.local.cluster import EmulatedCluster
from tierwise.local.processes import free_port
from tierwise.local.resources import ResourceSpec
from tierwise.local.sim_workloads import SimWorkloadBackend
from tierwise.local.testing import wait_for

OPERATOR_TOKEN = "tierwise-operator-service-account-token"
ROUTER_TOKEN = "emulated"
"""The embedded cluster's own kubeconfig token, which router pods get."""
@dataclass(frozen=True)
class Call:
    method: str
    path: str
    params: Mapping[str, str]
    body: Any


@dataclass
class Recording:
    """What the scenario saw."""

    chart: list[dict[str, Any]]
    namespaces: tuple[str, ...] = ()
    """What the operator watched (empty: the whole cluster)."""
    operator_calls: list[Call] = field(default_factory=list)
    denied: list[Attributes] = field(default_factory=list)
    """Operator requests the chart's RBAC refused (the gate answered 403)."""
    router_calls: list[Call] = field(default_factory=list)
    applied_specs: dict[tuple[str, str], Any] = field(default_factory=dict)
    final_specs: dict[tuple[str, str], Any] = field(default_factory=dict)
    standby_writes_while_leader_lived: int = -1
    takeover_writes: int = -1
    webhook_answers: dict[str, dict[str, Any]] = field(default_factory=dict)
    held_request_answered: bool = False
    deletion_costs_seen: bool = False
    snapshots: dict[str, dict[str, Any]] = field(default_factory=dict)
    """Whole objects at known states, as GitOps tools read them (tests/gitops)."""
    failures: list[str] = field(default_factory=list)
    """Steps that did not complete (a refused request stalls the operator): the run goes
    on, so the RBAC tests can still name what was refused."""


def _kubeconfig(cluster: EmulatedCluster, folder: Path) -> str:
    config = yaml.safe_load(cluster.kubeconfig_path.read_text())
    config["users"][0]["user"] = {"token": OPERATOR_TOKEN}
    path = folder / "operator-kubeconfig"
    path.write_text(yaml.safe_dump(config))
    return str(path)


def _tls(chart: list[dict[str, Any]], folder: Path) -> tuple[Path, Path, ssl.SSLContext, str]:
    """The chart-generated certificate and key as files, and a client trusting the CA the
    chart puts in the webhook configurations (checked against the Service's DNS name)."""
    secret = find(chart, "Secret", "tierwise-webhook-tls")["data"]
    cert, key = folder / "tls.crt", folder / "tls.key"
    cert.write_bytes(base64.b64decode(secret["tls.crt"]))
    key.write_bytes(base64.b64decode(secret["tls.key"]))
    config = find(chart, "ValidatingWebhookConfiguration")
    ca = base64.b64decode(config["webhooks"][0]["clientConfig"]["caBundle"]).decode()
    service = config["webhooks"][0]["clientConfig"]["service"]
    return cert, key, ssl.create_default_context(cadata=ca), f"{service['name']}.{NAMESPACE}.svc"


class RbacGate:
    """The API server's authorizer for the operator's token: the chart's rules, nothing more
    (403 otherwise, remembered); every other token passes (the test, the routers)."""

    def __init__(self, grants: list[Grant]) -> None:
        self.grants = grants
        self.denied: list[Attributes] = []

    def __call__(self, request: Any) -> int | None:
        if _token(request) != OPERATOR_TOKEN:
            return None
        attrs = attributes(str(request.method.value), request.url.path, dict(request.params))
        if attrs is None or allowed(self.grants, attrs):
            return None
        self.denied.append(attrs)
        return 403


def _token(request: Any) -> str:
    auth = next((v for k, v in request.headers.items() if k.lower() == "authorization"), "")
    return str(auth).removeprefix("Bearer ")


def _options(
    kubeconfig: str, cert: Path, key: Path, port: int, namespaces: tuple[str, ...]
) -> OperatorOptions:
    autoscaler = AutoscalerSettings(
        tick_s=0.25, pod_address=PodAddress.LOCAL_PORT, scrape_timeout_s=1.0, status_refresh_s=2.0
    )
    webhook = WebhookSettings(port=port, addr="127.0.0.1", certfile=str(cert), keyfile=str(key))
    return OperatorOptions(
        kube=load_config(kubeconfig),
        debounce_s=0.05,
        autoscaler=autoscaler,
        webhook=webhook,
        namespaces=namespaces,
        peering="tierwise",
        priority=startup_priority(),
    )


class Scenario:
    """Runs the steps of the module docstring against one cluster (see :func:`run`)."""

    def __init__(
        self,
        cluster: EmulatedCluster,
        folder: Path,
        chart: list[dict[str, Any]],
        namespaces: tuple[str, ...],
    ) -> None:
        self.cluster = cluster
        self.api = cluster.api_client()
        self.custom = kubernetes.client.CustomObjectsApi(self.api)
        self.core = kubernetes.client.CoreV1Api(self.api)
        self.apps = kubernetes.client.AppsV1Api(self.api)
        self.recording = Recording(chart=chart, namespaces=namespaces)
        self.gate = RbacGate(grants_for(chart, f"{NAMESPACE}:tierwise-operator"))
        self.kubeconfig = _kubeconfig(cluster, folder)
        self.cert, self.key, self.tls, self.webhook_host = _tls(chart, folder)
        self.webhook_port = free_port()

    def options(self, port: int) -> OperatorOptions:
        return _options(self.kubeconfig, self.cert, self.key, port, self.recording.namespaces)

    def attempt(self, step: Callable[[], None]) -> None:
        try:
            step()
        except (TimeoutError, concurrent.futures.TimeoutError, OSError) as error:
            self.recording.failures.append(f"{getattr(step, '__name__', 'take_over')}: {error}")

    # -- reads -------------------------------------------------------------------------------
    def body(self, plural: str, name: str) -> dict[str, Any]:
        found: dict[str, Any] = self.custom.get_namespaced_custom_object(
            GROUP, VERSION, NS, plural, name
        )
        return found

    def deployment(self, name: str) -> Any:
        found = self.apps.list_namespaced_deployment(NS, field_selector=f"metadata.name={name}")
        return found.items[0] if found.items else None

    def replicas(self, name: str) -> int | None:
        deployment = self.deployment(name)
        return None if deployment is None else int(deployment.spec.replicas)

    def ready(self, name: str) -> int:
        deployment = self.deployment(name)
        status = None if deployment is None else deployment.status
        return int(status.ready_replicas or 0) if status is not None else 0

    def status(self, plural: str, name: str) -> dict[str, Any]:
        return dict(self.body(plural, name).get("status") or {})

    # -- steps -------------------------------------------------------------------------------
    def install(self) -> None:
        # The emulator serves no PersistentVolumeClaims by default; a pvc:// model needs one.
        self.cluster.server.register(
            ResourceSpec("", "v1", "persistentvolumeclaims", "PersistentVolumeClaim")
        )
        self.cluster.install_crds(chart_crds())
        self.cluster.install_crd_files(sorted((Path(__file__).parents[1] / "crds").glob("*")))
        for peering in self.recording.chart:
            if peering["kind"] == "ClusterKopfPeering":
                self.custom.create_cluster_custom_object(
                    "kopf.dev", "v1", "clusterkopfpeerings", peering
                )
            elif peering["kind"] == "KopfPeering":
                namespace = peering["metadata"]["namespace"]
                self.custom.create_namespaced_custom_object(
                    "kopf.dev", "v1", namespace, "kopfpeerings", peering
                )
        self.cluster.server.fault = self.gate
        for name, data in (("hf-token", {"token": "hf_x"}), ("frontier-key", {"api-key": "k"})):
            self.core.create_namespaced_secret(
                NS, {"metadata": {"name": name}, "stringData": data}
            )
        claim = {"accessModes": ["ReadOnlyMany"], "resources": {"requests": {"storage": "1Gi"}}}
        self.core.create_namespaced_persistent_volume_claim(
            NS, {"metadata": {"name": "weights"}, "spec": claim}
        )

    def apply_workloads(self) -> None:
        for plural, body in (
            ("modeldeployments", CHAT),
            ("modeldeployments", WEIGHTS),
            ("routingpolicies", GATEWAY),
            ("routingpolicies", SIDECAR),
            ("modeldeployments", BROKEN),
            ("routingpolicies", DANGLING),
        ):
            created = self.custom.create_namespaced_custom_object(GROUP, VERSION, NS, plural, body)
            self.recording.applied_specs[(plural, body["metadata"]["name"])] = created["spec"]
        wait_for(lambda: self.ready("chat") == 1, timeout=60, message="chat has a ready replica")
        wait_for(
            lambda: self.status("routingpolicies", "gateway").get("routerReadyReplicas") == 1,
            timeout=60,
            message="the gateway's router is ready",
        )
        self.snapshot("modeldeployments", "chat", "md-ready", reason="AllReplicasReady")
        self.snapshot("routingpolicies", "gateway", "rp-ready", reason="RouterReady")
        self.snapshot("modeldeployments", "broken", "md-invalid-spec", reason="InvalidSpec")
        self.snapshot("routingpolicies", "dangling", "rp-missing-model-deployment",
                      reason="MissingModelDeployment")  # fmt: skip

    def snapshot(self, plural: str, name: str, label: str, *, reason: str | None = None) -> None:
        """The whole object as a GitOps tool reads it, once its status for the current
        generation says ``reason`` (any status with conditions when None)."""

        def settled() -> dict[str, Any] | None:
            body = self.body(plural, name)
            status = body.get("status") or {}
            conditions = status.get("conditions") or []
            if status.get("observedGeneration") != body["metadata"].get("generation"):
                return None
            if reason is None or any(c.get("reason") == reason for c in conditions):
                return body if conditions else None
            return None

        self.recording.snapshots[label] = wait_for(
            settled, timeout=30, message=f"{plural}/{name} with {reason or 'a status'}"
        )

    def review(self, handler: str, obj: dict[str, Any], resource: tuple[str, str, str]) -> None:
        group, version, plural = resource
        document = {"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "request": {
            "uid": "00000000-0000-4000-8000-000000000011",
            "kind": {"group": group, "version": version, "kind": obj["kind"]},
            "resource": {"group": group, "version": version, "resource": plural},
            "namespace": NS, "operation": "CREATE", "object": obj, "oldObject": None,
            "userInfo": {"username": "someone"}, "dryRun": False}}  # fmt: skip
        answer = post_tls(self.webhook_port, self.webhook_host, self.tls, f"/{handler}",
                          json.dumps(document).encode())  # fmt: skip
        self.recording.webhook_answers[handler] = answer["response"]

    def webhooks(self) -> None:
        bad = md("bad", {**CHAT["spec"], "engine": {"name": "vllm", "args": ["--port", "1"]}})
        self.review("validate-modeldeployment", bad, (GROUP, VERSION, "modeldeployments"))
        self.review("validate-routingpolicy", GATEWAY, (GROUP, VERSION, "routingpolicies"))
        self.review("inject-router", APP_POD, ("", "v1", "pods"))
        self.core.create_namespaced_pod(NS, APP_POD)
        wait_for(
            lambda: any(
                c.get("reason") == "SidecarNotInjected"
                for c in self.status("routingpolicies", "sidecar").get("conditions") or []
            ),
            timeout=30,
            message="the sidecar policy reports the pod without its sidecar",
        )
        self.snapshot("routingpolicies", "sidecar", "rp-sidecar-not-injected",
                      reason="SidecarNotInjected")  # fmt: skip

    def autoscale(self) -> None:
        def limits(low: int, high: int) -> None:
            patch = {"spec": {"replicas": {"min": low, "max": high}}}
            self.custom.patch_namespaced_custom_object(
                GROUP, VERSION, NS, "modeldeployments", "chat", patch
            )
            spec = self.recording.applied_specs[("modeldeployments", "chat")]
            spec["replicas"] = {"min": low, "max": high}

        limits(2, 3)
        wait_for(lambda: self.ready("chat") == 2, timeout=60, message="chat scaled up to 2")
        limits(1, 1)
        wait_for(lambda: self.replicas("chat") == 1, timeout=30, message="chat scaled down to 1")
        selector = "tierwise.dev/model-deployment=chat"
        pods = self.core.list_namespaced_pod(NS, label_selector=selector)
        self.recording.deletion_costs_seen = any(
            "controller.kubernetes.io/pod-deletion-cost" in (p.metadata.annotations or {})
            for p in pods.items
        )
        limits(0, 1)
        wait_for(lambda: self.replicas("chat") == 0, timeout=30, message="chat scaled to zero")
        wait_for(lambda: self.ready("chat") == 0, timeout=30, message="no chat replica left")
        self.snapshot("modeldeployments", "chat", "md-scaled-to-zero", reason="ScaledToZero")
        router = self.cluster.service_url(NS, "gateway-router")
        with concurrent.futures.ThreadPoolExecutor(1) as pool:
            answer = pool.submit(_ask, router)
            self.recording.held_request_answered = answer.result(timeout=60) == 200

    def gateway_to_sidecar(self) -> None:
        """The gateway policy switches to sidecar mode: its router Deployment, Service and
        ServiceAccount are no longer wanted and are deleted."""
        patch = {"spec": {"router": {"mode": "sidecar"}}}
        self.custom.patch_namespaced_custom_object(
            GROUP, VERSION, NS, "routingpolicies", "gateway", patch
        )
        self.recording.applied_specs[("routingpolicies", "gateway")]["router"]["mode"] = "sidecar"
        wait_for(lambda: self.deployment("gateway-router") is None, timeout=30,
                 message="the gateway's router Deployment is deleted")  # fmt: skip

    def take_over(self, leader: OperatorThread, standby: OperatorThread) -> None:
        self.recording.standby_writes_while_leader_lived = standby.writes
        leader.__exit__(None, None, None)
        before = standby.writes
        delete = self.custom.delete_namespaced_custom_object
        delete(GROUP, VERSION, NS, "modeldeployments", "weights")
        delete(GROUP, VERSION, NS, "routingpolicies", "sidecar")

        def gone() -> bool:
            names = {o["metadata"]["name"] for o in self.custom.list_namespaced_custom_object(
                GROUP, VERSION, NS, "modeldeployments")["items"]}  # fmt: skip
            return "weights" not in names

        wait_for(gone, timeout=60, message="the standby took over and deleted weights")
        self.recording.takeover_writes = standby.writes - before

    def finish(self) -> None:
        for plural in ("modeldeployments", "routingpolicies"):
            listed = self.custom.list_namespaced_custom_object(GROUP, VERSION, NS, plural)
            for item in listed["items"]:
                self.recording.final_specs[(plural, item["metadata"]["name"])] = item.get("spec")
        self.recording.denied = list(self.gate.denied)
        for request in self.cluster.server:
            token = _token(request)
            body = request.data
            if body is None and request.text:
                body = yaml.safe_load(request.text)
            call = Call(str(request.method.value).upper(), request.url.path,
                        dict(request.params), body)  # fmt: skip
            if token == OPERATOR_TOKEN:
                self.recording.operator_calls.append(call)
            elif token == ROUTER_TOKEN:
                self.recording.router_calls.append(call)


def post_tls(port: int, server_name: str, context: ssl.SSLContext, path: str, body: bytes) -> Any:
    """POST over HTTPS to 127.0.0.1, checking the certificate against ``server_name`` (the
    Service's DNS name the API server would call), as the API server calls a webhook."""
    raw = socket.create_connection(("127.0.0.1", port), timeout=10)
    with context.wrap_socket(raw, server_hostname=server_name) as tls:
        connection = http.client.HTTPConnection(server_name)
        connection.sock = tls
        connection.request("POST", path, body=body, headers={"Content-Type": "application/json"})
        return json.loads(connection.getresponse().read())


def _ask(router: str) -> int:
    body = json.dumps({"model": "auto", "messages": [{"role": "user", "content": "wake ☀"}],
                       "max_tokens": 4}).encode()  # fmt: skip
    request = urllib.request.Request(
        router + "/v1/chat/completions", data=body, headers={"content-type": "application/json"}
    )
    with urllib.request.urlopen(request, timeout=50) as response:
        return int(response.status)


def run(values: Mapping[str, Any] | None = None) -> Recording:
    """The whole scenario with the chart rendered from ``values``; what happened."""
    chart = render(values)
    watched = tuple(((values or {}).get("operator") or {}).get("watchNamespaces") or ())
    namespaces = tuple(dict.fromkeys((NAMESPACE, NS, "elsewhere", *watched)))
    with (
        tempfile.TemporaryDirectory(prefix="tierwise-scenario-") as tmp,
        EmulatedCluster(workloads=SimWorkloadBackend(), namespaces=namespaces) as cluster,
    ):
        scenario = Scenario(cluster, Path(tmp), chart, watched)
        try:
            scenario.install()
            options = scenario.options
            with OperatorThread(options(scenario.webhook_port)) as leader:
                time.sleep(0.01)  # a later start: a lower priority
                with OperatorThread(options(free_port())) as standby:
                    for step in (scenario.apply_workloads, scenario.webhooks,
                                 scenario.autoscale, scenario.gateway_to_sidecar,
                                 lambda: scenario.take_over(leader, standby)):  # fmt: skip
                        scenario.attempt(step)
                    scenario.finish()
        finally:
            scenario.api.close()
    return scenario.recording
