"""The router's counters match the traffic sent: requests per tier/rule/code, tokens in
and out equal to what the engines themselves counted (streams included, whether or not the
client asked for usage), cost from each tier's price, and the all-top-tier baseline."""

from __future__ import annotations

import httpx
import openai
import pytest
from prometheus_client.parser import text_string_to_metric_families
from router_harness import StartRouter, policy, sim, tier

from tierwise.sim.process import EngineProcess

PRICES = {"small": (0.1, 0.2), "large": (2.0, 8.0)}


def _engine_tokens(engine: EngineProcess) -> tuple[float, float]:
    text = httpx.get(engine.url + "/metrics").text
    found = {"vllm:prompt_tokens_total": 0.0, "vllm:generation_tokens_total": 0.0}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name in found:
                found[sample.name] += sample.value
    return found["vllm:prompt_tokens_total"], found["vllm:generation_tokens_total"]


@pytest.mark.parametrize("streams", [0, 3])
def test_counters_match(start_sims, start_router: StartRouter, streams: int) -> None:  # type: ignore[no-untyped-def]
    small, large = start_sims([sim("small-md"), sim("large-md")])
    document = policy(
        [tier(name, f"{name}-md", *PRICES[name]) for name in ("small", "large")],
        rules=[{"name": "hard", "tier": "large", "match": {"keywords": ["prove"]}}],
    )
    router = start_router(document, {"small-md": [small.url], "large-md": [large.url]})
    sent = {"small": 0, "large": 0}
    with openai.OpenAI(base_url=router.base_url, api_key="k", max_retries=0) as client:
        for i, prompt in enumerate(["hello", "prove it", "ça va ? 😀", "please prove", "x"] * 2):
            name = "large" if "prove" in prompt else "small"
            sent[name] += 1
            messages = [{"role": "user", "content": f"{prompt} #{i}"}]
            if i < streams:
                usage = {"stream_options": {"include_usage": True}} if i % 2 else {}
                with client.chat.completions.create(
                    model="auto",
                    messages=messages,
                    stream=True,
                    **usage,  # type: ignore[arg-type]
                ) as stream:
                    list(stream)
            else:
                client.chat.completions.create(model="auto", messages=messages)  # type: ignore[arg-type]
    baseline = 0.0
    for name, engine in (("small", small), ("large", large)):
        prompt, completion = _engine_tokens(engine)
        assert prompt > 0
        assert router.metric("tierwise_router_tokens_total", tier=name, direction="in") == prompt
        assert router.metric("tierwise_router_tokens_total", tier=name, direction="out") == (
            completion
        )
        p_in, p_out = PRICES[name]
        cost = router.metric("tierwise_router_cost_dollars_total", tier=name)
        assert cost == pytest.approx((prompt * p_in + completion * p_out) / 1e6)
        baseline += (prompt * PRICES["large"][0] + completion * PRICES["large"][1]) / 1e6
        rule = "hard" if name == "large" else "default"
        assert (
            router.metric("tierwise_router_requests_total", tier=name, rule=rule, code="200")
            == sent[name]
        )
        assert (
            router.metric("tierwise_router_request_duration_seconds_count", tier=name) == sent[name]
        )
    assert router.metric("tierwise_router_baseline_cost_dollars_total") == pytest.approx(baseline)
    assert router.metric("tierwise_router_time_to_first_token_seconds_count") == streams
    assert router.metric("tierwise_router_in_flight") == 0


def test_shadow_rule_is_counted_not_enforced(start_sims, start_router: StartRouter) -> None:  # type: ignore[no-untyped-def]
    small, large = start_sims([sim("small-md"), sim("large-md")])
    document = policy(
        [tier(name, f"{name}-md", *PRICES[name]) for name in ("small", "large")],
        rules=[
            {"name": "try-large", "tier": "large", "shadow": True, "match": {"keywords": ["code"]}}
        ],
    )
    router = start_router(document, {"small-md": [small.url], "large-md": [large.url]})
    with openai.OpenAI(base_url=router.base_url, api_key="k", max_retries=0) as client:
        for prompt in ["write code", "no match", "more code please"]:
            raw = client.chat.completions.with_raw_response.create(
                model="auto", messages=[{"role": "user", "content": prompt}]
            )
            assert raw.headers["x-tierwise-tier"] == "small"
    assert (
        router.metric("tierwise_router_shadow_decisions_total", rule="try-large", tier="large") == 2
    )
    assert router.metric("tierwise_router_shadow_cost_dollars_total", rule="try-large") > (
        router.metric("tierwise_router_cost_dollars_total", tier="small")
    )
