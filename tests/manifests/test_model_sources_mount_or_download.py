"""Each model URI scheme puts the weights where the engine's model argument points."""

from __future__ import annotations

from typing import Any

import pytest
from render_helpers import engine_container, flag_value

from tierwise.api.model_deployment import ModelDeployment
from tierwise.manifests import render_model_deployment


def render(uri: str, engine: str = "vllm", **model: Any) -> list[dict[str, Any]]:
    md = ModelDeployment.model_validate(
        {
            "apiVersion": "tierwise.dev/v1alpha1",
            "kind": "ModelDeployment",
            "metadata": {"name": "m"},
            "spec": {
                "model": {"uri": uri, **model},
                "engine": {
                    "name": engine,
                    "env": [
                        {"name": "AWS_REGION", "value": "eu-west-1"},
                        {"name": "OPENAI_KEY", "value": "not-for-the-downloader"},
                    ],
                },
            },
        }
    )
    return render_model_deployment(md)


def model_argument(container: dict[str, Any], engine: str) -> str | None:
    command = container["command"]
    if engine == "vllm":
        return str(command[2])
    return flag_value(command, "--model-path")


@pytest.mark.parametrize("engine", ["vllm", "sglang"])
@pytest.mark.parametrize(
    ("revision", "expected"), [(None, None), ("main", "main"), ("a1b2c3d", "a1b2c3d")]
)
def test_hf_models_are_loaded_by_id_with_their_revision(
    engine: str, revision: str | None, expected: str | None
) -> None:
    extra = {"revision": revision} if revision else {}
    objects = render("hf://Qwen/Qwen3-8B", engine, **extra)
    container = engine_container(objects)
    assert model_argument(container, engine) == "Qwen/Qwen3-8B"
    assert flag_value(container["command"], "--revision") == expected
    assert "initContainers" not in objects[0]["spec"]["template"]["spec"]


@pytest.mark.parametrize("engine", ["vllm", "sglang"])
@pytest.mark.parametrize(
    ("uri", "claim", "path"),
    [
        ("pvc://weights/llama/8b", "weights", "/models/weights/llama/8b"),
        ("pvc://weights", "weights", "/models/weights"),
        ("pvc://weights/", "weights", "/models/weights"),
        ("pvc://w/模型/ünï", "w", "/models/w/模型/ünï"),
    ],
)
def test_pvc_models_are_mounted_read_only(engine: str, uri: str, claim: str, path: str) -> None:
    objects = render(uri, engine)
    pod = objects[0]["spec"]["template"]["spec"]
    (volume,) = [v for v in pod["volumes"] if v["name"] == "model-source"]
    assert volume["persistentVolumeClaim"] == {"claimName": claim, "readOnly": True}
    container = engine_container(objects)
    (mount,) = [m for m in container["volumeMounts"] if m["name"] == "model-source"]
    assert mount == {"name": "model-source", "mountPath": f"/models/{claim}", "readOnly": True}
    assert model_argument(container, engine) == path


@pytest.mark.parametrize("engine", ["vllm", "sglang"])
@pytest.mark.parametrize(
    ("uri", "tool"), [("s3://bucket/org/model", "aws"), ("gs://bucket/org/model", "gcloud")]
)
def test_object_store_models_are_copied_into_the_cache_first(
    engine: str, uri: str, tool: str
) -> None:
    objects = render(uri, engine)
    pod = objects[0]["spec"]["template"]["spec"]
    (init,) = pod["initContainers"]
    target = "/model-cache/models/bucket/org/model"
    assert init["command"][0] == tool
    assert init["command"][-2:] == [uri, target]
    assert init["volumeMounts"] == [{"name": "model-cache", "mountPath": "/model-cache"}]
    assert [e["name"] for e in init["env"]] == ["AWS_REGION"]
    assert model_argument(engine_container(objects), engine) == target
