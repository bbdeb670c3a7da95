"""Which children exist, how they are named, labelled and owned, and the pod's contract
(probes, draining, shared memory, cache, security), each checked against the spec."""

from __future__ import annotations

import re
from typing import Any

import pytest
from render_helpers import engine_container

from tierwise.api.model_deployment import ModelDeployment
from tierwise.manifests import (
    RenderError,
    RenderSettings,
    child_identities,
    endpoint_url,
    render_model_deployment,
    selector_string,
    stale_children,
)


def make(name: str = "m", *, namespace: str | None = "llm", **spec: Any) -> ModelDeployment:
    body: dict[str, Any] = {
        "model": {"uri": "hf://Qwen/Qwen3-8B"},
        "engine": {"name": "vllm"},
    }
    for key, value in spec.items():
        body[key] = {**body.get(key, {}), **value}
    meta: dict[str, Any] = {"name": name}
    if namespace:
        meta["namespace"] = namespace
    return ModelDeployment.model_validate(
        {
            "apiVersion": "tierwise.dev/v1alpha1",
            "kind": "ModelDeployment",
            "metadata": meta,
            "spec": body,
        }
    )


def kinds(objects: list[dict[str, Any]]) -> list[str]:
    return [o["kind"] for o in objects]


def pod(objects: list[dict[str, Any]]) -> dict[str, Any]:
    spec: dict[str, Any] = objects[0]["spec"]["template"]["spec"]
    return spec


@pytest.mark.parametrize(
    ("replicas", "monitoring", "expected"),
    [
        ({"min": 1, "max": 1}, {}, ["Deployment", "Service"]),
        ({"min": 0, "max": 2}, {}, ["Deployment", "Service", "PodDisruptionBudget"]),
        ({"min": 1, "max": 1}, {"podMonitor": True}, ["Deployment", "Service", "PodMonitor"]),
        (
            {"min": 2, "max": 8},
            {"podMonitor": True},
            ["Deployment", "Service", "PodDisruptionBudget", "PodMonitor"],
        ),
    ],
)
def test_optional_children_exist_only_when_the_spec_wants_them(
    replicas: dict[str, int], monitoring: dict[str, bool], expected: list[str]
) -> None:
    md = make(replicas=replicas, monitoring=monitoring)
    objects = render_model_deployment(md)
    assert kinds(objects) == expected
    rendered = [(o["apiVersion"], o["kind"], o["metadata"]["name"]) for o in objects]
    assert [(c.api_version, c.kind, c.name) for c in child_identities(md)] == rendered
    stale = {c.kind for c in stale_children(md)}
    assert stale.isdisjoint(expected)
    assert stale | set(expected) == {"Deployment", "Service", "PodDisruptionBudget", "PodMonitor"}


@pytest.mark.parametrize("replicas", [None, 0, 1, 7])
def test_replicas_are_set_only_when_the_caller_decides_them(replicas: int | None) -> None:
    deployment = render_model_deployment(make(), replicas=replicas)[0]
    assert deployment["spec"].get("replicas") == replicas
    assert ("replicas" in deployment["spec"]) == (replicas is not None)


@pytest.mark.parametrize("uid", [None, "", "0b7f1d2c-3e4f-4a53-9d1e-5f0c2b8e8d2a"])
def test_owner_references_need_the_owner_uid(uid: str | None) -> None:
    objects = render_model_deployment(make(replicas={"max": 3}), owner_uid=uid)
    for obj in objects:
        owners = obj["metadata"].get("ownerReferences", [])
        if uid:
            assert owners == [
                {
                    "apiVersion": "tierwise.dev/v1alpha1",
                    "kind": "ModelDeployment",
                    "name": "m",
                    "uid": uid,
                    "controller": True,
                    "blockOwnerDeletion": True,
                }
            ]
        else:
            assert owners == []


@pytest.mark.parametrize("engine", ["sglang", "vllm"])
def test_every_child_and_the_pods_carry_the_recommended_labels(engine: str) -> None:
    md = make("chat", engine={"name": engine}, replicas={"max": 2}, monitoring={"podMonitor": True})
    objects = render_model_deployment(md)
    expected = {
        "app.kubernetes.io/name": engine,
        "app.kubernetes.io/instance": "chat",
        "app.kubernetes.io/component": "engine",
        "app.kubernetes.io/part-of": "tierwise",
        "app.kubernetes.io/managed-by": "tierwise",
        "tierwise.dev/model-deployment": "chat",
    }
    for obj in objects:
        assert obj["metadata"]["labels"] == expected
    assert objects[0]["spec"]["template"]["metadata"]["labels"] == expected
    selector = {"app.kubernetes.io/instance": "chat", "tierwise.dev/model-deployment": "chat"}
    assert objects[0]["spec"]["selector"] == {"matchLabels": selector}
    assert objects[1]["spec"]["selector"] == selector
    assert selector_string(md) == ",".join(f"{k}={v}" for k, v in selector.items())


