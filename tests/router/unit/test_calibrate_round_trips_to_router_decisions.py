"""``tierwise route calibrate`` round trip: the same data and seed give byte-identical
files; the RoutingPolicy fragment it writes, loaded the way the router loads it, routes
prompts calibration never saw exactly as calibrate's own fitted model decides; a share
cap the target cannot meet is refused with the shortfall."""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import yaml

from tierwise.api.routing_policy import RoutingPolicy
from tierwise.cli import main
from tierwise.router.calibrate_data import read_labels
from tierwise.router.calibrate_fit import featurize, fit_logistic, load_static_embedding
from tierwise.router.features import request_view
from tierwise.router.table import build_table
from tierwise.router.tier_quality_service import load_for
from tierwise.router.tiers import choose_tier


def run_calibrate(labels: Path, out: Path, *extra: str) -> int:
    return main(["route", "calibrate", "--data", str(labels), "-o", str(out), *extra])


OUTPUTS = ("tier-quality.json", "tier-quality-configmap.yaml", "routingpolicy-fragment.yaml")


def policy_with(fragment: dict[str, object]) -> RoutingPolicy:
    spec = dict(fragment["spec"])  # type: ignore[arg-type]
    spec["tiers"] = [
        {"name": "small", "backends": [{"modelDeployment": "small-md"}]},
        {"name": "frontier", "backends": [{"modelDeployment": "large-md"}]},
    ]
    return RoutingPolicy.model_validate({"metadata": {"name": "rp"}, "spec": spec})


def test_same_data_and_seed_give_byte_identical_files(calibrated: Any, tmp_path: Path) -> None:
    assert run_calibrate(calibrated.labels, tmp_path, "--seed", "3") == 0
    for name in (*OUTPUTS, "curve.csv"):
        assert (tmp_path / name).read_bytes() == (calibrated.out / name).read_bytes(), name


def test_the_fragment_routes_unseen_prompts_as_calibrate_decided(calibrated: Any) -> None:
    policy = policy_with(calibrated.fragment)
    table = build_table(policy, {})
    # the ConfigMap YAML calibrate wrote, found in the folder as for `tierwise router --policy`
    model = load_for(policy.spec, str(calibrated.out))
    emb = load_static_embedding()
    data = read_labels(calibrated.labels)
    fitted = fit_logistic(featurize(data.prompts, emb), np.array([r[0] for r in data.labels]))
    prompts = [i.prompt for i in calibrated.held_out]
    expected = 1 / (1 + np.exp(-fitted.logit(featurize(prompts, emb))))
    threshold = calibrated.threshold
    clear = np.abs(expected - threshold) > 0.002  # float16 token scores: ~1e-3 apart at most
    assert clear.mean() > 0.9
    for prompt, p, decided in zip(prompts, expected, clear, strict=True):
        view = request_view(
            "/v1/chat/completions",
            {},
            {"model": "auto", "messages": [{"role": "user", "content": prompt}]},
        )
        decision = choose_tier(table, view, quality=model.scores(prompt))
        assert abs(dict(decision.quality)["small"] - p) < 0.01
        if decided:
            assert decision.tier == ("small" if p >= threshold else "frontier")
    tiers = {
        choose_tier(
            table,
            request_view("/v1/completions", {}, {"model": "auto", "prompt": p}),
            quality=model.scores(p),
        ).tier
        for p in prompts
    }
    assert tiers == {"small", "frontier"}


def test_fragment_pins_the_artifact_and_defaults_to_the_top_tier(calibrated: Any) -> None:
    spec = calibrated.fragment["spec"]
    digest = spec["classifier"]["tierQuality"]["sha256"]
    import hashlib

    assert digest == hashlib.sha256((calibrated.out / "tier-quality.json").read_bytes()).hexdigest()
    assert spec["defaultTier"] == "frontier"
    assert spec["rules"] == [
        {
            "name": "calibrated-small",
            "tier": "small",
            "match": {"minPredictedQuality": calibrated.threshold},
        }
    ]
    configmap = yaml.safe_load((calibrated.out / "tier-quality-configmap.yaml").read_text())
    assert json.loads(configmap["data"]["tier-quality.json"]) == calibrated.artifact
    held = calibrated.artifact["calibration"]["heldOut"]
    assert held["relativeQuality"] >= 0.95


def test_a_share_cap_the_target_cannot_meet_is_refused(
    calibrated: Any, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code = run_calibrate(calibrated.labels, tmp_path, "--max-top-tier-share", "0.01")
    assert code == 2
    err = capsys.readouterr().err
    assert "needs at least" in err
    assert "--max-top-tier-share 0.01 allows 1.0%" in err


def test_explain_shows_the_predicted_quality(
    calibrated: Any, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    policy = calibrated.out / "rp.yaml"
    document = policy_with(calibrated.fragment).model_dump(
        mode="json", by_alias=True, exclude_none=True
    )
    policy.write_text(yaml.safe_dump(document))
    request = tmp_path / "req.json"
    request.write_text(
        json.dumps(
            {
                "model": "auto",
                "messages": [{"role": "user", "content": calibrated.held_out[0].prompt}],
            }
        )
    )
    assert (
        main(["route", "explain", "--policy", str(policy), "--request", str(request), "--json"])
        == 0
    )
    result = json.loads(capsys.readouterr().out)
    assert set(result["predictedQuality"]) == {"small"}
    assert result["rule"] in ("calibrated-small", "default")


def test_three_tiers_calibrate_to_cheapest_first_shadow_rules(
    calibrated: Any, tmp_path: Path
) -> None:
    with calibrated.labels.open(newline="") as f:
        rows = list(csv.DictReader(f))
    labels = tmp_path / "three.csv"
    with labels.open("w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["prompt", "small", "mid", "frontier", "group"])
        for i, r in enumerate(rows):
            # mid: everything small answers, plus every other prompt only frontier answers
            mid = r["small"] == "true" or (r["frontier"] == "true" and i % 2 == 0)
            writer.writerow([r["prompt"], r["small"], str(mid).lower(), r["frontier"], r["group"]])
    out = tmp_path / "out"
    assert run_calibrate(labels, out, "--shadow") == 0
    fragment = yaml.safe_load((out / "routingpolicy-fragment.yaml").read_text())["spec"]
    assert [(r["name"], r["tier"], r["shadow"]) for r in fragment["rules"]] == [
        ("calibrated-small", "small", True),
        ("calibrated-mid", "mid", True),
    ]
    assert fragment["defaultTier"] == "frontier"
    artifact = json.loads((out / "tier-quality.json").read_text())
    assert set(artifact["models"]) == {"small", "mid"}
    shares = artifact["calibration"]["heldOut"]["shares"]
    assert set(shares) == {"small", "mid", "frontier"}
    assert abs(sum(shares.values()) - 1.0) < 1e-5
