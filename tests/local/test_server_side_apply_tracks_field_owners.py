"""Server-side apply field ownership, pinned to the worked examples of the Kubernetes
documentation (reference/using-api/server-side-apply: field management, conflicts,
shared ownership, transferring ownership of replicas to an HPA, merge strategy)."""

from __future__ import annotations

import functools
import json
import os
import re
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tierwise.local.cluster import EmulatedCluster
from tierwise.local.testing import deployment

APPLY = "application/apply-patch+yaml"
MERGE = "application/merge-patch+json"
CM = "/api/v1/namespaces/default/configmaps"
DEPLOY = "/apis/apps/v1/namespaces/default/deployments"
RFC3339 = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$")


@pytest.fixture
def http(cluster: EmulatedCluster) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=cluster.url) as client:
        yield client


def apply(
    http: httpx.Client, url: str, body: dict[str, Any], manager: str, *, force: bool = False
) -> httpx.Response:
    params = {"fieldManager": manager} | ({"force": "true"} if force else {})
    return http.patch(url, params=params, content=json.dumps(body), headers={"Content-Type": APPLY})


def applied(http: httpx.Client, url: str, body: dict[str, Any], manager: str, **kw: Any) -> Any:
    response = apply(http, url, body, manager, **kw)
    assert response.status_code in (200, 201), response.text
    return response.json()


