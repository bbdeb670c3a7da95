"""Who owns ``spec.replicas`` of the engine Deployment (docs/operations.md, "Replicas"),
checked on the embedded cluster's server-side apply field ownership with the real
operator: the operator while autoscaling is off, the autoscaler's field manager otherwise,
an HPA's scale writes in ``external`` mode, and a user's ``kubectl scale`` in each case.

``kubectl scale`` is the real kubectl when installed (CI sets TIERWISE_REQUIRE_KUBECTL=1),
else the same PATCH of the scale subresource with kubectl's User-Agent. The autoscaler's
timer is off here (see ``operator_options``); its own applies are covered in
tests/autoscaling_integration.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from datetime import UTC, datetime
from typing import Any, cast

import httpx
import kubernetes.client
import pytest
from controller_helpers import md_body, simulate_apply

from tierwise.controller.children import identity_of
from tierwise.controller.plan import (
    AUTOSCALER_FIELD_MANAGER,
    FIELD_MANAGER,
    Observed,
    plan_reconcile,
)
from tierwise.controller.runner import OperatorThread
from tierwise.local.cluster import EmulatedCluster
from tierwise.local.testing import wait_for
from tierwise.manifests import render_model_deployment

NS = "models"
GVP = ("tierwise.dev", "v1alpha1", NS, "modeldeployments")
DEPLOYMENTS = f"/apis/apps/v1/namespaces/{NS}/deployments"


def md(name: str, replicas: dict[str, int], autoscaling: dict[str, Any]) -> dict[str, Any]:
    return {
        "apiVersion": "tierwise.dev/v1alpha1",
        "kind": "ModelDeployment",
        "metadata": {"name": name},
        "spec": {
            "model": {"uri": "hf://Qwen/Qwen2.5-0.5B-Instruct"},
            "engine": {"name": "vllm"},
            "replicas": replicas,
            "autoscaling": autoscaling,
        },
    }


def deployment(cluster: EmulatedCluster, name: str) -> dict[str, Any] | None:
    response = httpx.get(f"{cluster.url}{DEPLOYMENTS}/{name}")
    return response.json() if response.status_code == 200 else None


def replicas(cluster: EmulatedCluster, name: str) -> int:
    found = deployment(cluster, name)
    assert found is not None
    return int(found["spec"]["replicas"])


def replicas_owners(cluster: EmulatedCluster, name: str) -> set[str]:
    """The managers (``manager/subresource`` for a subresource) owning ``spec.replicas``."""
    found = deployment(cluster, name) or {}
    return {
        e["manager"] + (f"/{e['subresource']}" if e.get("subresource") else "")
        for e in found.get("metadata", {}).get("managedFields") or []
        if "f:replicas" in (e.get("fieldsV1") or {}).get("f:spec", {})
    }


def create(
    custom: kubernetes.client.CustomObjectsApi, cluster: EmulatedCluster, body: dict[str, Any]
) -> None:
    custom.create_namespaced_custom_object(*GVP, body)
    name = body["metadata"]["name"]
    wait_for(lambda: deployment(cluster, name), timeout=15, message=f"Deployment {name}")


def patch_spec(custom: kubernetes.client.CustomObjectsApi, name: str, spec: dict[str, Any]) -> None:
    custom.patch_namespaced_custom_object(*GVP, name, {"spec": spec})
    current = cast(dict[str, Any], custom.get_namespaced_custom_object(*GVP, name))
    generation = current["metadata"]["generation"]

    def observed() -> bool:
        body = cast(dict[str, Any], custom.get_namespaced_custom_object(*GVP, name))
        return bool((body.get("status") or {}).get("observedGeneration") == generation)

    wait_for(observed, timeout=15, message=f"{name} reconciled at generation {generation}")


def change_the_deployment(
    custom: kubernetes.client.CustomObjectsApi, cluster: EmulatedCluster, name: str
) -> None:
    """An edit that changes the rendered Deployment, so the operator applies it again."""
    patch_spec(custom, name, {"engine": {"name": "vllm", "contextLength": 4096}})

    def reapplied() -> bool:
        found = deployment(cluster, name) or {}
        container = found["spec"]["template"]["spec"]["containers"][0]
        return "4096" in " ".join([*(container.get("command") or []), *container.get("args", [])])

    wait_for(reapplied, timeout=15, message=f"{name}'s Deployment applied again")


def kubectl_scale(cluster: EmulatedCluster, name: str, count: int) -> None:
    kubectl = shutil.which("kubectl")
    if kubectl is not None:
        subprocess.run(
            [
                kubectl,
                "--kubeconfig",
                str(cluster.kubeconfig_path),
                "-n",
                NS,
                "scale",
                f"deployment/{name}",
                f"--replicas={count}",
            ],
            check=True,
            capture_output=True,
            timeout=60,
        )
        return
    if os.environ.get("TIERWISE_REQUIRE_KUBECTL") == "1":
        pytest.fail("TIERWISE_REQUIRE_KUBECTL=1 but kubectl is not installed", pytrace=False)
    response = httpx.patch(
        f"{cluster.url}{DEPLOYMENTS}/{name}/scale",
        json={"spec": {"replicas": count}},
        headers={
            "Content-Type": "application/merge-patch+json",
            "User-Agent": "kubectl/v1.33.0 (linux/amd64) kubernetes/emulated",
        },
    )
    response.raise_for_status()


def hpa_scales(cluster: EmulatedCluster, name: str, count: int) -> None:
    """What the HPA controller sends: a PUT of the Deployment's Scale."""
    response = httpx.put(
        f"{cluster.url}{DEPLOYMENTS}/{name}/scale",
        json={
            "apiVersion": "autoscaling/v1",
            "kind": "Scale",
            "metadata": {"name": name, "namespace": NS},
            "spec": {"replicas": count},
        },
        headers={"User-Agent": "kube-controller-manager/v1.33.0 (linux/amd64) kubernetes/x"},
    )
    response.raise_for_status()


