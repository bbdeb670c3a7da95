"""Cost accounting: per-million prices, per-GPU-hour with observed throughput and a floor,
and the all-top-tier baseline."""

from __future__ import annotations

import pytest

from tierwise.api.model_deployment import ModelDeployment
from tierwise.api.routing_policy import RoutingPolicy
from tierwise.router.cost import (
    DEFAULT_FLOOR_TOKENS_PER_SECOND,
    ThroughputView,
    TierPrice,
    baseline_cost,
    per_token_price,
    request_cost,
)
from tierwise.router.table import Endpoint, TierEntry, build_table


def tier(price: TierPrice, replicas: int = 1, name: str = "t") -> TierEntry:
    eps = tuple(Endpoint(f"http://h:{i}", "md", "m") for i in range(replicas))
    return TierEntry(name, 0, eps, price, None)


@pytest.mark.parametrize(
    ("price", "prompt", "completion", "dollars"),
    [
        (TierPrice(2.0, 8.0), 1_000_000, 0, 2.0),
        (TierPrice(2.0, 8.0), 500_000, 250_000, 3.0),
        (TierPrice(2.0, None), 0, 1000, 0.0),
        (TierPrice(2.0, 8.0), 0, 0, 0.0),
        (TierPrice(2.0, 8.0), -5, 10, 8e-5),
        (TierPrice(), 1000, 1000, 0.0),
    ],
)
def test_per_million_prices(price: TierPrice, prompt: int, completion: int, dollars: float) -> None:
    assert request_cost(tier(price), prompt, completion) == pytest.approx(dollars)


def test_per_token_prices_win_over_gpu_hour() -> None:
    both = TierPrice(1.0, 1.0, per_gpu_hour=100.0)
    assert request_cost(tier(both), 1_000_000, 0) == pytest.approx(1.0)


def test_gpu_hour_uses_observed_throughput() -> None:
    view = ThroughputView(window_seconds=60, floor_tokens_per_second=1)
    t = tier(TierPrice(per_gpu_hour=3.0, gpus_per_replica=2), replicas=2)
    for second in range(60):
        view.add("t", 10_000, now=float(second))  # 10k tokens/s
    hourly = 3.0 * 2 * 2
    expected_each = hourly / (10_000 * 3600)
    p_in, p_out = per_token_price(t, throughput=view, now=59.0)
    assert p_in == p_out == pytest.approx(expected_each, rel=0.05)
    assert request_cost(t, 1000, 1000, throughput=view, now=59.0) == pytest.approx(
        2000 * expected_each, rel=0.05
    )


def test_idle_tier_is_priced_at_the_floor_not_infinity() -> None:
    view = ThroughputView(window_seconds=60, floor_tokens_per_second=500)
    t = tier(TierPrice(per_gpu_hour=1.8), replicas=3)
    p_in, _ = per_token_price(t, throughput=view, now=0.0)
    assert p_in == pytest.approx(1.8 * 3 / (500 * 3600 * 3))
    view.add("t", 10, now=1.0)  # a trickle stays at the floor
    assert per_token_price(t, throughput=view, now=1.0)[0] == pytest.approx(p_in)


def test_no_view_uses_the_default_floor() -> None:
    t = tier(TierPrice(per_gpu_hour=3.6))
    expected = 3.6 / (DEFAULT_FLOOR_TOKENS_PER_SECOND * 3600)
    assert per_token_price(t)[0] == pytest.approx(expected)
    assert request_cost(t, 1000, 0) > 0  # self-hosted tokens are never free


def test_throughput_window_slides() -> None:
    view = ThroughputView(window_seconds=30, floor_tokens_per_second=1)
    view.add("t", 3000, now=0.0)
    assert view.observed_tokens_per_hour("t", now=1.0) == pytest.approx(3000 * 3600 / 30)
    assert view.observed_tokens_per_hour("t", now=100.0) == 0.0
    assert view.observed_tokens_per_hour("other", now=1.0) == 0.0


def test_throughput_memory_is_bounded() -> None:
    view = ThroughputView(window_seconds=10)
    for i in range(10_000):
        view.add("t", 1, now=i * 0.5)
    assert len(view._tiers["t"]) <= 31


@pytest.mark.parametrize(("window", "floor"), [(0, 1), (1, 0), (-1, 5)])
def test_view_rejects_bad_settings(window: float, floor: float) -> None:
    with pytest.raises(ValueError, match="must be > 0"):
        ThroughputView(window_seconds=window, floor_tokens_per_second=floor)


def test_baseline_is_the_last_tier(make_table) -> None:  # type: ignore[no-untyped-def]
    t = make_table()
    assert baseline_cost(t, 1_000_000, 1_000_000) == pytest.approx(10.0)
    assert baseline_cost(t, 0, 0) == 0.0


@pytest.mark.parametrize(
    "raw",
    [
        {"perGPUHour": "x"},
        {"inputPerMillionTokens": -1},
        {"gpusPerReplica": 0},
        {"gpusPerReplica": True},
    ],
)
def test_price_document_validation(raw: dict[str, object]) -> None:
    with pytest.raises(ValueError, match="must be"):
        TierPrice.from_dict(raw)


def test_price_document_round_trip() -> None:
    price = TierPrice(1.5, None, 2.0, 4)
    assert TierPrice.from_dict(price.to_dict()) == price


def _deployment(name: str, gpus: int, per_gpu_hour: float | None = None) -> ModelDeployment:
    spec: dict[str, object] = {
        "model": {"uri": "hf://org/m", "servedName": name},
        "engine": {"name": "vllm", "tensorParallelSize": gpus},
    }
    if per_gpu_hour is not None:
        spec["cost"] = {"perGPUHour": per_gpu_hour}
    return ModelDeployment.model_validate({"metadata": {"name": name}, "spec": spec})


def test_a_multi_backend_tier_pays_for_every_backends_gpus() -> None:
    """Two replicas of a 1-GPU ModelDeployment and one of a 4-GPU one: 6 GPUs, not 3 (the
    first backend's GPUs times all replicas) and not 12."""
    policy = RoutingPolicy.model_validate(
        {
            "metadata": {"name": "p"},
            "spec": {
                "tiers": [
                    {
                        "name": "mixed",
                        "backends": [{"modelDeployment": "one"}, {"modelDeployment": "four"}],
                    }
                ]
            },
        }
    )
    deployments = {"one": _deployment("one", 1), "four": _deployment("four", 4, 2.0)}
    endpoints = {"one": ["http://a:1", "http://a:2"], "four": ["http://b:1"]}
    table = build_table(policy, endpoints, deployments=deployments)
    (mixed,) = table.tiers
    assert mixed.price.per_gpu_hour == 2.0  # the first priced ModelDeployment's rate
    view = ThroughputView(window_seconds=60, floor_tokens_per_second=1)
    for second in range(60):
        view.add("mixed", 10_000, now=float(second))
    p_in, _ = per_token_price(mixed, throughput=view, now=59.0)
    assert p_in == pytest.approx(2.0 * 6 / (10_000 * 3600), rel=0.05)
    # the table file keeps the per-backend GPUs
    assert TierPrice.from_dict(mixed.price.to_dict()) == mixed.price


def test_a_tier_scaled_to_zero_is_priced_as_one_replica() -> None:
    price = TierPrice(per_gpu_hour=2.0, gpus_per_replica=4)
    p_in, _ = per_token_price(TierEntry("t", 0, (), price, None))
    assert p_in == pytest.approx(2.0 * 4 / (DEFAULT_FLOOR_TOKENS_PER_SECOND * 3600))