def owners(obj: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """managedFields by manager (and subresource, when there is one)."""
    return {
        e["manager"] + (f"/{e['subresource']}" if e.get("subresource") else ""): e
        for e in obj["metadata"].get("managedFields") or []
    }


def config_map(data: dict[str, str], labels: dict[str, str] | None = None) -> dict[str, Any]:
    meta: dict[str, Any] = {"name": "test-cm", "namespace": "default"}
    if labels:
        meta["labels"] = labels
    body = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": meta}
    return body | ({"data": data} if data else {})  # an empty map would be a field it sets


def test_an_apply_records_what_it_set_per_manager_in_fieldsv1(http: httpx.Client) -> None:
    obj = applied(
        http, f"{CM}/test-cm", config_map({"key": "some value"}, {"test-label": "test"}), "kubectl"
    )
    [entry] = obj["metadata"]["managedFields"]
    assert RFC3339.match(entry.pop("time"))
    assert entry == {
        "manager": "kubectl",
        "operation": "Apply",
        "apiVersion": "v1",
        "fieldsType": "FieldsV1",
        "fieldsV1": {"f:data": {"f:key": {}}, "f:metadata": {"f:labels": {"f:test-label": {}}}},
    }


def test_an_update_takes_what_it_changes_and_an_apply_then_conflicts(
    http: httpx.Client,
) -> None:
    url = f"{CM}/test-cm"
    applied(http, url, config_map({"key": "some value"}, {"test-label": "test"}), "kubectl")
    patched = http.patch(
        url,
        params={"fieldManager": "kubectl-patch"},
        json={"data": {"key": "new value"}},
        headers={"Content-Type": MERGE},
    )
    by = owners(patched.json())
    assert by["kubectl-patch"]["operation"] == "Update"
    assert by["kubectl-patch"]["fieldsV1"] == {"f:data": {"f:key": {}}}
    assert by["kubectl"]["fieldsV1"] == {"f:metadata": {"f:labels": {"f:test-label": {}}}}

    refused = apply(http, url, config_map({"key": "mine"}, {"test-label": "test"}), "kubectl")
    assert refused.status_code == 409
    status = refused.json()
    assert status["reason"] == "Conflict"
    when = by["kubectl-patch"]["time"]
    assert status["message"] == (
        f'Apply failed with 1 conflict: conflict with "kubectl-patch" using v1 at {when}: .data.key'
    )
    assert status["details"]["causes"] == [
        {
            "type": "FieldManagerConflict",
            "message": f'conflict with "kubectl-patch" using v1 at {when}',
            "field": ".data.key",
        }
    ]
    assert http.get(url).json()["data"] == {"key": "new value"}  # nothing was written

    forced = applied(
        http, url, config_map({"key": "mine"}, {"test-label": "test"}), "kubectl", force=True
    )
    assert forced["data"] == {"key": "mine"}
    assert set(owners(forced)) == {"kubectl"}  # kubectl-patch owned nothing else: it is gone
    assert owners(forced)["kubectl"]["fieldsV1"]["f:data"] == {"f:key": {}}


def test_conflicts_with_several_managers_are_listed_by_manager(http: httpx.Client) -> None:
    url = f"{CM}/test-cm"
    applied(http, url, config_map({"a": "1", "b": "2"}), "first")
    applied(http, url, config_map({"c": "3"}), "second")
    refused = apply(http, url, config_map({"a": "x", "b": "y", "c": "z"}), "third")
    assert refused.status_code == 409
    assert refused.json()["message"] == (
        'Apply failed with 3 conflicts: conflicts with "first":\n- .data.a\n- .data.b\n'
        'conflicts with "second":\n- .data.c'
    )
    assert [c["field"] for c in refused.json()["details"]["causes"]] == [
        ".data.a",
        ".data.b",
        ".data.c",
    ]


def test_the_same_value_is_shared_and_a_manager_gives_up_by_leaving_it_out(
    http: httpx.Client,
) -> None:
    url = f"{CM}/test-cm"
    applied(http, url, config_map({"key": "v"}), "alice")
    both = applied(http, url, config_map({"key": "v"}), "bob")
    assert set(owners(both)) == {"alice", "bob"}
    changed = apply(http, url, config_map({"key": "w"}), "bob")
    assert changed.status_code == 409  # a shared field: any change conflicts
    assert '"alice"' in changed.json()["message"]
    released = applied(http, url, config_map({}), "bob")
    assert released["data"] == {"key": "v"}  # alice still owns it: the value stays
    assert set(owners(released)) == {"alice"}
    gone = applied(http, url, config_map({}), "alice")
    assert "key" not in (gone.get("data") or {})  # no owner left: removed


def test_a_field_the_manager_stops_applying_is_removed(http: httpx.Client) -> None:
    url = f"{CM}/test-cm"
    applied(http, url, config_map({"a": "1", "b": "2"}, {"x": "1", "y": "2"}), "kubectl")
    http.patch(
        url,
        params={"fieldManager": "someone"},
        json={"metadata": {"labels": {"z": "3"}}},
        headers={"Content-Type": MERGE},
    )
    after = applied(http, url, config_map({"a": "1"}, {"x": "1"}), "kubectl")
    assert after["data"] == {"a": "1"}
    assert after["metadata"]["labels"] == {"x": "1", "z": "3"}  # z is someone else's


def test_replicas_handed_over_to_an_hpa_without_a_reset(http: httpx.Client) -> None:
    """The documentation's HPA example: a manager that shares replicas keeps its value."""
    url = f"{DEPLOY}/nginx"
    applied(http, url, deployment("nginx", replicas=3), "kubectl")
    handover = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "nginx"},
        "spec": {"replicas": 3},
    }
    shared = applied(http, url, handover, "handover-to-hpa")
    assert set(owners(shared)) == {"kubectl", "handover-to-hpa"}
    without = deployment("nginx")
    del without["spec"]["replicas"]
    kept = applied(http, url, without, "kubectl")
    assert kept["spec"]["replicas"] == 3
    assert "f:replicas" not in owners(kept)["kubectl"]["fieldsV1"]["f:spec"]
    assert owners(kept)["handover-to-hpa"]["fieldsV1"] == {"f:spec": {"f:replicas": {}}}

    hpa = http.put(
        f"{url}/scale",
        headers={"User-Agent": "kube-controller-manager/v1.33.0"},
        json={
            "apiVersion": "autoscaling/v1",
            "kind": "Scale",
            "metadata": {"name": "nginx", "namespace": "default"},
            "spec": {"replicas": 5},
        },
    )
    assert hpa.status_code == 200, hpa.text
    scaled = http.get(url).json()
    assert scaled["spec"]["replicas"] == 5
    by = owners(scaled)
    assert "handover-to-hpa" not in by  # it owned only replicas, now the HPA's
    assert by["kube-controller-manager/scale"]["operation"] == "Update"
    assert by["kube-controller-manager/scale"]["fieldsV1"] == {"f:spec": {"f:replicas": {}}}


