"""``tierwise demo`` runs the whole system on the embedded cluster and exits by itself:
every tier used, each kind of request on its intended tier, no failed request, replicas
Ready as the operator reports them, a positive saving against the all-frontier baseline,
and nothing left running. Bad manifests fail fast with exit 1 and a message.
Wall time about 25 s (most of it the end-to-end run)."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

DEMO = [sys.executable, "-m", "tierwise.cli", "demo"]


def run_demo(*args: str, timeout: float = 150) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    return subprocess.run([*DEMO, *args], capture_output=True, text=True, timeout=timeout,
                          env=env, check=False)


def refused(url: str) -> bool:
    host, port = url.removeprefix("http://").rsplit(":", 1)
    with socket.socket() as sock:
        sock.settimeout(1)
        return sock.connect_ex((host, int(port))) != 0


@pytest.fixture(scope="module")
def summary() -> dict[str, Any]:
    result = run_demo("--requests", "48", "--seed", "1", "--json")
    assert result.returncode == 0, result.stderr[-3000:]
    document: dict[str, Any] = json.loads(result.stdout)
    document["_stderr"] = result.stderr
    return document


def test_every_tier_serves_and_no_request_fails(summary: dict[str, Any]) -> None:
    assert summary["requests"] == 48
    assert summary["failed"] == 0
    tiers = {t["tier"]: t for t in summary["tiers"]}
    assert list(tiers) == ["small", "mid", "frontier"]
    assert all(t["requests"] > 0 and t["failed"] == 0 for t in tiers.values())
    assert sum(t["requests"] for t in tiers.values()) == 48


def test_each_kind_lands_on_its_tier(summary: dict[str, Any]) -> None:
    where = {(d["kind"], d["tier"]) for d in summary["decisions"]}
    assert where == {("chat", "small"), ("code", "mid"), ("agentic", "mid"),
                     ("reasoning", "frontier")}


def test_saving_against_the_all_frontier_baseline(summary: dict[str, Any]) -> None:
    assert 0 < summary["cost_dollars"] < summary["baseline_dollars"]
    assert 0 < summary["saving_fraction"] < 1
    assert summary["simulated"] is True
    per_tier = sum(t["cost_dollars"] for t in summary["tiers"])
    assert per_tier == pytest.approx(summary["cost_dollars"])


def test_replicas_are_ready_as_the_operator_reports_them(summary: dict[str, Any]) -> None:
    rows = {d["name"]: d for d in summary["deployments"]}
    assert set(rows) == {"small-llm", "mid-llm"}
    for row in rows.values():
        assert row["phase"] == "Ready"
        assert row["ready"] == row["desired"] == 2
        assert len(row["endpoints"]) == 2
    assert summary["affinity"].get("hit", 0) > 0  # agent sessions found their cache


def test_secret_is_never_printed(summary: dict[str, Any]) -> None:
    assert "sk-demo-" not in summary["_stderr"]
    assert "sk-demo-" not in json.dumps({k: v for k, v in summary.items() if k != "_stderr"})


def test_nothing_is_left_running(summary: dict[str, Any]) -> None:
    urls = [*summary["urls"].values(), *(u for d in summary["deployments"]
                                         for u in d["endpoints"])]
    assert set(summary["urls"]) == {"router", "cluster", "frontier"}
    assert len(urls) == 7
    assert [u for u in urls if not refused(u)] == []


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
    result = run_demo("--manifests", str(tmp_path), timeout=30)
    assert result.returncode == 1
    assert "tierwise demo: failed:" in result.stderr
    assert message in result.stderr
    assert "Traceback" not in result.stderr
