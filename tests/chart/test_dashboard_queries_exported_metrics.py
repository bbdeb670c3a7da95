"""Every query of the Grafana dashboard names metrics the code really exports: the router's
(``RouterMetrics``), the operator's (``OperatorMetrics``) and the engines' (the metric names
of each ``tierwise.engines`` profile, checked against vLLM and SGLang in tests/engines). A
renamed metric breaks this test, not the dashboard in someone's Grafana. The dashboard also
covers what the issue asks for, per tier and per ModelDeployment, and ships in a ConfigMap
Grafana's sidecar finds."""

from __future__ import annotations

import json
import re
from dataclasses import fields
from typing import Any

import pytest
from prometheus_client import CollectorRegistry

from chart_support import CHART, find, render
from tierwise.controller.metrics import OperatorMetrics
from tierwise.engines.registry import all_engines
from tierwise.router.metrics import RouterMetrics

DASHBOARD = CHART / "files" / "dashboards" / "tierwise.json"
_SUFFIXES = {
    "counter": ("_total",),
    "histogram": ("_bucket", "_sum", "_count"),
    "gauge": ("",),
    "info": ("_info",),
}
_CLAUSES = re.compile(r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)")
_KEYWORDS = {"and", "or", "unless", "bool", "offset", "inf", "nan"}


def _series(registry: CollectorRegistry) -> set[str]:
    """The sample names a registry exposes (families with their type's suffixes)."""
    names: set[str] = set()
    for family in registry.collect():
        names |= {family.name + suffix for suffix in _SUFFIXES[family.type]}
    return names


def exported() -> set[str]:
    names = _series(RouterMetrics().registry) | _series(OperatorMetrics().registry)
    for engine in all_engines():
        for item in fields(engine.metrics):
            name = getattr(engine.metrics, item.name)
            if name is None:
                continue
            histogram = item.name == "time_to_first_token_seconds"
            names |= {name + s for s in _SUFFIXES["histogram"]} if histogram else {name}
    return names


def metric_names(expr: str) -> set[str]:
    """Metric names in a PromQL expression (not functions, labels, keywords or numbers)."""
    text = re.sub(r'"(?:[^"\\]|\\.)*"', '""', expr)
    text = re.sub(r"\{[^}]*\}", "", text)
    text = re.sub(r"\[[^\]]*\]", "", text)
    text = _CLAUSES.sub("", text)
    names = set()
    for match in re.finditer(r"[A-Za-z_:][A-Za-z0-9_:]*", text):
        following = text[match.end() :].lstrip()
        word = match.group(0)
        if following.startswith("(") or word.lower() in _KEYWORDS:
            continue
        names.add(word)
    return names


def _targets(dashboard: dict[str, Any]) -> list[tuple[str, str]]:
    return [
        (panel["title"], target["expr"])
        for panel in dashboard["panels"]
        for target in panel.get("targets") or []
    ]


def _dashboard() -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads(DASHBOARD.read_text())
    return loaded


@pytest.mark.parametrize(
    ("expr", "names"),
    [
        ('sum by (tier) (rate(a_total{code=~"5..", x="y"}[$__rate_interval]))', {"a_total"}),
        ("histogram_quantile(0.95, sum by (le) (rate(b_bucket[5m]))) * 3600", {"b_bucket"}),
        ('label_replace(vllm:x{pod=~"$m-.*"}, "md", "$1", "pod", "(.+)-[^-]+")', {"vllm:x"}),
        ("c / on(pod) group_left(node) d", {"c", "d"}),
        ("1 - sum(increase(e[$__range])) / sum(f)", {"e", "f"}),
    ],
)
def test_metric_names_are_read_from_promql(expr: str, names: set[str]) -> None:
    assert metric_names(expr) == names


def test_every_panel_queries_only_exported_metrics() -> None:
    known = exported()
    assert {"tierwise_router_requests_total", "vllm:num_requests_waiting"} <= known
    targets = _targets(_dashboard())
    assert len(targets) >= 25
    unknown = {
        f"{title}: {name}"
        for title, expr in targets
        for name in metric_names(expr)
        if name not in known
    }
    assert unknown == set()
    for variable in _dashboard()["templating"]["list"]:
        query = re.match(r"label_values\((.+),\s*\w+\)$", variable.get("definition", ""))
        if variable["type"] == "query":
            assert query is not None, variable["name"]
            assert metric_names(query.group(1)) <= known


def test_the_dashboard_shows_tiers_and_model_deployments() -> None:
    used = {name for _, expr in _targets(_dashboard()) for name in metric_names(expr)}
    per_tier = {
        "tierwise_router_requests_total",
        "tierwise_router_request_duration_seconds_bucket",
        "tierwise_router_time_to_first_token_seconds_bucket",
        "tierwise_router_tokens_total",
        "tierwise_router_cost_dollars_total",
        "tierwise_router_baseline_cost_dollars_total",
        "tierwise_router_fallbacks_total",
    }
    per_model = {
        "tierwise_operator_desired_replicas",
        "tierwise_router_endpoints",
        "tierwise_operator_scale_decisions_total",
    }
    engines = set()
    for engine in all_engines():
        m = engine.metrics
        engines |= {m.waiting_requests, m.kv_cache_usage}
        engines |= {n for n in (m.prefix_cache_hit_rate, m.prefix_cache_hits_total) if n}
    assert per_tier | per_model | engines <= used


def test_grafanas_sidecar_finds_the_dashboard_config_map() -> None:
    config_map = find(render(), "ConfigMap", "tierwise-dashboard")
    assert config_map["metadata"]["labels"]["grafana_dashboard"] == "1"
    assert json.loads(config_map["data"]["tierwise.json"]) == _dashboard()
    assert not [
        o for o in render({"dashboard": {"enabled": False}}) if "dashboard" in o["metadata"]["name"]
    ]