def test_leaving_replicas_out_without_a_handover_resets_them_to_the_default(
    http: httpx.Client,
) -> None:
    url = f"{DEPLOY}/nginx"
    applied(http, url, deployment("nginx", replicas=3), "kubectl")
    without = deployment("nginx")
    del without["spec"]["replicas"]
    assert applied(http, url, without, "kubectl")["spec"]["replicas"] == 1


def test_containers_merge_by_name_and_each_manager_owns_its_own(http: httpx.Client) -> None:
    url = f"{DEPLOY}/web"
    applied(http, url, deployment("web", image="engine:1"), "tierwise")
    sidecar: dict[str, Any] = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "web"},
        "spec": {"template": {"spec": {"containers": [{"name": "proxy", "image": "proxy:1"}]}}},
    }
    both = applied(http, url, sidecar, "injector")
    containers = both["spec"]["template"]["spec"]["containers"]
    assert [c["name"] for c in containers] == ["engine", "proxy"]
    mine = owners(both)["injector"]["fieldsV1"]["f:spec"]["f:template"]["f:spec"]
    assert mine == {"f:containers": {'k:{"name":"proxy"}': {".": {}, "f:image": {}, "f:name": {}}}}
    theirs = owners(both)["tierwise"]["fieldsV1"]["f:spec"]["f:template"]["f:spec"]
    engine = theirs["f:containers"]['k:{"name":"engine"}']
    assert engine["f:ports"] == {
        'k:{"containerPort":8000,"protocol":"TCP"}': {".": {}, "f:containerPort": {}, "f:name": {}}
    }

    applied(http, url, deployment("web", image="engine:2"), "tierwise")  # its own: no conflict
    stolen = json.loads(json.dumps(sidecar))
    stolen["spec"]["template"]["spec"]["containers"].append({"name": "engine", "image": "evil"})
    refused = apply(http, url, stolen, "injector")
    assert refused.status_code == 409
    assert refused.json()["details"]["causes"][0]["field"] == (
        '.spec.template.spec.containers[name="engine"].image'
    )
    sidecar["spec"]["template"]["spec"]["containers"] = []
    dropped = applied(http, url, sidecar, "injector")
    assert [c["name"] for c in dropped["spec"]["template"]["spec"]["containers"]] == ["engine"]
    assert dropped["spec"]["template"]["spec"]["containers"][0]["image"] == "engine:2"


def test_other_lists_are_atomic(http: httpx.Client) -> None:
    url = f"{DEPLOY}/web"
    body = deployment("web")
    body["spec"]["template"]["spec"]["containers"][0]["args"] = ["--a", "--b"]
    applied(http, url, body, "tierwise")
    other = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "web"},
        "spec": {"template": {"spec": {"containers": [{"name": "engine", "args": ["--c"]}]}}},
    }
    refused = apply(http, url, other, "someone")
    assert refused.status_code == 409
    assert [c["field"] for c in refused.json()["details"]["causes"]] == [
        '.spec.template.spec.containers[name="engine"].args'
    ]
    forced = applied(http, url, other, "someone", force=True)
    assert forced["spec"]["template"]["spec"]["containers"][0]["args"] == ["--c"]