OFF = {"enabled": False}


def test_autoscaling_off_the_operator_owns_replicas_and_takes_back_a_kubectl_scale(
    operator: OperatorThread,
    custom: kubernetes.client.CustomObjectsApi,
    cluster: EmulatedCluster,
) -> None:
    create(custom, cluster, md("fixed", {"min": 2, "max": 4, "target": 3}, OFF))
    assert replicas(cluster, "fixed") == 3
    assert replicas_owners(cluster, "fixed") == {"tierwise"}
    kubectl_scale(cluster, "fixed", 4)
    wait_for(lambda: replicas(cluster, "fixed") == 3, timeout=15, message="target restored")
    assert replicas_owners(cluster, "fixed") == {"tierwise"}  # forced back from kubectl


def test_under_the_autoscaler_the_operator_lets_go_of_replicas_without_a_reset(
    operator: OperatorThread,
    custom: kubernetes.client.CustomObjectsApi,
    cluster: EmulatedCluster,
) -> None:
    create(custom, cluster, md("auto", {"min": 2, "max": 4}, {"mode": "tierwise"}))
    wait_for(
        lambda: replicas_owners(cluster, "auto") == {"tierwise", "tierwise-autoscaler"},
        timeout=15,
        message="replicas shared at creation",
    )
    assert replicas(cluster, "auto") == 2
    change_the_deployment(custom, cluster, "auto")
    assert replicas(cluster, "auto") == 2  # not reset to 1: the autoscaler's manager kept it
    assert replicas_owners(cluster, "auto") == {"tierwise-autoscaler"}


def test_under_the_autoscaler_a_kubectl_scale_is_not_undone_by_the_reconcile(
    operator: OperatorThread,
    custom: kubernetes.client.CustomObjectsApi,
    cluster: EmulatedCluster,
) -> None:
    create(custom, cluster, md("auto", {"min": 1, "max": 4}, {"mode": "tierwise"}))
    wait_for(
        lambda: "tierwise-autoscaler" in replicas_owners(cluster, "auto"),
        timeout=15,
        message="the hand-over",
    )
    kubectl_scale(cluster, "auto", 3)
    # kubectl took the field; the reconcile hands the user's count back to the autoscaler's
    # manager (shared, unchanged) instead of setting its own
    both = {"kubectl/scale", "tierwise-autoscaler"}
    wait_for(lambda: replicas_owners(cluster, "auto") == both, timeout=15, message="shared")
    assert replicas(cluster, "auto") == 3
    change_the_deployment(custom, cluster, "auto")
    assert replicas(cluster, "auto") == 3
    assert replicas_owners(cluster, "auto") == both


