"""images/Dockerfile keeps the promises docs/install.md makes, checked statically.

The build and smoke test need a Docker engine (``scripts/image-smoke.sh``, run by .ci/run);
these checks run everywhere in the normal suite: a multi-stage build whose final stage runs
as uid 65532, holds no compilers, package managers or pip, says where its source lives, and
starts from a public base that a build argument can replace.
"""

from __future__ import annotations

import re
import shlex
import tomllib
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
DOCKERFILE = ROOT / "images" / "Dockerfile"
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())


@dataclass(frozen=True)
class Instruction:
    keyword: str
    args: str


def parse(text: str) -> list[Instruction]:
    """Instructions in order: comments dropped, backslash continuations joined."""
    instructions: list[Instruction] = []
    pending = ""
    for line in text.splitlines():
        stripped = line.strip()
        if not pending and (not stripped or stripped.startswith("#")):
            continue
        if stripped.startswith("#"):
            continue  # a comment inside a continued instruction
        if stripped.endswith("\\"):
            pending += stripped[:-1].rstrip() + " "
            continue
        keyword, _, args = (pending + stripped).partition(" ")
        instructions.append(Instruction(keyword.upper(), args.strip()))
        pending = ""
    assert not pending, "the Dockerfile ends inside a continued line"
    return instructions


def stages(instructions: list[Instruction]) -> tuple[list[Instruction], list[list[Instruction]]]:
    """(the instructions before the first FROM, one list per stage starting with its FROM)."""
    preamble: list[Instruction] = []
    found: list[list[Instruction]] = []
    for instruction in instructions:
        if instruction.keyword == "FROM":
            found.append([instruction])
        elif found:
            found[-1].append(instruction)
        else:
            preamble.append(instruction)
    return preamble, found


def key_values(args: str) -> dict[str, str]:
    """``KEY=VALUE`` pairs of a LABEL, ENV or ARG instruction (shell-style quoting)."""
    pairs = (word.partition("=") for word in shlex.split(args))
    return {key: value for key, _, value in pairs}


INSTRUCTIONS = parse(DOCKERFILE.read_text())
PREAMBLE, STAGES = stages(INSTRUCTIONS)
FINAL = STAGES[-1]


def final(keyword: str) -> list[str]:
    return [i.args for i in FINAL if i.keyword == keyword]


def test_the_base_is_a_build_argument_defaulting_to_a_public_python_311_image() -> None:
    (default,) = [key_values(i.args)["BASE_IMAGE"] for i in PREAMBLE if i.keyword == "ARG"]
    # python:<3.11 tag>, optionally pinned by digest: a Docker Hub official image, which any
    # machine with registry access can pull (not the Debian-built local base of CI).
    assert re.fullmatch(r"python:3\.11(\.\d+)?-slim-bookworm(@sha256:[0-9a-f]{64})?", default)
    assert PYPROJECT["project"]["requires-python"].startswith(">=3.11")
    assert [stage[0].args.split()[0] for stage in STAGES] == ["${BASE_IMAGE}"] * len(STAGES)


def test_the_final_stage_copies_the_venv_from_a_builder_stage() -> None:
    assert len(STAGES) >= 2
    builder_names = {stage[0].args.split()[-1] for stage in STAGES[:-1]}
    copies = [shlex.split(args) for args in final("COPY")]
    assert any(words[0].removeprefix("--from=") in builder_names for words in copies)


def test_the_builder_installs_from_the_wheels_alone() -> None:
    runs = " ".join(i.args for stage in STAGES[:-1] for i in stage if i.keyword == "RUN")
    assert "--no-index" in runs
    assert "--find-links /wheels" in runs


def test_the_final_stage_runs_as_uid_and_gid_65532() -> None:
    users = [n for n, i in enumerate(FINAL) if i.keyword == "USER"]
    assert users, "no USER in the final stage: the image would run as root"
    assert FINAL[users[-1]].args == "65532:65532"
    # nothing after it is built as that user or switches back
    assert all(i.keyword not in {"RUN", "COPY", "ADD"} for i in FINAL[users[-1] :])


@pytest.mark.parametrize(
    "tool",
    ["gcc", "g++", "cc", "make", "build-essential", "apt-get", "apk", "pip install", "pip3"],
)
def test_the_final_stage_installs_no_build_tools(tool: str) -> None:
    for args in final("RUN"):
        assert not re.search(rf"(^|[\s;&|(]){re.escape(tool)}($|[\s;&|)])", args), args


def test_the_final_stage_keeps_a_read_only_root_usable() -> None:
    env: dict[str, str] = {}
    for args in final("ENV"):
        env.update(key_values(args))
    assert env["PYTHONDONTWRITEBYTECODE"] == "1"
    assert env["HOME"] == "/tmp"
    assert env["PATH"].split(":")[0] == "/opt/tierwise/bin"


def test_the_entry_point_is_the_tierwise_command() -> None:
    assert final("ENTRYPOINT") == ['["tierwise"]']
    assert PYPROJECT["project"]["scripts"]["tierwise"] == "tierwise.cli:main"


@pytest.mark.parametrize(
    ("label", "expected"),
    [
        ("org.opencontainers.image.source", "${SOURCE_URL}"),
        ("org.opencontainers.image.version", "${VERSION}"),
        ("org.opencontainers.image.licenses", PYPROJECT["project"]["license"]),
    ],
)
def test_the_image_carries_oci_labels(label: str, expected: str) -> None:
    labels: dict[str, str] = {}
    for args in final("LABEL"):
        labels.update(key_values(args))
    assert labels[label] == expected


def test_the_label_arguments_default_to_this_release_and_a_source_url() -> None:
    args: dict[str, str] = {}
    for value in final("ARG"):
        args.update(key_values(value))
    assert args["VERSION"] == PYPROJECT["project"]["version"]
    assert re.fullmatch(r"https://\S+", args["SOURCE_URL"])


def test_the_parser_joins_continuations_and_skips_comments() -> None:
    text = "# top\nARG A=1\nRUN a \\\n  # inner\n  && b\nFROM x AS y\n"
    assert parse(text) == [
        Instruction("ARG", "A=1"),
        Instruction("RUN", "a && b"),
        Instruction("FROM", "x AS y"),
    ]
