"""Engine pods rendered from ModelDeployments are read into the right simulator command
(engine, served name, profile); other pods are not engine pods. Pure; under a second."""

from __future__ import annotations

from typing import Any

import pytest

from tierwise.api.model_deployment import ModelDeployment
from tierwise.local.sim_workloads import flag_value, sim_command, sim_pod_spec
from tierwise.local.testing import deployment
from tierwise.local.workloads import PodInfo
from tierwise.manifests.render import render_model_deployment
from tierwise.sim.config import EngineKind
from tierwise.sim.latency import Profile


def rendered_pod(name: str, engine: str, served: str | None = None) -> PodInfo:
    model: dict[str, Any] = {"uri": "hf://Qwen/Qwen2.5-0.5B-Instruct"}
    if served is not None:
        model["servedName"] = served
    md = ModelDeployment.model_validate({
        "apiVersion": "tierwise.dev/v1alpha1", "kind": "ModelDeployment",
        "metadata": {"name": name, "namespace": "demo"},
        "spec": {"model": model, "engine": {"name": engine}},
    })
    objects = render_model_deployment(md, replicas=1)
    dep = next(o for o in objects if o["kind"] == "Deployment")
    return PodInfo(namespace="demo", name=f"{name}-abc-12345", deployment=dep["metadata"]["name"],
                   template=dep["spec"]["template"])


@pytest.mark.parametrize(
    ("engine", "served", "expected_model"),
    [
        ("vllm", None, "small-llm"),
        ("sglang", None, "small-llm"),
        ("vllm", "qwen2.5-0.5b", "qwen2.5-0.5b"),
        ("sglang", "Qwen/Qwen2.5:0.5b", "Qwen/Qwen2.5:0.5b"),
    ],
)
def test_rendered_engine_pod_becomes_that_engine_with_its_served_name(
    engine: str, served: str | None, expected_model: str
) -> None:
    spec = sim_pod_spec(rendered_pod("small-llm", engine, served), {"small-llm": "small"})
    assert spec is not None
    assert spec.engine is EngineKind(engine)
    assert spec.model == expected_model
    assert spec.profile is Profile.SMALL
    assert spec.model_deployment == "small-llm"


@pytest.mark.parametrize(
    ("profiles", "default", "expected"),
    [
        ({}, "mid", Profile.MID),
        ({}, "large", Profile.LARGE),
        ({"other": "small"}, "zero", Profile.ZERO),
        ({"mid-llm": "large"}, "small", Profile.LARGE),
    ],
)
def test_profile_comes_from_the_mapping_else_the_default(
    profiles: dict[str, str], default: str, expected: Profile
) -> None:
    spec = sim_pod_spec(rendered_pod("mid-llm", "vllm"), profiles, default_profile=default)
    assert spec is not None
    assert spec.profile is expected


def test_a_plain_deployment_is_not_an_engine_pod() -> None:
    plain = deployment("web", image="nginx:1.27")
    pod = PodInfo("demo", "web-1", "web", plain["spec"]["template"])
    assert sim_pod_spec(pod, {}) is None


def test_an_unlabelled_pod_running_an_engine_command_is_recognised() -> None:
    template = {"spec": {"containers": [{"name": "engine", "command": [
        "python3", "-m", "sglang.launch_server", "--served-model-name=m"]}]}}
    spec = sim_pod_spec(PodInfo("demo", "x-1", "x", template), {})
    assert spec is not None
    assert spec.engine is EngineKind.SGLANG
    assert spec.model == "m"


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        ([], None),
        (["--served-model-name"], None),
        (["--served-model-name", "a"], "a"),
        (["--served-model-name=b"], "b"),
        (["--served-model-name", "a", "--served-model-name=c"], "c"),
        (["--served-model-name", "模型-ü"], "模型-ü"),
        (["--served-model-names", "x"], None),
    ],
)
def test_flag_value(argv: list[str], expected: str | None) -> None:
    assert flag_value(argv, "--served-model-name") == expected


def test_command_runs_the_simulator_module_on_the_given_port() -> None:
    spec = sim_pod_spec(rendered_pod("small-llm", "sglang"), {"small-llm": "small"})
    assert spec is not None
    argv = sim_command(spec, 18123)
    assert argv[1:4] == ["-m", "tierwise.sim", "engine"]
    assert flag_value(argv, "--engine") == "sglang"
    assert flag_value(argv, "--model") == "small-llm"
    assert flag_value(argv, "--profile") == "small"
    assert flag_value(argv, "--port") == "18123"


def test_unknown_profile_is_refused_up_front() -> None:
    from tierwise.local.sim_workloads import SimWorkloadBackend

    with pytest.raises(ValueError, match="huge"):
        SimWorkloadBackend({"a": "huge"})


def test_engine_args_reach_the_simulator_of_that_model_deployment_only() -> None:
    args = {"small-llm": ["--max-running", "2"]}
    small = sim_pod_spec(rendered_pod("small-llm", "vllm"), {}, engine_args=args)
    mid = sim_pod_spec(rendered_pod("mid-llm", "vllm"), {}, engine_args=args)
    assert small is not None
    assert mid is not None
    assert flag_value(sim_command(small, 1), "--max-running") == "2"
    assert flag_value(sim_command(mid, 1), "--max-running") is None