def test_switching_engine_keeps_the_immutable_selector() -> None:
    vllm = render_model_deployment(make(engine={"name": "vllm"}))[0]
    sglang = render_model_deployment(make(engine={"name": "sglang"}))[0]
    assert vllm["spec"]["selector"] == sglang["spec"]["selector"]


@pytest.mark.parametrize(
    "name",
    [
        "a" * 63,
        "a" * 64,
        "b" * 200 + ".example",
        "model." + "x" * 100,
        "x" * 80 + "-y",
        "qwen2.5-7b",
        "3b-model",
        "llama.3",
    ],
)
def test_names_become_valid_label_values_and_service_names(name: str) -> None:
    md = make(name)
    objects = render_model_deployment(md)
    service = objects[1]
    assert re.fullmatch(r"[a-z]([-a-z0-9]{0,61}[a-z0-9])?", service["metadata"]["name"])
    for value in objects[0]["spec"]["selector"]["matchLabels"].values():
        assert len(value) <= 63
        assert value[0].isalnum()
        assert value[-1].isalnum()
    assert objects[0]["metadata"]["name"] == name
    other = make(name[:-1] + ("z" if name[-1] != "z" else "q"))
    if service["metadata"]["name"] != name:
        other_service = render_model_deployment(other)[1]
        assert other_service["metadata"]["name"] != service["metadata"]["name"]


@pytest.mark.parametrize(("namespace", "host"), [("llm", "m.llm.svc"), (None, "m")])
def test_namespace_is_copied_and_the_endpoint_points_at_the_service(
    namespace: str | None, host: str
) -> None:
    md = make(namespace=namespace)
    for obj in render_model_deployment(md):
        assert obj["metadata"].get("namespace") == namespace
    assert endpoint_url(md) == f"http://{host}:8000/v1"


@pytest.mark.parametrize(
    ("enabled", "engine", "port"),
    [(True, "vllm", "8000"), (True, "sglang", "30000"), (False, "vllm", None)],
)
def test_scrape_annotations_follow_monitoring(enabled: bool, engine: str, port: str | None) -> None:
    md = make(engine={"name": engine}, monitoring={"scrapeAnnotations": enabled})
    annotations = render_model_deployment(md)[0]["spec"]["template"]["metadata"].get(
        "annotations", {}
    )
    assert annotations.get("prometheus.io/port") == port
    assert (annotations.get("prometheus.io/scrape") == "true") == enabled


@pytest.mark.parametrize(("tp", "minutes"), [(1, 20), (2, 20), (4, 60), (8, 60)])
def test_startup_probe_budget_grows_with_model_size(tp: int, minutes: int) -> None:
    objects = render_model_deployment(make(engine={"tensorParallelSize": tp}))
    probe = engine_container(objects)["startupProbe"]
    assert probe["periodSeconds"] * probe["failureThreshold"] == minutes * 60
    assert objects[0]["spec"]["progressDeadlineSeconds"] > minutes * 60


@pytest.mark.parametrize(
    ("engine", "startup", "ready", "live"),
    [
        ("vllm", "/health", "/health", "/health"),
        ("sglang", "/health", "/health", "/health_generate"),
    ],
)
def test_probes_use_the_engine_health_paths(
    engine: str, startup: str, ready: str, live: str
) -> None:
    container = engine_container(render_model_deployment(make(engine={"name": engine})))
    paths = [
        container[p]["httpGet"]["path"] for p in ("startupProbe", "readinessProbe", "livenessProbe")
    ]
    assert paths == [startup, ready, live]
    assert {
        container[p]["httpGet"]["port"] for p in ("startupProbe", "readinessProbe", "livenessProbe")
    } == {"http"}


def test_termination_drains_in_flight_requests() -> None:
    settings = RenderSettings(termination_grace_seconds=300, pre_stop_sleep_seconds=20)
    objects = render_model_deployment(make(), settings=settings)
    assert pod(objects)["terminationGracePeriodSeconds"] == 300
    pre_stop = engine_container(objects)["lifecycle"]["preStop"]["exec"]["command"]
    assert pre_stop == ["sleep", "20"]
    assert int(pre_stop[1]) < pod(objects)["terminationGracePeriodSeconds"]


@pytest.mark.parametrize("size", ["1Gi", "64Gi", "500Mi"])
def test_shared_memory_is_a_memory_backed_volume_of_the_spec_size(size: str) -> None:
    objects = render_model_deployment(make(resources={"sharedMemory": size}))
    (shm,) = [v for v in pod(objects)["volumes"] if v["name"] == "dshm"]
    assert shm["emptyDir"] == {"medium": "Memory", "sizeLimit": size}
    assert {"name": "dshm", "mountPath": "/dev/shm"} in engine_container(objects)["volumeMounts"]


