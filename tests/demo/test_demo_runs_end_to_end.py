"""``tierwise demo`` runs the whole loop on the embedded cluster and exits by itself: the
real operator reconciles the policy (Ready, with a table version and its tiers) and
autoscales from the simulated engines' metrics — a ModelDeployment's desired replicas rise
under the burst and fall after it, another reaches zero in the quiet spell and comes back
for the wake-up request, which the router held and answered — every request is answered,
each kind lands on its tier, the saving against all-frontier is positive, the key is never
printed, the HTML report is written, and nothing is left running. Bad manifests fail fast
with exit 1 and a message. Wall time about a minute (one short demo of 30 s of traffic)."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from process_tree import Descendants, alive

DEMO = [sys.executable, "-m", "tierwise.cli", "demo"]
INTENDED = {"chat": "small", "code": "mid", "agentic": "mid", "reasoning": "frontier"}


def run_demo(*args: str, timeout: float = 180) -> tuple[subprocess.CompletedProcess[str], set]:
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    process = subprocess.Popen([*DEMO, *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                               text=True, env=env)
    with Descendants(process.pid) as tree:
        try:
            out, err = process.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            process.send_signal(2)  # never SIGKILL first: children would leak
            out, err = process.communicate(timeout=60)
    result = subprocess.CompletedProcess(process.args, process.returncode, out, err)
    return result, tree.seen


def refused(url: str) -> bool:
    host, port = url.removeprefix("http://").rsplit(":", 1)
    with socket.socket() as sock:
        sock.settimeout(1)
        return sock.connect_ex((host, int(port))) != 0


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    report = tmp_path_factory.mktemp("demo") / "report.html"
    result, children = run_demo("--duration", "30", "--requests", "300", "--seed", "1",
                                "--json", "--report", str(report))
    assert result.returncode == 0, result.stderr[-4000:]
    document: dict[str, Any] = json.loads(result.stdout)
    return {"summary": document, "stderr": result.stderr, "children": children,
            "report": report}


@pytest.fixture(scope="module")
def summary(run: dict[str, Any]) -> dict[str, Any]:
    document: dict[str, Any] = run["summary"]
    return document


def phase(summary: dict[str, Any], name: str) -> dict[str, Any]:
    found: dict[str, Any] = next(p for p in summary["phases"] if p["name"] == name)
    return found


def test_every_request_is_answered_and_every_tier_serves(summary: dict[str, Any]) -> None:
    assert summary["requests"] == 300
    assert summary["failed"] == 0
    assert summary["errors"] == []
    tiers = {t["tier"]: t for t in summary["tiers"]}
    assert list(tiers) == ["small", "mid", "frontier"]
    assert all(t["requests"] > 0 and t["failed"] == 0 for t in tiers.values())
    assert [p["name"] for p in summary["phases"]] == ["steady", "burst", "quiet", "wake"]


def test_the_policy_is_ready_with_its_tiers(summary: dict[str, Any]) -> None:
    policy = summary["policy"]
    assert (policy["name"], policy["ready"], policy["reason"]) == ("demo", "True", "RouterReady")
    assert len(policy["table_version"]) >= 8
    assert [t["name"] for t in policy["tiers"]] == ["small", "mid", "frontier"]
    assert all(t["ready"] for t in policy["tiers"])


def test_desired_replicas_rise_under_the_burst_and_fall_after(summary: dict[str, Any]) -> None:
    burst, after = phase(summary, "burst"), phase(summary, "burst")["end"]
    followed = []
    for row in summary["deployments"]:
        line = row["timeline"]
        at_start = max((d for t, d, _ in line if t <= burst["start"]), default=0)
        peak = max((d for t, d, _ in line if burst["start"] <= t <= burst["end"]), default=0)
        later = [d for t, d, _ in line if t > after]
        if peak > at_start and later and min(later) < peak:
            followed.append(row["name"])
            events = [(e["event"], e["reason"]) for e in row["scale_events"]]
            assert ("ScaledUp", "QueueDepth") in events
            assert any(e == "ScaledDown" for e, _ in events)
    assert followed, [r["timeline"] for r in summary["deployments"]]


def test_a_tier_reaches_zero_and_the_held_request_wakes_it(summary: dict[str, Any]) -> None:
    wake = summary["wake"]
    assert wake is not None
    assert (wake["from_zero"], wake["held"], wake["answered"], wake["status"]) == (
        True, True, True, 200)
    row = next(r for r in summary["deployments"] if r["name"] == wake["model_deployment"])
    assert row["min_replicas"] == 0
    line = row["timeline"]
    served = next(i for i, (_, _, ready) in enumerate(line) if ready >= 1)
    zero = next(i for i, (_, d, r) in enumerate(line) if i > served and (d, r) == (0, 0))
    assert any(ready >= 1 for _, _, ready in line[zero:])
    assert line[zero][0] <= wake["sent_s"] + 0.5
    events = [e["event"] for e in row["scale_events"]]
    assert "ScaledToZero" in events
    assert "ScaledFromZero" in events[events.index("ScaledToZero"):]


def test_each_kind_lands_on_its_tier(summary: dict[str, Any]) -> None:
    counts: dict[str, Counter[str]] = {}
    for d in summary["decisions"]:
        counts.setdefault(d["kind"], Counter())[d["tier"]] += d["count"]
    assert {kind: c.most_common(1)[0][0] for kind, c in counts.items()} == INTENDED


def test_saving_against_the_all_frontier_baseline(summary: dict[str, Any]) -> None:
    assert 0 < summary["cost_dollars"] < summary["baseline_dollars"]
    assert 0 < summary["saving_fraction"] < 1
    assert summary["simulated"] is True
    per_tier = sum(t["cost_dollars"] for t in summary["tiers"])
    assert per_tier == pytest.approx(summary["cost_dollars"])
    last = summary["cost_timeline"][-1]
    assert last[2] == pytest.approx(summary["baseline_dollars"], rel=0.2)


def test_progress_shows_the_phases_and_the_scale_events(run: dict[str, Any]) -> None:
    stderr = run["stderr"]
    for line in ("phase steady", "phase burst", "phase quiet", "phase wake",
                 "ScaledUp (QueueDepth)", "ScaledToZero (Idle)", "ScaledFromZero (Activation)",
                 "RoutingPolicy demo: Ready=True"):
        assert line in stderr


def test_the_report_is_written(run: dict[str, Any]) -> None:
    page = run["report"].read_text(encoding="utf-8")
    assert "<script" not in page
    assert "replicas of small-llm over time" in page
    assert "replicas of mid-llm over time" in page


def test_secret_is_never_printed(run: dict[str, Any]) -> None:
    assert "sk-demo-" not in run["stderr"]
    assert "sk-demo-" not in json.dumps(run["summary"])
    assert "sk-demo-" not in run["report"].read_text(encoding="utf-8")


def test_nothing_is_left_running(run: dict[str, Any]) -> None:
    summary = run["summary"]
    urls = [*summary["urls"].values(), *(u for d in summary["deployments"]
                                         for u in d["endpoints"])]
    assert set(summary["urls"]) == {"router", "cluster", "frontier"}
    assert [u for u in urls if not refused(u)] == []
    assert len(run["children"]) >= 6  # operator, frontier, 2 routers, engines
    assert alive(run["children"]) == set()


@pytest.mark.parametrize(
    ("files", "message"),
    [
        ({}, "no manifests"),
        ({"md.yaml": "apiVersion: tierwise.dev/v1alpha1\nkind: ModelDeployment\n"
                     "metadata: {name: x}\nspec: {model: {uri: 'ftp://x'}, "
                     "engine: {name: vllm}}\n"}, "spec.model.uri"),
        ({"only.yaml": "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: ü}\n"},
         "exactly one RoutingPolicy"),
    ],
)
def test_bad_manifests_fail_fast_with_a_message(tmp_path: Path, files: dict[str, str],
                                                message: str) -> None:
    for name, text in files.items():
        (tmp_path / name).write_text(text, encoding="utf-8")
    result, children = run_demo("--manifests", str(tmp_path), timeout=30)
    assert result.returncode == 1
    assert "tierwise demo: failed:" in result.stderr
    assert message in result.stderr
    assert "Traceback" not in result.stderr
    assert alive(children) == set()


@pytest.mark.parametrize(("flag", "value", "message"), [
    ("--duration", "5", "must be at least 20"),
    ("--requests", "3", "must be at least 40"),
    ("--duration", "soon", "'soon' is not a number"),
])
def test_bad_flags_are_refused_before_anything_starts(flag: str, value: str,
                                                      message: str) -> None:
    result = subprocess.run([*DEMO, flag, value], capture_output=True, text=True, timeout=30,
                            check=False)
    assert result.returncode == 2
    assert message in result.stderr
