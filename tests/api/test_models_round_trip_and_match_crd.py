"""Property tests over generated resources: model → JSON → model is lossless, and every
object the models accept is also accepted by the generated CRD (OpenAPI schema, list-map
keys, CEL rules), so the two layers never disagree on a valid spec."""

from __future__ import annotations

from typing import Any

import pytest
from api_cluster_layer import cluster_rejections, load_crd_schemas
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tierwise.api.model_deployment import ModelDeployment
from tierwise.api.routing_policy import RoutingPolicy

SCHEMAS = load_crd_schemas()
PROFILE = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])

labels = st.from_regex(r"\A[a-z][a-z0-9-]{0,10}[a-z0-9]\Z")
durations = st.builds(lambda n, u: f"{n}{u}", st.integers(1, 90), st.sampled_from(["s", "m"]))
texts = st.text(min_size=1, max_size=40)  # any Unicode
prices = st.floats(min_value=0, max_value=1e4, allow_nan=False)


def _seconds(duration: str) -> int:
    return int(duration[:-1]) * (60 if duration.endswith("m") else 1)


@st.composite
def model_deployments(draw: st.DrawFn) -> dict[str, Any]:
    scheme = draw(st.sampled_from(["hf", "pvc", "s3", "gs"]))
    tp = draw(st.sampled_from([1, 2, 4, 8]))
    low = draw(st.integers(0, 5))
    high = draw(st.integers(max(low, 1), 10))
    interval, stale = sorted([draw(durations), draw(durations)], key=_seconds)
    spec: dict[str, Any] = {
        "model": {"uri": f"{scheme}://{draw(labels)}/{draw(labels)}"},
        "engine": {
            "name": draw(st.sampled_from(["sglang", "vllm"])),
            "tensorParallelSize": tp,
            "prefixCaching": draw(st.booleans()),
            "args": draw(st.lists(texts, max_size=3)),
            "env": [
                {"name": "X_" + n.upper().replace("-", "_"), "value": v}
                for n, v in draw(st.dictionaries(labels, texts, max_size=2)).items()
            ],
        },
        "resources": {"gpus": tp * draw(st.integers(1, 2))},
        "replicas": {"min": low, "max": high},
        "autoscaling": {
            "interval": interval,
            "metrics": {"staleAfter": stale},
            "targetKVCacheUsage": draw(st.floats(0.05, 1.0)),
        },
    }
    if draw(st.booleans()):
        spec["replicas"]["target"] = draw(st.integers(low, high))
    if draw(st.booleans()):
        spec["cost"] = {"perGPUHour": draw(prices)}
    return _resource("ModelDeployment", draw(labels), spec)


def _backend(draw: st.DrawFn) -> dict[str, Any]:
    if draw(st.booleans()):
        return {"modelDeployment": draw(labels), "weight": draw(st.integers(1, 10))}
    return {
        "external": {
            "baseURL": f"https://{draw(labels)}.example/v1",
            "model": draw(labels),
            "apiKeySecretRef": {"name": draw(labels), "key": "api-key"},
        }
    }


def _distinct(backends: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """A tier names each backend once (the model refuses duplicates)."""
    seen: dict[str, dict[str, Any]] = {}
    for backend in backends:
        ext = backend.get("external") or {}
        seen.setdefault(
            str(backend.get("modelDeployment") or (ext["baseURL"], ext["model"])), backend
        )
    return list(seen.values())


@st.composite
def routing_policies(draw: st.DrawFn) -> dict[str, Any]:
    tier_names = draw(st.lists(labels, min_size=1, max_size=4, unique=True))
    categories = draw(st.lists(labels, max_size=3, unique=True))
    tiers = [
        {
            "name": name,
            "backends": _distinct([_backend(draw) for _ in range(draw(st.integers(1, 2)))]),
        }
        for name in tier_names
    ]
    rules = []
    for name in draw(st.lists(labels, max_size=4, unique=True)):
        match: dict[str, Any] = {"keywords": draw(st.lists(texts, min_size=1, max_size=3))}
        if categories and draw(st.booleans()):
            match = {"category": draw(st.sampled_from(categories))}
        rules.append({"name": name, "tier": draw(st.sampled_from(tier_names)), "match": match})
    spec: dict[str, Any] = {"tiers": tiers, "rules": rules}
    if categories:
        spec["classifier"] = {
            "categories": [
                {"name": c, "examples": draw(st.lists(texts, min_size=1, max_size=2))}
                for c in categories
            ]
        }
    if draw(st.booleans()):
        spec["defaultTier"] = draw(st.sampled_from(tier_names))
    return _resource("RoutingPolicy", draw(labels), spec)


def _resource(kind: str, name: str, spec: dict[str, Any]) -> dict[str, Any]:
    meta = {"name": name}
    return {"apiVersion": "tierwise.dev/v1alpha1", "kind": kind, "metadata": meta, "spec": spec}


CASES = [(ModelDeployment, model_deployments()), (RoutingPolicy, routing_policies())]


@pytest.mark.parametrize(("model", "strategy"), CASES, ids=["ModelDeployment", "RoutingPolicy"])
def test_model_survives_json_round_trip(model: Any, strategy: Any) -> None:
    @PROFILE
    @given(strategy)
    def check(raw: dict[str, Any]) -> None:
        resource = model.model_validate(raw)
        again = model.model_validate_json(
            resource.model_dump_json(by_alias=True, exclude_none=True)
        )
        assert again == resource
        assert again.model_dump(by_alias=True) == resource.model_dump(by_alias=True)

    check()


@pytest.mark.parametrize(("model", "strategy"), CASES, ids=["ModelDeployment", "RoutingPolicy"])
def test_what_the_model_accepts_the_crd_accepts(model: Any, strategy: Any) -> None:
    @PROFILE
    @given(strategy)
    def check(raw: dict[str, Any]) -> None:
        dumped = model.model_validate(raw).model_dump(mode="json", by_alias=True, exclude_none=True)
        for candidate in (raw, dumped):  # as written, and as the operator would write it back
            rejections = cluster_rejections(SCHEMAS[raw["kind"]], candidate)
            assert not any(rejections.values()), rejections

    check()


BASE_MD: dict[str, Any] = {
    "model": {"uri": "hf://Qwen/Qwen3-8B"},
    "engine": {"name": "vllm"},
}


@PROFILE
@given(
    low=st.integers(0, 6),
    high=st.integers(1, 6),
    target=st.none() | st.integers(0, 8),
    tp=st.sampled_from([1, 2, 3, 4, 8]),
    gpus=st.none() | st.integers(1, 16),
    interval=durations,
    stale=durations,
)
def test_model_and_cel_agree_on_cross_field_rules(
    low: int, high: int, target: int | None, tp: int, gpus: int | None, interval: str, stale: str
) -> None:
    """Arbitrary (often invalid) combinations: the models accept exactly what CEL accepts."""
    replicas: dict[str, Any] = {"min": low, "max": high}
    if target is not None:
        replicas["target"] = target
    spec = {
        **BASE_MD,
        "engine": {"name": "vllm", "tensorParallelSize": tp},
        "resources": {} if gpus is None else {"gpus": gpus},
        "replicas": replicas,
        "autoscaling": {"interval": interval, "metrics": {"staleAfter": stale}},
    }
    raw = _resource("ModelDeployment", "md", spec)
    try:
        ModelDeployment.model_validate(raw)
        model_ok = True
    except ValueError:
        model_ok = False
    rejections = cluster_rejections(SCHEMAS["ModelDeployment"], raw)
    assert model_ok == (not any(rejections.values())), rejections
