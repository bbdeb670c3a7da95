"""Args that would make the pod disagree with its manifest (port, model, parallelism)
are reported with the spec field to use instead; anything else is accepted."""

from __future__ import annotations

import pytest

from tierwise.engines import engine_for


@pytest.mark.parametrize(
    ("engine", "args", "indexes", "hint"),
    [
        ("vllm", ["--port", "9000"], [0], "8000"),
        ("vllm", ["--tensor-parallel-size", "2"], [0], "tensorParallelSize"),
        ("vllm", ["-tp", "2"], [0], "tensorParallelSize"),
        ("vllm", ["--tensor_parallel_size=2"], [0], "tensorParallelSize"),
        ("vllm", ["-dp", "2"], [0], "spec.resources.gpus"),
        ("vllm", ["--served-model-name", "x"], [0], "servedName"),
        ("vllm", ["--host", "127.0.0.1"], [0], "all interfaces"),
        ("sglang", ["--tp", "2"], [0], "tensorParallelSize"),
        ("sglang", ["--tensor-parallel-size", "2"], [0], "tensorParallelSize"),
        ("sglang", ["--dp", "2"], [0], "spec.resources.gpus"),
        ("sglang", ["--trust-remote-code", "--model", "/m", "--port=1"], [1, 3], "spec.model.uri"),
        ("sglang", ["--context-length", "9", "--served-model-name", "y"], [2], "servedName"),
    ],
)
def test_managed_flags_are_reported_with_the_field_to_set(
    engine: str, args: list[str], indexes: list[int], hint: str
) -> None:
    issues = engine_for(engine).check_args(args)
    assert [i.index for i in issues] == indexes
    assert hint in " ".join(str(i) for i in issues)
    assert all(str(i).startswith(f"spec.engine.args[{i.index}]: ") for i in issues)


@pytest.mark.parametrize("engine", ["sglang", "vllm"])
@pytest.mark.parametrize(
    "args",
    [
        [],
        ["--max-model-len", "1024", "--context-length", "2048", "--quantization", "fp8"],
        ["--no-enable-prefix-caching", "--disable-radix-cache"],
        ["--chat-template", "/t/ünï.jinja", "--portal-url", "x", "--hostname-override=y"],
    ],
)
def test_other_flags_are_accepted(engine: str, args: list[str]) -> None:
    assert engine_for(engine).check_args(args) == []