def test_status_writes_are_owned_through_the_status_subresource(http: httpx.Client) -> None:
    url = f"{DEPLOY}/web"
    applied(http, url, deployment("web"), "tierwise")
    written = http.patch(
        f"{url}/status",
        params={"fieldManager": "controller"},
        json={"status": {"observedGeneration": 1}},
        headers={"Content-Type": MERGE},
    )
    by = owners(written.json())
    assert by["controller/status"]["fieldsV1"] == {"f:status": {"f:observedGeneration": {}}}
    assert "f:status" not in by["tierwise"]["fieldsV1"]
    # a main-resource apply cannot take status, so it never conflicts with its writer
    with_status = deployment("web") | {"status": {"observedGeneration": 7}}
    assert apply(http, url, with_status, "tierwise").status_code == 200


def test_an_update_without_field_manager_is_named_after_the_user_agent(
    http: httpx.Client,
) -> None:
    url = f"{CM}/test-cm"
    http.post(CM, json=config_map({"a": "1"}), headers={"User-Agent": "kubectl/v1.33.0 (linux)"})
    assert set(owners(http.get(url).json())) == {"kubectl"}
    assert owners(http.get(url).json())["kubectl"]["operation"] == "Update"


def test_an_identical_apply_writes_nothing(http: httpx.Client) -> None:
    url = f"{CM}/test-cm"
    first = applied(http, url, config_map({"a": "1"}), "kubectl")
    again = applied(http, url, config_map({"a": "1"}), "kubectl")
    assert again["metadata"]["resourceVersion"] == first["metadata"]["resourceVersion"]
    assert again["metadata"]["managedFields"] == first["metadata"]["managedFields"]


def test_kubectl_recognises_the_conflict_and_forces_it(
    cluster: EmulatedCluster, tmp_path: Path
) -> None:
    kubectl = shutil.which("kubectl")
    if kubectl is None:
        if os.environ.get("TIERWISE_REQUIRE_KUBECTL") == "1":
            pytest.fail("TIERWISE_REQUIRE_KUBECTL=1 but kubectl is not installed", pytrace=False)
        pytest.skip("kubectl is not installed (Debian: apt-get install kubernetes-client)")
    base = [
        kubectl,
        "--kubeconfig",
        str(cluster.kubeconfig_path),
        "apply",
        "--server-side",
        "--validate=false",
    ]
    for name, value in (("mine", "1"), ("theirs", "2")):
        (tmp_path / f"{name}.yaml").write_text(json.dumps(config_map({"key": value})))
    run = functools.partial(subprocess.run, capture_output=True, text=True, timeout=60)
    assert run([*base, "-f", str(tmp_path / "mine.yaml")]).returncode == 0
    refused = run([*base, "--field-manager=other", "-f", str(tmp_path / "theirs.yaml")])
    assert refused.returncode == 1
    assert 'conflict with "kubectl": .data.key' in refused.stderr
    assert "--force-conflicts" in refused.stderr  # kubectl read it as an apply conflict
    forced = run(
        [*base, "--field-manager=other", "--force-conflicts", "-f", str(tmp_path / "theirs.yaml")]
    )
    assert forced.returncode == 0
    with httpx.Client(base_url=cluster.url) as http:
        assert set(owners(http.get(f"{CM}/test-cm").json())) == {"other"}


def test_a_create_owns_the_defaults_it_got_but_an_apply_does_not(http: httpx.Client) -> None:
    body = deployment("created")
    del body["spec"]["replicas"]
    http.post(DEPLOY, json=body, params={"fieldManager": "kubectl-create"})
    created = http.get(f"{DEPLOY}/created").json()
    assert created["spec"]["replicas"] == 1
    assert "f:replicas" in owners(created)["kubectl-create"]["fieldsV1"]["f:spec"]
    scaled = apply(http, f"{DEPLOY}/created", deployment("created", replicas=3), "kubectl")
    assert scaled.status_code == 409  # the well-known surprise of `kubectl create` + apply

    body["metadata"]["name"] = "applied"
    applied_now = applied(http, f"{DEPLOY}/applied", body, "kubectl")
    assert applied_now["spec"]["replicas"] == 1
    assert "f:replicas" not in owners(applied_now)["kubectl"]["fieldsV1"]["f:spec"]
