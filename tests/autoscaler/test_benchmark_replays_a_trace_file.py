"""``bench/autoscale.py --trace``: a trace file in the public format goes through every
policy end to end (a CI-sized fixture), the JSON has exactly the documented shape, and a
malformed trace is refused naming the line."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
FIXTURE = Path(__file__).parent / "fixtures" / "trace_tiny.csv"
POLICY_FIELDS = {"name", "slo_attainment", "gpu_hours", "p99_wait_s", "peak_replicas"}


def bench(*args: str | Path) -> subprocess.CompletedProcess[str]:
    path = os.pathsep.join(filter(None, [str(REPO / "operator"), os.environ.get("PYTHONPATH")]))
    return subprocess.run(
        [sys.executable, str(REPO / "bench" / "autoscale.py"), *map(str, args)],
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONPATH": path},
        timeout=120,
        check=False,
    )


def test_a_trace_fixture_runs_through_every_policy(tmp_path: Path) -> None:
    out = tmp_path / "result.json"
    done = bench("--trace", FIXTURE, "--speedup", "2", "--cold-start", "60", "--json", out)
    assert done.returncode == 0, done.stderr
    data = json.loads(out.read_text())
    assert set(data) == {"trace", "policies"}
    assert data["trace"] == "trace_tiny.csv x2"
    by_name = {p["name"]: p for p in data["policies"]}
    assert data["policies"][0]["name"] == "tierwise"  # the CRD defaults
    assert {"static-peak", "hpa-gpu", "queue-only", "keda-pending"} <= set(by_name)
    for policy in data["policies"]:
        assert set(policy) == POLICY_FIELDS
        assert 0.0 <= policy["slo_attainment"] <= 1.0
        assert policy["gpu_hours"] > 0
        assert policy["p99_wait_s"] >= 0.5
        assert 1 <= policy["peak_replicas"] <= 40
    # the guard is opt-in, so DCGM data changes nothing for the defaults
    assert by_name["tierwise+dcgm"] == {**by_name["tierwise"], "name": "tierwise+dcgm"}
    assert "cold start 60 s" in done.stdout


def test_a_malformed_trace_is_refused_naming_the_line(tmp_path: Path) -> None:
    bad = tmp_path / "bad.csv"
    rows = ["TIMESTAMP,ContextTokens,GeneratedTokens", "2024-05-10 00:00:00.0,1,1"]
    bad.write_text("\n".join([*rows, "2024-05-10 00:00:01.0,x,1"]) + "\n")
    done = bench("--trace", bad)
    assert done.returncode == 2
    assert "bad.csv:3: ContextTokens 'x' is not a token count" in done.stderr


def test_json_takes_one_cold_start(tmp_path: Path) -> None:
    done = bench("--trace", FIXTURE, "--cold-start", "60", "180", "--json", tmp_path / "r.json")
    assert done.returncode == 2
    assert "--json writes one run" in done.stderr


def test_a_variant_adds_a_tierwise_row_and_bad_fields_are_refused(tmp_path: Path) -> None:
    out = tmp_path / "result.json"
    row = 'kv0.6={"targetKVCacheUsage": 0.6}'
    done = bench("--trace", FIXTURE, "--speedup", "4", "--variant", row, "--json", out)
    assert done.returncode == 0, done.stderr
    assert "kv0.6" in {p["name"] for p in json.loads(out.read_text())["policies"]}
    bad = bench("--trace", FIXTURE, "--variant", 'x={"targetKVCacheUsage": 7}')
    assert bad.returncode == 2
    assert "targetKVCacheUsage: Input should be less than or equal to 1" in bad.stderr
