"""The router objects follow the policy: which exist, their names and labels, the gateway
pod's command, probes, drain and security, and the URL applications call."""

from __future__ import annotations

import re
from importlib import metadata

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from router_helpers import (
    EXAMPLES,
    OWNER_UID,
    ROUTER_KINDS,
    by_kind,
    load_inputs,
    routing_policies,
)

from tierwise.api.router_config import dump_config
from tierwise.api.routing_policy import RouterMode, RoutingPolicy
from tierwise.manifests.router import (
    RouterRenderSettings,
    render_routing_policy,
    router_endpoint_url,
    router_object_names,
    router_service_name,
    stale_router_objects,
)
from tierwise.manifests.router_config import router_config

ALL_KINDS = set(ROUTER_KINDS)
GATEWAY_ONLY = {"ServiceAccount", "Deployment", "Service", "PodDisruptionBudget", "PodMonitor"}
ACCOUNTS = st.lists(st.sampled_from(["web", "batch"]), max_size=3)
RFC1035 = re.compile(r"^[a-z]([-a-z0-9]*[a-z0-9])?$")


def three_tier() -> tuple[RoutingPolicy, list[dict[str, object]]]:
    inputs = load_inputs(EXAMPLES / "03-three-tier-routing")
    return inputs.policy, inputs.render(owner_uid=OWNER_UID)


@settings(max_examples=80, deadline=None)
@given(routing_policies(), st.booleans(), ACCOUNTS)
def test_object_names_list_what_is_rendered_and_stale_ones_the_rest(
    rp: RoutingPolicy, pod_monitor: bool, accounts: list[str]
) -> None:
    chosen = RouterRenderSettings(pod_monitor=pod_monitor)
    objects = render_routing_policy(
        rp, router_config(rp, {}), settings=chosen, sidecar_service_accounts=accounts
    )
    wanted = router_object_names(rp, settings=chosen, sidecar_service_accounts=accounts)
    stale = stale_router_objects(rp, settings=chosen, sidecar_service_accounts=accounts)
    assert [(r.api_version, r.kind, r.name) for r in wanted] == [
        (o["apiVersion"], o["kind"], o["metadata"]["name"]) for o in objects
    ]
    assert {r.kind for r in wanted} | {r.kind for r in stale} == ALL_KINDS
    assert not {r.kind for r in wanted} & {r.kind for r in stale}


@settings(max_examples=80, deadline=None)
@given(routing_policies(), st.booleans(), ACCOUNTS)
def test_which_objects_exist(rp: RoutingPolicy, pod_monitor: bool, accounts: list[str]) -> None:
    chosen = RouterRenderSettings(pod_monitor=pod_monitor)
    kinds = [
        o["kind"]
        for o in render_routing_policy(
            rp, router_config(rp, {}), settings=chosen, sidecar_service_accounts=accounts
        )
    ]
    gateway = rp.spec.router.mode == RouterMode.GATEWAY
    assert ("PodDisruptionBudget" in kinds) == (gateway and rp.spec.router.replicas > 1)
    assert ("PodMonitor" in kinds) == (gateway and pod_monitor)
    assert ("Deployment" in kinds) == gateway
    assert ("RoleBinding" in kinds) == (gateway or bool(accounts))
    assert kinds[:1] == ["ConfigMap"]


def test_switching_to_sidecar_makes_every_gateway_object_stale() -> None:
    rp, _ = three_tier()
    raw = rp.model_dump(mode="json", by_alias=True, exclude_none=True)
    raw["spec"]["router"]["mode"] = "sidecar"
    sidecar = RoutingPolicy.model_validate(raw)
    assert {r.kind for r in stale_router_objects(sidecar)} == GATEWAY_ONLY | {"RoleBinding"}
    assert {r.kind for r in stale_router_objects(rp)} == {"PodMonitor"}
    with_accounts = stale_router_objects(sidecar, sidecar_service_accounts=["web"])
    assert {r.kind for r in with_accounts} == GATEWAY_ONLY


@settings(max_examples=60, deadline=None)
@given(routing_policies())
def test_every_object_and_router_pod_carries_the_router_labels(rp: RoutingPolicy) -> None:
    objects = render_routing_policy(rp, router_config(rp, {}), owner_uid="uid-7")
    for obj in objects:
        labels = obj["metadata"]["labels"]
        assert labels["app.kubernetes.io/name"] == "tierwise-router"
        assert labels["app.kubernetes.io/component"] == "router"
        assert labels["app.kubernetes.io/part-of"] == "tierwise"
        assert labels["app.kubernetes.io/managed-by"] == "tierwise"
        value = labels["tierwise.dev/routing-policy"]
        assert labels["app.kubernetes.io/instance"] == value
        assert len(value) <= 63
        assert value == rp.metadata.name or len(rp.metadata.name) > 63
        (owner,) = obj["metadata"]["ownerReferences"]
        assert (owner["kind"], owner["name"], owner["uid"]) == (
            "RoutingPolicy",
            rp.metadata.name,
            "uid-7",
        )
        assert owner["controller"] is True
        assert obj["metadata"].get("namespace") == rp.metadata.namespace
        assert len(obj["metadata"]["name"]) <= 253
    if rp.spec.router.mode == RouterMode.GATEWAY:
        template = by_kind(objects, "Deployment")["spec"]["template"]
        assert template["metadata"]["labels"] == objects[0]["metadata"]["labels"]
        assert RFC1035.match(by_kind(objects, "Service")["metadata"]["name"])
        assert len(router_service_name(rp)) <= 63


