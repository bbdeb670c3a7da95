"""User args are appended; a user flag replaces Tierwise's flag of the same setting (with
its value) instead of appearing twice, whatever spelling the user picks."""

from __future__ import annotations

import pytest

from tierwise.engines import LaunchConfig, engine_for
from tierwise.engines.args import FlagSyntax, is_flag, split_groups

BASE = {"model": "org/model", "served_name": "m", "context_length": 4096}


def command(engine: str, args: list[str], **extra: object) -> list[str]:
    config = LaunchConfig(**{**BASE, **extra}, extra_args=tuple(args))  # type: ignore[arg-type]
    return engine_for(engine).command(config)


def tail(engine: str, args: list[str], **extra: object) -> list[str]:
    """What follows Tierwise's own part of the command."""
    full = command(engine, args, **extra)
    return full[len(full) - len(args) :]


@pytest.mark.parametrize("engine", ["sglang", "vllm"])
def test_no_args_leave_the_defaults(engine: str) -> None:
    assert command(engine, []) == engine_for(engine).command(LaunchConfig(**BASE))  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("engine", "args", "gone"),
    [
        ("vllm", ["--max-model-len", "8192"], "--max-model-len"),
        ("vllm", ["--max_model_len", "8192"], "--max-model-len"),
        ("vllm", ["--max-model-len=8192"], "--max-model-len"),
        ("vllm", ["--no-enable-prefix-caching"], "--enable-prefix-caching"),
        ("vllm", ["-q", "awq"], "--quantization"),
        ("sglang", ["--context-length", "8192"], "--context-length"),
        ("sglang", ["--quantization=awq"], "--quantization"),
        ("sglang", ["--context-length=8192"], "--context-length"),
    ],
)
def test_a_user_flag_replaces_the_default_in_any_spelling(
    engine: str, args: list[str], gone: str
) -> None:
    full = command(engine, args, quantization="fp8")
    kept = full[: len(full) - len(args)]
    assert gone not in kept
    assert full[len(kept) :] == args


@pytest.mark.parametrize(
    "args",
    [
        ["--lora-modules", "a=/l/a", "b=/l/b", "--trust-remote-code"],
        ["--override-generation-config", '{"temperature": -0.5}'],
        ["--logit-bias", "-1"],
        ["--chat-template", "/templates/模板.jinja", "--max-num-seqs", "64"],
        ["positional-first", "--flag"],
    ],
)
@pytest.mark.parametrize("engine", ["sglang", "vllm"])
def test_user_args_are_appended_verbatim_in_order(engine: str, args: list[str]) -> None:
    assert tail(engine, args) == args
    defaults = command(engine, [])
    assert command(engine, args)[: len(defaults)] == defaults


def test_repeated_user_flags_are_all_kept() -> None:
    args = ["--middleware", "a", "--middleware", "b"]
    assert tail("vllm", args) == args


@pytest.mark.parametrize(
    ("token", "flag"),
    [
        ("--x", True),
        ("-q", True),
        ("-1", False),
        ("-0.5", False),
        ("-", False),
        ("", False),
        ("ü", False),
    ],
)
def test_flags_are_told_from_negative_numbers(token: str, flag: bool) -> None:
    assert is_flag(token) is flag


def test_groups_take_the_values_that_follow_a_flag() -> None:
    groups = split_groups(["a", "--x", "1", "2", "--y=3", "4", "--z"], FlagSyntax(aliases={}))
    assert [(g.key, g.tokens) for g in groups] == [
        ("#0", ("a",)),
        ("--x", ("--x", "1", "2")),
        ("--y", ("--y=3",)),
        ("#5", ("4",)),
        ("--z", ("--z",)),
    ]
