"""Through a real router process: a calibrated tier classifier routes each unseen prompt
as calibrate decided, shows its scores in x-tierwise-predicted-quality and metrics, runs
as a shadow rule with what it would have saved; an artefact that cannot load fails
closed (the default tier serves, /readyz and classifier_info say why)."""

from __future__ import annotations

import json
import urllib.request
from typing import Any

import httpx
from router_harness import Sims, StartRouter, policy, tier

from tierwise.router.tier_quality import TierQualityModel, load_model

TIERS = [tier("small", "small-md", 0.1, 0.2), tier("frontier", "large-md", 10, 30)]


def quality_policy(calibrated: Any, *, shadow: bool) -> dict[str, Any]:
    spec = calibrated.fragment["spec"]
    tq = dict(spec["classifier"]["tierQuality"])
    tq.pop("configMap")
    tq["path"] = str(calibrated.out / "tier-quality.json")
    rules = [dict(r, shadow=True) if shadow else r for r in spec["rules"]]
    return policy(TIERS, rules=rules, defaultTier="frontier", classifier={"tierQuality": tq})


def calibrated_model(calibrated: Any) -> TierQualityModel:
    path = calibrated.out / "tier-quality.json"
    return load_model(path.read_bytes(), str(path))


def ask(router: Any, prompt: str) -> httpx.Response:
    body = {"model": "auto", "messages": [{"role": "user", "content": prompt}], "max_tokens": 8}
    response = httpx.post(router.base_url + "/chat/completions", json=body, timeout=30)
    assert response.status_code == 200, response.text
    return response


def test_calibrated_rule_routes_unseen_prompts(
    calibrated: Any, sims: Sims, start_router: StartRouter
) -> None:
    router = start_router(quality_policy(calibrated, shadow=False), sims.endpoints())
    model = calibrated_model(calibrated)
    prompts = [i.prompt for i in calibrated.held_out[:40]]
    for prompt in prompts:
        p = model.scores(prompt)["small"]
        response = ask(router, prompt)
        expected = "small" if p >= calibrated.threshold else "frontier"
        assert response.headers["x-tierwise-tier"] == expected
        assert response.headers["x-tierwise-predicted-quality"] == f"small={p:.3f}"
    assert router.metric("tierwise_router_predicted_quality_count", tier="small") == len(prompts)
    assert router.metric("tierwise_router_classifier_info", state="ready") == 1
    assert router.metric("tierwise_router_classifier_misses_total") == 0


def test_shadow_rule_counts_what_it_would_have_saved(
    calibrated: Any, sims: Sims, start_router: StartRouter
) -> None:
    router = start_router(quality_policy(calibrated, shadow=True), sims.endpoints())
    model = calibrated_model(calibrated)
    prompts = [i.prompt for i in calibrated.held_out[:30]]
    would = sum(model.scores(p)["small"] >= calibrated.threshold for p in prompts)
    for prompt in prompts:
        assert ask(router, prompt).headers["x-tierwise-tier"] == "frontier"
    rule = "calibrated-small"
    assert router.metric("tierwise_router_shadow_decisions_total", rule=rule) == would
    assert would > 0
    shadow = router.metric("tierwise_router_shadow_cost_dollars_total", rule=rule)
    actual = router.metric("tierwise_router_shadow_actual_cost_dollars_total", rule=rule)
    assert 0 < shadow < actual


def test_an_artifact_that_cannot_load_fails_closed_and_visibly(
    sims: Sims, start_router: StartRouter
) -> None:
    rules = [{"name": "calibrated-small", "tier": "small", "match": {"minPredictedQuality": 0.1}}]
    tq = {"configMap": {"name": "missing-classifier", "key": "tier-quality.json"}}
    document = policy(TIERS, rules=rules, defaultTier="frontier", classifier={"tierQuality": tq})
    router = start_router(document, sims.endpoints())
    response = ask(router, "What is 2 + 2?")
    assert response.headers["x-tierwise-tier"] == "frontier"
    assert response.headers["x-tierwise-rule"] == "default"
    assert "x-tierwise-predicted-quality" not in response.headers
    with urllib.request.urlopen(router.url + "/readyz", timeout=5) as ready:
        body = json.loads(ready.read())
    assert body["ready"] is True
    [status] = body["classifiers"]
    assert (status["classifier"], status["state"]) == ("tierQuality", "failed")
    assert "missing-classifier/tier-quality.json" in status["message"]
    assert router.metric("tierwise_router_classifier_info", state="failed") == 1
    assert router.metric("tierwise_router_classifier_misses_total", reason="unavailable") == 1
