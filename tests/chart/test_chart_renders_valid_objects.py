"""The chart renders, with its defaults and each value set under charts/tierwise/ci/, to
objects a Kubernetes 1.33 API server accepts (strict schemas), passes ``helm lint``, and
wires what the operator really reads: its command line parses with the real CLI, the
webhook paths are the handler ids the operator serves, the TLS Secret is the one mounted."""

from __future__ import annotations

import argparse
import hashlib
from pathlib import Path
from typing import Any

import helm_python as helm
import pytest
from chart_schemas import validate_object

from chart_support import CHART, CI_VALUES, NAMESPACE, ci_values, find, render, render_files
from tierwise.controller.cli import options_from, register
from tierwise.controller.webhooks import VALIDATED

CASES = [None, *CI_VALUES]
IDS = ["default", *(p.name.removesuffix("-values.yaml") for p in CI_VALUES)]


def _values(path: Path | None) -> dict[str, Any]:
    return ci_values(path) if path else {}


def _container(objects: list[dict[str, Any]]) -> dict[str, Any]:
    deployment = find(objects, "Deployment")
    (container,) = deployment["spec"]["template"]["spec"]["containers"]
    return dict(container)


def test_there_is_a_value_set_for_each_mode() -> None:
    assert {p.name for p in CI_VALUES} >= {
        "namespaced-values.yaml",
        "servicemonitor-values.yaml",
        "cert-manager-values.yaml",
        "single-replica-values.yaml",
        "networkpolicy-values.yaml",
    }


@pytest.mark.parametrize("path", CASES, ids=IDS)
def test_every_object_is_valid_for_kubernetes_1_33(path: Path | None) -> None:
    objects = render(_values(path))
    assert len(objects) >= 10
    for obj in objects:
        validate_object(obj)
    namespaced = [o for o in objects if "namespace" in o["metadata"]]
    assert {o["metadata"]["namespace"] for o in namespaced} <= {
        NAMESPACE,
        *(_values(path).get("operator") or {}).get("watchNamespaces", []),
        *((_values(path).get("networkPolicy") or {}).get("engines") or {}).get("namespaces", []),
    }


@pytest.mark.parametrize("path", CASES, ids=IDS)
def test_helm_lint_finds_nothing_to_warn_about(path: Path | None) -> None:
    report = helm.lint(str(CHART), _values(path), strict=True, kube_version="v1.33.0")
    assert report["errors"] == []
    assert [m for m in report["messages"] if m["severity"] >= 2] == []


@pytest.mark.parametrize("path", CASES, ids=IDS)
def test_the_operator_command_line_parses_with_the_real_cli(
    path: Path | None, monkeypatch: pytest.MonkeyPatch
) -> None:
    objects = render(_values(path))
    container = _container(objects)
    assert container["command"] == ["tierwise"]
    config = find(objects, "ConfigMap", "tierwise-operator")["data"]
    for key, value in config.items():
        monkeypatch.setenv(key, value)
    monkeypatch.setattr("tierwise.controller.cli.load_config", lambda *_, **__: None)
    parser = argparse.ArgumentParser()
    register(parser.add_subparsers())
    options = options_from(parser.parse_args(container["args"]))
    values = _values(path)
    watched = tuple((values.get("operator") or {}).get("watchNamespaces") or ())
    assert options.namespaces == watched
    peered = ((values.get("operator") or {}).get("peering") or {}).get("enabled", True)
    assert options.peering == ("tierwise" if peered else None)
    assert dict(options.render.engine_images) == {
        "vllm": "vllm/vllm-openai:v0.10.2",
        "sglang": "lmsysorg/sglang:v0.5.2-cu126",
    }
    assert options.router is not None
    assert options.router.image == "ghcr.io/tierwise/tierwise:0.1.0"
    assert options.webhook is not None
    assert (options.webhook.certfile, options.webhook.keyfile) == (
        "/etc/tierwise/webhook/tls.crt",
        "/etc/tierwise/webhook/tls.key",
    )
    ports = {p["name"]: p["containerPort"] for p in container["ports"]}
    assert options.webhook.port == ports["webhook"]
    assert options.metrics_port == ports["metrics"]
    assert options.liveness == f"http://0.0.0.0:{ports['health']}/healthz"


