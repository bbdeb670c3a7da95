"""The scale-from-zero demand series name the router's namespace, so an operator matches
a ModelDeployment by namespace and name, never by name alone.

The namespace comes from ``--namespace``, else ``$POD_NAMESPACE`` (the downward API in a
pod), else ``default``."""

from __future__ import annotations

import argparse

import pytest
from prometheus_client import generate_latest

from tierwise.autoscaler import demand
from tierwise.autoscaler.exposition import parse
from tierwise.router import cli
from tierwise.router.metrics import RouterMetrics

NAMES = [demand.PENDING_REQUESTS, demand.LAST_REQUEST_TIMESTAMP]


@pytest.mark.parametrize("namespace", ["default", "models", "team-a", "ünï"])
@pytest.mark.parametrize("models", [{}, {"chat": 2}, {"chat": 1, "模型": 3}])
def test_demand_series_carry_the_namespace(namespace: str, models: dict[str, int]) -> None:
    metrics = RouterMetrics(namespace)
    metrics.pending_by_model.update(models)
    metrics.last_request_at.update({m: 1_700_000_000.0 for m in models})
    metrics.last_request_at["external:gpt"] = 1_700_000_001.0
    found = parse(generate_latest(metrics.registry).decode(), NAMES)
    pending = {
        (s.labels[demand.NAMESPACE_LABEL], s.labels[demand.MODEL_DEPLOYMENT_LABEL]): s.value
        for s in found.get(demand.PENDING_REQUESTS, [])
    }
    assert pending == {(namespace, m): float(n) for m, n in models.items()}
    stamps = found.get(demand.LAST_REQUEST_TIMESTAMP, [])
    assert {s.labels[demand.MODEL_DEPLOYMENT_LABEL] for s in stamps} == set(models)
    assert all(s.labels[demand.NAMESPACE_LABEL] == namespace for s in stamps)


def _settings_namespace(argv: list[str]) -> str:
    parser = argparse.ArgumentParser()
    cli.register(parser.add_subparsers())
    args = parser.parse_args(["router", "--table", "t.json", *argv])
    return cli.settings_from(args).namespace


@pytest.mark.parametrize(
    ("env", "argv", "expected"),
    [
        (None, [], "default"),
        ("", [], "default"),
        ("models", [], "models"),
        ("models", ["--namespace", "team-b"], "team-b"),
        (None, ["--namespace", "team-b"], "team-b"),
    ],
)
def test_namespace_comes_from_flag_then_pod_namespace(
    monkeypatch: pytest.MonkeyPatch, env: str | None, argv: list[str], expected: str
) -> None:
    if env is None:
        monkeypatch.delenv("POD_NAMESPACE", raising=False)
    else:
        monkeypatch.setenv("POD_NAMESPACE", env)
    assert _settings_namespace(argv) == expected