@pytest.mark.parametrize(
    ("cache", "volume"),
    [
        (None, {"emptyDir": {}}),
        ({"sizeLimit": "200Gi"}, {"emptyDir": {"sizeLimit": "200Gi"}}),
        ({"claimName": "hf-cache"}, {"persistentVolumeClaim": {"claimName": "hf-cache"}}),
    ],
)
def test_model_cache_volume_holds_hf_home(
    cache: dict[str, str] | None, volume: dict[str, Any]
) -> None:
    model: dict[str, Any] = {"cache": cache} if cache else {}
    objects = render_model_deployment(make(model=model))
    (cache_volume,) = [v for v in pod(objects)["volumes"] if v["name"] == "model-cache"]
    assert cache_volume == {"name": "model-cache", **volume}
    container = engine_container(objects)
    (mount,) = [m for m in container["volumeMounts"] if m["name"] == "model-cache"]
    hf_home = next(e["value"] for e in container["env"] if e["name"] == "HF_HOME")
    assert hf_home.startswith(mount["mountPath"] + "/")


def test_hf_token_and_secret_env_are_passed_by_reference_only() -> None:
    md = make(
        model={"tokenSecretRef": {"name": "hf", "key": "token"}},
        engine={"env": [{"name": "API_KEY", "secretKeyRef": {"name": "keys", "key": "k"}}]},
    )
    env = engine_container(render_model_deployment(md))["env"]
    by_name = {e["name"]: e for e in env}
    assert by_name["HF_TOKEN"] == {
        "name": "HF_TOKEN",
        "valueFrom": {"secretKeyRef": {"name": "hf", "key": "token"}},
    }
    assert by_name["API_KEY"]["valueFrom"] == {"secretKeyRef": {"name": "keys", "key": "k"}}
    assert all("value" not in by_name[n] for n in ("HF_TOKEN", "API_KEY"))


@pytest.mark.parametrize("value", ["", "/custom", "ünïcödé-路径"])
def test_user_env_replaces_tierwise_env_without_duplicates(value: str) -> None:
    md = make(engine={"env": [{"name": "HF_HOME", "value": value}, {"name": "X", "value": "1"}]})
    env = engine_container(render_model_deployment(md))["env"]
    names = [e["name"] for e in env]
    assert len(names) == len(set(names))
    assert {"name": "HF_HOME", "value": value} in env


def test_pods_run_with_least_privilege() -> None:
    objects = render_model_deployment(make(model={"uri": "s3://bucket/model"}))
    spec = pod(objects)
    assert spec["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    assert spec["automountServiceAccountToken"] is False
    assert spec["enableServiceLinks"] is False
    for container in [*spec["containers"], *spec["initContainers"]]:
        context = container["securityContext"]
        assert context["allowPrivilegeEscalation"] is False
        assert context["capabilities"] == {"drop": ["ALL"]}


def test_placement_is_passed_through_beside_the_gpu_selection() -> None:
    affinity = {"podAntiAffinity": {"preferredDuringSchedulingIgnoredDuringExecution": []}}
    md = make(
        resources={"gpuProduct": "NVIDIA-H100-80GB-HBM3", "gpuResourceName": "amd.com/gpu"},
        placement={
            "nodeSelector": {"pool": "gpu"},
            "tolerations": [
                {"key": "amd.com/gpu", "operator": "Exists", "effect": "NoSchedule"},
                {"key": "spot", "operator": "Exists"},
            ],
            "affinity": affinity,
            "priorityClassName": "high",
        },
    )
    spec = pod(render_model_deployment(md))
    assert spec["nodeSelector"] == {
        "pool": "gpu",
        "nvidia.com/gpu.product": "NVIDIA-H100-80GB-HBM3",
    }
    assert spec["tolerations"] == [
        {"key": "amd.com/gpu", "operator": "Exists", "effect": "NoSchedule"},
        {"key": "spot", "operator": "Exists"},
    ]
    assert spec["affinity"] == affinity
    assert spec["priorityClassName"] == "high"
    assert engine_container(render_model_deployment(md))["resources"]["limits"] == {
        "amd.com/gpu": "1"
    }


@pytest.mark.parametrize(
    ("engine", "args", "paths"),
    [
        ("vllm", ["--port", "9000"], ["spec.engine.args[0]"]),
        (
            "vllm",
            ["--trust-remote-code", "-tp=2", "--served_model_name", "x"],
            ["spec.engine.args[1]", "spec.engine.args[2]"],
        ),
        ("sglang", ["--tp-size", "8"], ["spec.engine.args[0]"]),
        ("sglang", ["--model", "/other"], ["spec.engine.args[0]"]),
    ],
)
def test_args_that_collide_with_managed_fields_fail_the_render(
    engine: str, args: list[str], paths: list[str]
) -> None:
    with pytest.raises(RenderError) as caught:
        render_model_deployment(make(engine={"name": engine, "args": args}))
    assert [i.path for i in caught.value.issues] == paths
    assert "managed by Tierwise" in str(caught.value)
