"""Calibrate's threshold choice: each prompt goes to the cheapest tier whose score clears
the threshold; the chosen threshold is the one with the fewest top-tier requests among
those keeping the quality target, and a higher threshold never sends fewer requests to the
top tier."""

from __future__ import annotations

import pytest

np = pytest.importorskip("numpy", reason="calibrate needs the 'classifier' extra")

from tierwise.router.calibrate_fit import choose_threshold, evaluate, route  # noqa: E402


def test_each_prompt_goes_to_the_cheapest_tier_clearing_the_threshold() -> None:
    scores = np.array([[0.9, 0.95], [0.2, 0.8], [0.1, 0.3], [0.85, 0.1]])
    assert route(scores, 0.8).tolist() == [0, 1, 2, 0]
    assert route(scores, 0.99).tolist() == [2, 2, 2, 2]
    assert route(scores, 0.0).tolist() == [0, 0, 0, 0]


def test_chosen_threshold_keeps_the_target_with_fewest_top_tier_requests() -> None:
    rng = np.random.default_rng(5)
    n = 400
    weak_ok = rng.random(n) < 0.6
    strong_ok = weak_ok | (rng.random(n) < 0.7)
    labels = np.stack([weak_ok, strong_ok], axis=1)
    scores = np.clip(weak_ok * 0.4 + rng.random(n) * 0.6, 0, 1)[:, None]
    chosen = choose_threshold(scores, labels, target=0.95, max_top_share=None, top_name="top")
    goal = 0.95 * strong_ok.mean()
    assert chosen.quality >= goal - 1e-12
    shares = [evaluate(scores, labels, t).top_share for t in np.linspace(0, 1.01, 60)]
    assert shares == sorted(shares)  # monotone in the threshold
    for t in np.unique(scores):
        point = evaluate(scores, labels, float(t))
        if point.quality >= goal - 1e-12:
            assert point.top_share >= chosen.top_share
