"""``tierwise validate`` names the field and the fix for every invalid example, exits 1 on
any error and 0 on the examples folder, and never prints a traceback."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from api_cluster_layer import REPO

from tierwise.cli import main

INVALID = sorted((REPO / "examples" / "invalid").glob("*.yaml"))


def _validate(capsys: pytest.CaptureFixture[str], *paths: str | Path) -> tuple[int, str, str]:
    argv = ["validate"]
    for path in paths:
        argv += ["-f", str(path)]
    code = main(argv)
    out, err = capsys.readouterr()
    return code, out, err


def test_there_are_at_least_fifteen_invalid_examples_each_with_expected_text() -> None:
    assert len(INVALID) >= 15
    for path in INVALID:
        assert path.with_suffix(".expected").read_text(encoding="utf-8").strip(), path


@pytest.mark.parametrize("path", INVALID, ids=lambda p: p.stem)
def test_invalid_example_fails_with_its_expected_lines(
    path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = _validate(capsys, path)
    assert code == 1
    assert out == ""
    lines = err.splitlines()
    for expected in path.with_suffix(".expected").read_text(encoding="utf-8").splitlines():
        assert any(line == f"{path}: {expected}" for line in lines), (expected, err)
    assert "Traceback" not in err
    for line in lines:
        # FILE: Kind/name: field.path: what is wrong; how to fix it
        assert line.startswith(f"{path}: ")
        assert ";" in line, f"no fix given: {line}"


def test_examples_folder_validates_and_skips_invalid_and_plain_kinds(
    capsys: pytest.CaptureFixture[str],
) -> None:
    docs = [
        doc
        for path in sorted((REPO / "examples").rglob("*.yaml"))
        if "invalid" not in path.parts
        for doc in yaml.safe_load_all(path.read_text(encoding="utf-8"))
        if doc
    ]
    ours = sum(1 for d in docs if str(d.get("apiVersion", "")).startswith("tierwise.dev/"))
    assert ours >= 5, "the examples folder lost its resources"
    code, out, err = _validate(capsys, REPO / "examples")
    assert (code, err) == (0, "")
    assert f"{ours} resource(s) valid, {len(docs) - ours} non-Tierwise object(s) skipped" in out


def test_several_files_report_every_error_of_every_file(
    capsys: pytest.CaptureFixture[str],
) -> None:
    picked = INVALID[:3]
    code, _, err = _validate(capsys, *picked, REPO / "examples" / "01-small-vllm")
    assert code == 1
    assert {line.split(": ", 1)[0] for line in err.splitlines()} == {str(p) for p in picked}
