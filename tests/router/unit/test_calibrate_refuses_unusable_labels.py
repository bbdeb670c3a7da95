"""``tierwise route calibrate`` refuses malformed or insufficient labelled data with a
message naming the file, the line or the shortfall, and exits 2."""

from __future__ import annotations

import argparse
from pathlib import Path

import pytest

from tierwise.cli import main
from tierwise.router.calibrate_data import CalibrationDataError, read_labels
from tierwise.router.calibrate_fit import check_enough


def write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


@pytest.mark.parametrize(
    ("name", "text", "message"),
    [
        ("a.csv", "", "the file is empty"),
        ("a.csv", "question,small,frontier\nhi,true,true\n", "no 'prompt' column"),
        ("a.csv", "prompt,small\nhi,true\n", "at least two tiers"),
        ("a.csv", "prompt,small,frontier\nhi,true,true\nho,maybe,true\n", "line 3: tier 'small'"),
        ("a.csv", "prompt,small,frontier\nhi,true\n", "line 2: 2 fields, the header has 3"),
        ("a.csv", "prompt,small,frontier\n ,true,true\n", "line 2: 'prompt' is missing"),
        (
            "a.jsonl",
            '{"prompt": "a", "small": true, "frontier": false}\n{oops\n',
            "line 2: not JSON",
        ),
        ("a.jsonl", '["prompt"]\n', "line 1: expected a JSON object"),
        ("a.jsonl", '{"prompt": "a", "small": 2, "frontier": true}\n', "write true or false"),
        ("a.txt", "prompt,small,frontier\n", "use a .csv or .jsonl file"),
    ],
)
def test_malformed_rows_are_refused_with_the_line(
    tmp_path: Path, name: str, text: str, message: str
) -> None:
    path = write(tmp_path, name, text)
    with pytest.raises(CalibrationDataError, match=message):
        read_labels(path)


def test_tier_columns_can_be_chosen_and_ordered(tmp_path: Path) -> None:
    path = write(tmp_path, "a.csv", "prompt,frontier,small,group\nhi,true,false,g1\n")
    data = read_labels(path, ["small", "frontier"])
    assert data.tiers == ("small", "frontier")
    assert data.labels == [(False, True)]
    assert data.groups == ["g1"]
    with pytest.raises(CalibrationDataError, match="tier column\\(s\\) mid missing"):
        read_labels(path, ["small", "mid"])


def rows(good: int, bad: int) -> str:
    lines = [f"prompt {i},true,true" for i in range(good)]
    lines += [f"prompt x{i},false,true" for i in range(bad)]
    return "prompt,small,frontier\n" + "\n".join(lines) + "\n"


@pytest.mark.parametrize(
    ("good", "bad", "message"),
    [
        (20, 5, "25 labelled rows; calibrate needs at least 50"),
        (60, 3, "tier 'small' answered 60 prompts well and 3 badly"),
    ],
)
def test_too_few_labels_are_refused_with_the_shortfall(
    tmp_path: Path, good: int, bad: int, message: str
) -> None:
    data = read_labels(write(tmp_path, "a.csv", rows(good, bad)))
    with pytest.raises(CalibrationDataError, match=message):
        check_enough(data, 0.95)


def test_cli_exits_2_naming_the_problem(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = write(tmp_path, "a.csv", rows(10, 10))
    assert main(["route", "calibrate", "--data", str(path), "-o", str(tmp_path / "o")]) == 2
    assert "20 labelled rows" in capsys.readouterr().err
    assert not (tmp_path / "o").exists()
    code = main(
        ["route", "calibrate", "--data", str(path), "-o", str(tmp_path), "--target-quality", "2"]
    )
    assert code == 2
    assert "--target-quality 2" in capsys.readouterr().err


def test_arguments_namespace_is_what_calibrate_reads() -> None:
    parser = argparse.ArgumentParser()
    sub = parser.add_subparsers()
    from tierwise.router.calibrate_cli import register

    register(sub)
    args = parser.parse_args(["calibrate", "--data", "x.csv", "-o", "out"])
    assert (args.target_quality, args.max_top_tier_share, args.seed, args.folds) == (
        0.95,
        None,
        0,
        5,
    )