def test_external_mode_leaves_replicas_to_the_hpa(
    operator: OperatorThread,
    custom: kubernetes.client.CustomObjectsApi,
    cluster: EmulatedCluster,
) -> None:
    create(custom, cluster, md("hpa", {"min": 2, "max": 4}, {"mode": "external"}))
    assert replicas(cluster, "hpa") == 1  # the API server's default until the HPA acts
    assert replicas_owners(cluster, "hpa") == set()
    hpa_scales(cluster, "hpa", 3)
    assert replicas_owners(cluster, "hpa") == {"kube-controller-manager/scale"}
    change_the_deployment(custom, cluster, "hpa")
    assert replicas(cluster, "hpa") == 3
    assert replicas_owners(cluster, "hpa") == {"kube-controller-manager/scale"}


def test_switching_to_external_keeps_the_hpas_count_else_the_server_resets_it(
    operator: OperatorThread,
    custom: kubernetes.client.CustomObjectsApi,
    cluster: EmulatedCluster,
) -> None:
    for name in ("taken", "untaken"):
        create(custom, cluster, md(name, {"min": 2, "max": 4, "target": 3}, OFF))
        patch_spec(custom, name, {"autoscaling": {"enabled": True, "mode": "external"}})
        assert replicas(cluster, name) == 3
    hpa_scales(cluster, "taken", 4)
    for name in ("taken", "untaken"):
        change_the_deployment(custom, cluster, name)
        assert "tierwise" not in replicas_owners(cluster, name)
    assert replicas(cluster, "taken") == 4
    assert replicas(cluster, "untaken") == 1  # as docs/operations.md warns


def test_switching_autoscaling_on_hands_replicas_to_the_autoscaler_first(
    operator: OperatorThread,
    custom: kubernetes.client.CustomObjectsApi,
    cluster: EmulatedCluster,
) -> None:
    create(custom, cluster, md("later", {"min": 2, "max": 4, "target": 3}, OFF))
    patch_spec(custom, "later", {"autoscaling": {"enabled": True, "mode": "tierwise"}})
    wait_for(
        lambda: "tierwise-autoscaler" in replicas_owners(cluster, "later"),
        timeout=15,
        message="the hand-over to the autoscaler",
    )
    change_the_deployment(custom, cluster, "later")
    assert replicas(cluster, "later") == 3  # the count it had, not the server's default
    assert replicas_owners(cluster, "later") == {"tierwise-autoscaler"}


def _owned_by(manager: str) -> list[dict[str, Any]]:
    return [{"manager": manager, "operation": "Apply", "fieldsV1": {"f:spec": {"f:replicas": {}}}}]


@pytest.mark.parametrize(
    ("managed", "handed_over"),
    [
        (_owned_by(FIELD_MANAGER), True),  # autoscaling was off: the operator owned it
        (_owned_by("kubectl"), True),
        (_owned_by(AUTOSCALER_FIELD_MANAGER), False),  # already the autoscaler's
        ([], False),  # no managedFields to go by: only the creation hand-over
    ],
)
def test_the_plan_hands_the_current_count_over_before_applying_without_it(
    managed: list[dict[str, Any]], handed_over: bool
) -> None:
    spec = {
        "model": {"uri": "hf://Qwen/Qwen2.5-0.5B"},
        "engine": {"name": "vllm"},
        "replicas": {"min": 2, "max": 4, "target": 3},
        "autoscaling": {"enabled": False},
    }
    now = datetime.now(UTC)
    body = md_body(spec=spec)
    first = plan_reconcile(body, Observed(), render=render_model_deployment, now=now)
    _, observed = simulate_apply(body, Observed(), first)
    children = dict(observed.children)
    for ident, child in children.items():
        if ident.kind == "Deployment":
            children[ident] = {**child, "metadata": {**child["metadata"], "managedFields": managed}}
    switched = md_body(
        spec={
            **spec,
            "engine": {"name": "vllm", "contextLength": 4096},
            "autoscaling": {"mode": "tierwise"},
        },
        generation=2,
    )
    plan = plan_reconcile(
        switched, Observed(children=children), render=render_model_deployment, now=now
    )
    managers = [(a.manager, identity_of(a.obj).kind) for a in plan.applies]
    assert (FIELD_MANAGER, "Deployment") in managers
    if handed_over:
        assert managers[0] == (AUTOSCALER_FIELD_MANAGER, "Deployment")  # first, then ours
        assert plan.applies[0].obj["spec"] == {"replicas": 3}
    else:
        assert AUTOSCALER_FIELD_MANAGER not in [m for m, _ in managers]
    ours = [a for a in plan.applies if a.manager == FIELD_MANAGER and a.obj["kind"] == "Deployment"]
    assert "replicas" not in ours[0].obj["spec"]
