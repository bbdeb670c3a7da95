"""The default command line of each engine carries every spec setting, spelled as the
engine's own CLI spells it (see the source citations in tierwise/engines/*.py)."""

from __future__ import annotations

import pytest

from tierwise.api.model_deployment import EngineName, EngineSpec
from tierwise.engines import LaunchConfig, all_engines, engine_for


def value_after(command: list[str], flag: str) -> str | None:
    return command[command.index(flag) + 1] if flag in command else None


def launch(**overrides: object) -> LaunchConfig:
    base: dict[str, object] = {"model": "Qwen/Qwen3-8B", "served_name": "qwen"}
    return LaunchConfig(**{**base, **overrides})  # type: ignore[arg-type]


def test_sglang_command_matches_its_launch_server_cli() -> None:
    command = engine_for("sglang").command(launch(tensor_parallel_size=4))
    assert command[:3] == ["python3", "-m", "sglang.launch_server"]
    assert value_after(command, "--model-path") == "Qwen/Qwen3-8B"
    assert value_after(command, "--served-model-name") == "qwen"
    assert value_after(command, "--tp-size") == "4"
    assert value_after(command, "--host") == "0.0.0.0"
    assert value_after(command, "--port") == "30000"
    assert "--enable-metrics" in command
    assert "--disable-radix-cache" not in command


def test_vllm_command_matches_vllm_serve() -> None:
    command = engine_for("vllm").command(launch(tensor_parallel_size=2))
    assert command[:3] == ["vllm", "serve", "Qwen/Qwen3-8B"]
    assert value_after(command, "--served-model-name") == "qwen"
    assert value_after(command, "--tensor-parallel-size") == "2"
    assert value_after(command, "--port") == "8000"
    assert "--enable-prefix-caching" in command


@pytest.mark.parametrize(
    ("engine", "on", "off"),
    [
        ("sglang", [], ["--disable-radix-cache"]),
        ("vllm", ["--enable-prefix-caching"], ["--no-enable-prefix-caching"]),
    ],
)
def test_prefix_caching_switch(engine: str, on: list[str], off: list[str]) -> None:
    flags = {"--disable-radix-cache", "--enable-prefix-caching", "--no-enable-prefix-caching"}
    enabled = engine_for(engine).command(launch(prefix_caching=True))
    disabled = engine_for(engine).command(launch(prefix_caching=False))
    assert [t for t in enabled if t in flags] == on
    assert [t for t in disabled if t in flags] == off


@pytest.mark.parametrize(
    ("engine", "context_flag", "dp_flag"),
    [
        ("sglang", "--context-length", "--dp-size"),
        ("vllm", "--max-model-len", "--data-parallel-size"),
    ],
)
@pytest.mark.parametrize(
    ("context", "quantization", "revision", "dp"),
    [(None, None, None, 1), (131072, "fp8", "main", 2), (256, "awq", "ü-branch", 3)],
)
def test_optional_settings_appear_only_when_set(
    engine: str,
    context_flag: str,
    dp_flag: str,
    context: int | None,
    quantization: str | None,
    revision: str | None,
    dp: int,
) -> None:
    command = engine_for(engine).command(
        launch(
            context_length=context,
            quantization=quantization,
            revision=revision,
            data_parallel_size=dp,
        )
    )
    assert value_after(command, context_flag) == (str(context) if context else None)
    assert value_after(command, "--quantization") == quantization
    assert value_after(command, "--revision") == revision
    assert value_after(command, dp_flag) == (str(dp) if dp > 1 else None)


@pytest.mark.parametrize(("gpus", "tp", "dp"), [(None, 2, 1), (2, 2, 1), (8, 2, 4), (3, 1, 3)])
def test_gpus_beyond_one_tensor_parallel_group_become_data_parallel(
    gpus: int | None, tp: int, dp: int
) -> None:
    spec = EngineSpec(name=EngineName.VLLM, tensor_parallel_size=tp)
    config = LaunchConfig.from_spec(spec, model="m", served_name="m", gpus=gpus)
    assert (config.tensor_parallel_size, config.data_parallel_size) == (tp, dp)


def test_registry_knows_every_engine_name_and_only_those() -> None:
    assert {p.name for p in all_engines()} == set(EngineName)
    for name in EngineName:
        profile = engine_for(name)
        assert profile.name is name
        assert engine_for(name.value) == profile
    with pytest.raises(KeyError, match="sglang, vllm"):
        engine_for("tgi")


@pytest.mark.parametrize("engine", list(EngineName))
def test_image_override_replaces_the_pinned_default(engine: EngineName) -> None:
    profile = engine_for(engine)
    assert ":" in profile.image
    assert not profile.image.endswith(":latest")
    assert profile.image_for(EngineSpec(name=engine)) == profile.image
    custom = EngineSpec(name=engine, image="registry.example.com/e:1")
    assert profile.image_for(custom) == "registry.example.com/e:1"