def test_the_operator_pod_is_restricted_probed_and_rolled_on_config_changes() -> None:
    objects = render()
    deployment = find(objects, "Deployment")
    pod = deployment["spec"]["template"]
    container = _container(objects)
    security = container["securityContext"]
    assert security["readOnlyRootFilesystem"] is True
    assert security["allowPrivilegeEscalation"] is False
    assert security["capabilities"] == {"drop": ["ALL"]}
    assert pod["spec"]["securityContext"]["runAsNonRoot"] is True
    assert pod["spec"]["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    for probe in ("startupProbe", "livenessProbe", "readinessProbe"):
        assert container[probe]["httpGet"] == {"path": "/healthz", "port": "health"}
    assert container["resources"]["requests"]
    assert container["resources"]["limits"]["memory"]
    config_text = render_files()["tierwise/templates/configmap.yaml"]
    assert pod["metadata"]["annotations"]["checksum/config"] == (
        hashlib.sha256(config_text.encode()).hexdigest()
    )
    changed = render({"operator": {"engineImages": {"vllm": "mirror/vllm:1"}}})
    assert find(changed, "Deployment")["spec"]["template"]["metadata"]["annotations"][
        "checksum/config"
    ] != pod["metadata"]["annotations"]["checksum/config"]
    assert {e["name"] for e in container["env"]} >= {"POD_ID", "POD_NAMESPACE"}
    assert deployment["spec"]["replicas"] == 2
    assert deployment["spec"]["strategy"]["rollingUpdate"]["maxUnavailable"] == 0
    assert find(objects, "PodDisruptionBudget")["spec"]["maxUnavailable"] == 1
    with_class = render({"operator": {"priorityClassName": "platform-critical"}})
    assert find(with_class, "Deployment")["spec"]["template"]["spec"]["priorityClassName"] == (
        "platform-critical"
    )


def test_one_unpeered_replica_never_overlaps_another() -> None:
    objects = render(ci_values(CHART / "ci" / "single-replica-values.yaml"))
    deployment = find(objects, "Deployment")
    assert deployment["spec"]["replicas"] == 1
    assert deployment["spec"]["strategy"] == {"type": "Recreate"}
    assert not [o for o in objects if o["kind"] in ("PodDisruptionBudget", "ClusterKopfPeering")]


def test_webhooks_point_at_the_handlers_the_operator_serves() -> None:
    objects = render()
    validating = find(objects, "ValidatingWebhookConfiguration")
    mutating = find(objects, "MutatingWebhookConfiguration")
    paths = {
        w["clientConfig"]["service"]["path"]: w
        for w in [*validating["webhooks"], *mutating["webhooks"]]
    }
    assert set(paths) == {f"/{handler}" for _, handler in VALIDATED} | {"/inject-router"}
    for plural, handler in VALIDATED:
        assert paths[f"/{handler}"]["rules"][0]["resources"] == [plural]
    inject = paths["/inject-router"]
    assert inject["failurePolicy"] == "Ignore"
    assert inject["objectSelector"]["matchExpressions"] == [
        {"key": "tierwise.dev/routing-policy", "operator": "Exists"}
    ]
    assert {"key": "kubernetes.io/metadata.name", "operator": "NotIn", "values": [NAMESPACE]} in (
        inject["namespaceSelector"]["matchExpressions"]
    )
    service = find(objects, "Service", "tierwise-webhook")
    assert service["spec"]["ports"][0]["targetPort"] == "webhook"
    for webhook in paths.values():
        assert webhook["clientConfig"]["service"]["name"] == service["metadata"]["name"]
        assert webhook["clientConfig"]["caBundle"]
    secret = find(objects, "Secret", "tierwise-webhook-tls")
    volumes = find(objects, "Deployment")["spec"]["template"]["spec"]["volumes"]
    assert {"name": "webhook-tls", "secret": {"secretName": secret["metadata"]["name"]}} in volumes


def test_cert_manager_issues_the_mounted_certificate_and_injects_the_ca() -> None:
    objects = render(ci_values(CHART / "ci" / "cert-manager-values.yaml"))
    assert not [o for o in objects if o["kind"] == "Secret"]
    certificate = find(objects, "Certificate")
    volumes = find(objects, "Deployment")["spec"]["template"]["spec"]["volumes"]
    assert {"name": "webhook-tls", "secret": {"secretName": certificate["spec"]["secretName"]}} in (
        volumes
    )
    assert "tierwise-webhook.tierwise-system.svc" in certificate["spec"]["dnsNames"]
    assert find(objects, "Issuer")["metadata"]["name"] == certificate["spec"]["issuerRef"]["name"]
    for kind in ("ValidatingWebhookConfiguration", "MutatingWebhookConfiguration"):
        config = find(objects, kind)
        assert config["metadata"]["annotations"]["cert-manager.io/inject-ca-from"] == (
            f"{NAMESPACE}/{certificate['metadata']['name']}"
        )
        assert all("caBundle" not in w["clientConfig"] for w in config["webhooks"])


def test_namespaced_mode_watches_and_guards_only_the_listed_namespaces() -> None:
    objects = render(ci_values(CHART / "ci" / "namespaced-values.yaml"))
    args = _container(objects)["args"]
    assert "--namespace=apps" in args
    assert "--namespace=team-b" in args
    assert "--all-namespaces" not in args
    peerings = [o for o in objects if o["kind"] == "KopfPeering"]
    assert {p["metadata"]["namespace"] for p in peerings} == {"apps", "team-b"}
    validating = find(objects, "ValidatingWebhookConfiguration")
    for webhook in validating["webhooks"]:
        assert {
            "key": "kubernetes.io/metadata.name",
            "operator": "In",
            "values": ["apps", "team-b"],
        } in webhook["namespaceSelector"]["matchExpressions"]


def test_the_service_monitor_scrapes_the_metrics_service() -> None:
    objects = render(ci_values(CHART / "ci" / "servicemonitor-values.yaml"))
    monitor = find(objects, "ServiceMonitor")
    assert monitor["metadata"]["labels"]["release"] == "monitoring"
    selected = [
        o
        for o in objects
        if o["kind"] == "Service"
        and monitor["spec"]["selector"]["matchLabels"].items() <= o["metadata"]["labels"].items()
    ]
    assert [s["metadata"]["name"] for s in selected] == ["tierwise-operator-metrics"]
    ports = [p["name"] for p in selected[0]["spec"]["ports"]]
    assert [e["port"] for e in monitor["spec"]["endpoints"]] == ["metrics"]
    assert "metrics" in ports


def test_engine_network_policy_admits_routers_operator_and_prometheus_only() -> None:
    objects = render(ci_values(CHART / "ci" / "networkpolicy-values.yaml"))
    policy = find(objects, "NetworkPolicy")
    assert policy["metadata"]["namespace"] == "apps"
    assert policy["spec"]["podSelector"] == {
        "matchExpressions": [{"key": "tierwise.dev/model-deployment", "operator": "Exists"}]
    }
    (rule,) = policy["spec"]["ingress"]
    assert rule["ports"] == [{"port": "http", "protocol": "TCP"}]
    sources = rule["from"]
    assert sources[0] == {
        "podSelector": {
            "matchExpressions": [{"key": "tierwise.dev/routing-policy", "operator": "Exists"}]
        }
    }
    assert sources[1]["podSelector"]["matchLabels"]["app.kubernetes.io/name"] == (
        "tierwise-operator"
    )
    assert sources[2]["namespaceSelector"]["matchLabels"] == {
        "kubernetes.io/metadata.name": "monitoring"
    }
    assert len(sources) == 3
