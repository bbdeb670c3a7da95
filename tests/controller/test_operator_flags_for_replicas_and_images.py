"""The operator's command line for running several replicas (kopf peering) and for the
default engine images the Helm chart passes: the first replica started leads, a later one
waits; a bad ``ENGINE=IMAGE`` is refused naming the fix; the images reach the engine pods."""

from __future__ import annotations

import argparse

import pytest

from tierwise.api.model_deployment import ModelDeployment
from tierwise.controller.cli import engine_image, options_from, register, startup_priority
from tierwise.manifests import RenderSettings, render_model_deployment


def _args(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    register(parser.add_subparsers())
    return parser.parse_args(["operator", "--kubeconfig", "/dev/null", *argv])


def test_a_replica_started_earlier_outranks_a_later_one() -> None:
    first, second = startup_priority(10**18), startup_priority(10**18 + 1_000)
    assert first > second > 0
    assert first < 2**63  # an int64 in the peering object's status


def test_peering_sets_the_name_and_a_start_time_priority(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("tierwise.controller.cli.load_config", lambda *_, **__: None)
    options = options_from(_args("--peering", "tierwise"))
    assert options.peering == "tierwise"
    assert options.priority is not None
    assert options.priority > startup_priority()
    pinned = options_from(_args("--peering", "tierwise", "--priority", "7"))
    assert (pinned.peering, pinned.priority) == ("tierwise", 7)
    alone = options_from(_args())
    assert (alone.standalone, alone.peering, alone.priority) == (True, None, None)


@pytest.mark.parametrize("value", ["vllm", "vllm=", "tgi=img:1", "=img:1", ""])
def test_a_bad_engine_image_names_the_form_to_use(value: str) -> None:
    with pytest.raises(argparse.ArgumentTypeError, match="ENGINE=IMAGE"):
        engine_image(value)


def test_engine_images_come_from_flags_or_the_environment(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr("tierwise.controller.cli.load_config", lambda *_, **__: None)
    monkeypatch.setenv("TIERWISE_ENGINE_IMAGES", "vllm=reg/vllm:1, sglang=reg/sglang:2")
    options = options_from(_args())
    assert dict(options.render.engine_images) == {"vllm": "reg/vllm:1", "sglang": "reg/sglang:2"}
    monkeypatch.setenv("TIERWISE_ENGINE_IMAGES", "vllm:1")
    with pytest.raises(SystemExit, match=r"\$TIERWISE_ENGINE_IMAGES: 'vllm:1'"):
        _args()


@pytest.mark.parametrize(
    ("engine", "override", "expected"),
    [
        ("vllm", None, "mirror.example/vllm:v1"),
        ("sglang", None, "lmsysorg/sglang"),
        ("vllm", "mine/vllm:dev", "mine/vllm:dev"),
    ],
)
def test_the_default_engine_image_reaches_the_pod_unless_the_spec_names_one(
    engine: str, override: str | None, expected: str
) -> None:
    wanted = {"name": engine, "image": override} if override else {"name": engine}
    spec = {"model": {"uri": "hf://Qwen/Qwen2.5-0.5B"}, "engine": wanted}
    md = ModelDeployment.model_validate(
        {"apiVersion": "tierwise.dev/v1alpha1", "kind": "ModelDeployment",
         "metadata": {"name": "m", "namespace": "ns"}, "spec": spec}
    )  # fmt: skip
    settings = RenderSettings(engine_images=(("vllm", "mirror.example/vllm:v1"),))
    deployment = render_model_deployment(md, settings=settings)[0]
    image = deployment["spec"]["template"]["spec"]["containers"][0]["image"]
    assert image.startswith(expected)