def test_without_an_owner_uid_there_are_no_owner_references() -> None:
    inputs = load_inputs(EXAMPLES / "03-three-tier-routing")
    assert all("ownerReferences" not in o["metadata"] for o in inputs.render())


def test_gateway_container_runs_the_router_the_contract_describes() -> None:
    _, objects = three_tier()
    pod = by_kind(objects, "Deployment")["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    assert container["name"] == "router"
    assert container["command"] == ["tierwise", "router"]
    assert container["args"] == [
        "--config-map",
        "three-tier-router",
        "--config-file",
        "/etc/tierwise/config/policy.json",
        "--discovery",
        "kubernetes",
        "--secrets-dir",
        "/var/run/secrets/tierwise",
        "--host",
        "0.0.0.0",
        "--port",
        "8080",
        "--shutdown-grace",
        "25",
        "--log-level",
        "info",
        "--classifier-dir",
        "/etc/tierwise/classifiers",
    ]
    env = {e["name"]: e["valueFrom"]["fieldRef"]["fieldPath"] for e in container["env"]}
    assert env == {"POD_NAMESPACE": "metadata.namespace", "POD_NAME": "metadata.name"}
    assert container["ports"] == [{"name": "http", "containerPort": 8080, "protocol": "TCP"}]
    mounts = {m["mountPath"]: m for m in container["volumeMounts"]}
    assert mounts["/etc/tierwise/config"]["readOnly"] is True
    # the calibrated tier classifier's ConfigMap, where --classifier-dir finds NAME/KEY
    artifact = mounts["/etc/tierwise/classifiers/three-tier-classifier"]
    assert artifact["readOnly"] is True
    volumes = {v["name"]: v for v in pod["volumes"]}
    assert volumes[mounts["/etc/tierwise/config"]["name"]]["configMap"] == {
        "name": "three-tier-router"
    }
    assert "emptyDir" in volumes[mounts["/tmp"]["name"]]
    assert pod["serviceAccountName"] == by_kind(objects, "ServiceAccount")["metadata"]["name"]


def test_gateway_probes_drain_and_rollout() -> None:
    rp, objects = three_tier()
    deployment = by_kind(objects, "Deployment")
    pod = deployment["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    assert container["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": "http"}
    assert container["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "http"}
    # /readyz needs a healthy backend: a startup probe on it would restart healthy routers.
    assert container["startupProbe"]["httpGet"] == {"path": "/healthz", "port": "http"}
    chosen = RouterRenderSettings()
    assert container["lifecycle"] == {
        "preStop": {"sleep": {"seconds": chosen.pre_stop_sleep_seconds}}
    }
    assert (
        pod["terminationGracePeriodSeconds"]
        > chosen.shutdown_grace_seconds + chosen.pre_stop_sleep_seconds
    )
    assert deployment["spec"]["replicas"] == rp.spec.router.replicas
    assert deployment["spec"]["strategy"]["rollingUpdate"]["maxUnavailable"] == 0
    (spread,) = pod["topologySpreadConstraints"]
    assert spread["whenUnsatisfiable"] == "ScheduleAnyway"
    assert spread["labelSelector"] == deployment["spec"]["selector"]


def test_gateway_pod_runs_restricted() -> None:
    _, objects = three_tier()
    pod = by_kind(objects, "Deployment")["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    security = container["securityContext"]
    assert security["runAsNonRoot"] is True
    assert security["runAsUser"] == 65532
    assert security["readOnlyRootFilesystem"] is True
    assert security["allowPrivilegeEscalation"] is False
    assert security["capabilities"] == {"drop": ["ALL"]}
    assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}


@pytest.mark.parametrize(("cpu", "memory"), [("250m", "256Mi"), ("2", "1Gi")])
def test_resources_requests_equal_limits_from_the_spec(cpu: str, memory: str) -> None:
    rp, _ = three_tier()
    raw = rp.model_dump(mode="json", by_alias=True, exclude_none=True)
    raw["spec"]["router"]["resources"] = {"cpu": cpu, "memory": memory}
    edited = RoutingPolicy.model_validate(raw)
    objects = render_routing_policy(edited, router_config(edited, {}))
    (container,) = by_kind(objects, "Deployment")["spec"]["template"]["spec"]["containers"]
    wanted = {"cpu": cpu, "memory": memory}
    assert container["resources"] == {"requests": wanted, "limits": wanted}


@pytest.mark.parametrize(("workers", "args"), [(1, []), (4, ["--workers", "4"])])
def test_router_workers_come_from_the_spec(workers: int, args: list[str]) -> None:
    rp, _ = three_tier()
    raw = rp.model_dump(mode="json", by_alias=True, exclude_none=True)
    raw["spec"]["router"]["workers"] = workers
    edited = RoutingPolicy.model_validate(raw)
    objects = render_routing_policy(edited, router_config(edited, {}))
    (container,) = by_kind(objects, "Deployment")["spec"]["template"]["spec"]["containers"]
    tail = container["args"][container["args"].index("--classifier-dir") + 2 :]
    assert tail == args


@pytest.mark.parametrize(("kind", "port"), [("ClusterIP", 80), ("LoadBalancer", 443)])
def test_service_type_and_port_come_from_the_spec(kind: str, port: int) -> None:
    rp, _ = three_tier()
    raw = rp.model_dump(mode="json", by_alias=True, exclude_none=True)
    raw["spec"]["router"]["service"] = {"type": kind, "port": port}
    edited = RoutingPolicy.model_validate(raw)
    service = by_kind(render_routing_policy(edited, router_config(edited, {})), "Service")
    assert service["spec"]["type"] == kind
    assert service["spec"]["ports"][0]["port"] == port
    assert service["spec"]["ports"][0]["targetPort"] == "http"


@pytest.mark.parametrize("pod_monitor", [False, True])
def test_metrics_scrape_by_pod_monitor_or_annotations(pod_monitor: bool) -> None:
    inputs = load_inputs(EXAMPLES / "03-three-tier-routing")
    objects = inputs.render(settings=RouterRenderSettings(pod_monitor=pod_monitor))
    annotations = by_kind(objects, "Deployment")["spec"]["template"]["metadata"]["annotations"]
    assert ("prometheus.io/scrape" in annotations) != pod_monitor
    if pod_monitor:
        (endpoint,) = by_kind(objects, "PodMonitor")["spec"]["podMetricsEndpoints"]
        assert (endpoint["port"], endpoint["path"]) == ("http", "/metrics")
    else:
        assert annotations["prometheus.io/port"] == "8080"


def test_configmap_holds_the_policy_document() -> None:
    inputs = load_inputs(EXAMPLES / "03-three-tier-routing")
    rp = inputs.policy
    config = router_config(rp, {md.metadata.name: md for md in inputs.deployments})
    configmap = by_kind(render_routing_policy(rp, config), "ConfigMap")
    assert configmap["data"] == {"policy.json": dump_config(config)}
    assert configmap["metadata"]["annotations"]["tierwise.dev/policy-version"] == config.version


def test_a_document_for_another_policy_or_secrets_folder_is_refused() -> None:
    inputs = load_inputs(EXAMPLES)
    three, demo = (
        next(p for p in inputs.policies if p.metadata.name == n) for n in ("three-tier", "demo")
    )
    with pytest.raises(ValueError, match="'demo', not 'three-tier'"):
        render_routing_policy(three, router_config(demo, {}))
    with pytest.raises(ValueError, match="secretsDir"):
        render_routing_policy(three, router_config(three, {}, secrets_dir="/elsewhere"))


@pytest.mark.parametrize(
    ("mode", "namespace", "url"),
    [
        ("gateway", "models", "http://edge-router.models.svc:80/v1"),
        ("gateway", None, "http://edge-router:80/v1"),
        ("sidecar", "models", "http://localhost:8080/v1"),
    ],
)
def test_endpoint_url(mode: str, namespace: str | None, url: str) -> None:
    meta: dict[str, str] = {"name": "edge"}
    if namespace:
        meta["namespace"] = namespace
    rp = RoutingPolicy.model_validate(
        {
            "metadata": meta,
            "spec": {
                "tiers": [{"name": "a", "backends": [{"modelDeployment": "m"}]}],
                "router": {"mode": mode},
            },
        }
    )
    assert router_endpoint_url(rp) == url


def test_default_image_is_this_release(monkeypatch: pytest.MonkeyPatch) -> None:
    version = metadata.version("tierwise")
    assert RouterRenderSettings().image == f"ghcr.io/tierwise/tierwise:{version}"

    def absent(name: str) -> str:
        raise metadata.PackageNotFoundError(name)

    monkeypatch.setattr(metadata, "version", absent)
    assert RouterRenderSettings().image == "ghcr.io/tierwise/tierwise:latest"


def test_the_policy_image_wins_over_the_operator_image() -> None:
    rp, _ = three_tier()
    raw = rp.model_dump(mode="json", by_alias=True, exclude_none=True)
    raw["spec"]["router"]["image"] = "registry.example.com/router:pinned"
    edited = RoutingPolicy.model_validate(raw)
    objects = render_routing_policy(edited, router_config(edited, {}))
    (container,) = by_kind(objects, "Deployment")["spec"]["template"]["spec"]["containers"]
    assert container["image"] == "registry.example.com/router:pinned"
