"""Tier quality: cost against quality of the calibrated tier classifier, beside RouteLLM.

Why it exists: a tier router is judged by how much it saves at 95% of the strong model's
quality. This runs the fixed protocol of issue 16 end to end with the shipped code
(``tierwise route calibrate`` to fit and choose the threshold, the router's
:class:`~tierwise.router.tier_quality.TierQualityModel` to score), beside random routing,
always-weak, always-strong and the oracle, in the same run.

Protocol
    * Fit (calibrate): MMLU domains whose files sort into the first half (28 of 57).
    * Evaluate: the other 29 MMLU domains, GSM8K minus the contaminated prompts, the 80
      MT-Bench first turns (a GPT-4 judge score >= 8 counts as answered well). Prompts of
      the fitting set are removed from the evaluation sets (none overlap in this data).
    * Weak tier: Mixtral-8x7B-Instruct; strong tier: GPT-4-1106-preview (their labels).
    * Curve: prompts sorted by predicted P(weak answers well), lowest sent to the strong
      tier first. "At 95%": the least strong-call share whose quality reaches 95% of
      always-strong's, read off that curve, as RouteLLM reports it; "calibrated": what
      the threshold calibrate chose on held-out MMLU folds gives on each set.
    * Cost (ASSUMED prices, stated): strong $10 / $30 per million input / output tokens
      (GPT-4-1106-preview list price), weak $0.60 / $0.60 (Mixtral-8x7B on a hosted API);
      input tokens: the router's estimate; output tokens: MMLU 8, GSM8K the strong
      answer's length / 4, MT-Bench 400. Cost reduction is against always-strong.

Usage::

    PYTHONPATH=operator .venv/bin/python bench/tier_quality.py \\
        [--data ../shared/data/routellm] [--plot docs/benchmarks/tier_quality.svg] \\
        [--compare-minilm] [--json /tmp/tier_quality.json]
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
from routellm_data import Item, data_dir, load, write_labels
from svg_plot import Panel, Series, render

from tierwise.router.calibrate_cli import ARTIFACT, calibrate, write_outputs
from tierwise.router.calibrate_data import read_labels
from tierwise.router.features import estimate_tokens
from tierwise.router.tier_quality import load_model

EVAL_SETS = ("mmlu-eval", "gsm8k", "mt-bench")
ROUTELLM = {"mmlu-eval": 0.45, "gsm8k": 0.35, "mt-bench": 0.85}
STRONG_PRICE = (10.0, 30.0)
WEAK_PRICE = (0.60, 0.60)
TARGET = 0.95


@dataclass
class SetResult:
    name: str
    n: int
    weak_quality: float
    strong_quality: float
    share95: float
    cut95: float
    random_share95: float
    random_cut95: float
    oracle_share95: float
    oracle_cut95: float
    calibrated_share: float
    calibrated_relative_quality: float
    calibrated_cut: float
    gain: float
    """Share of prompts only the strong tier answers well (the oracle's strong calls)."""


def _cost(item: Item, price: tuple[float, float]) -> float:
    return (estimate_tokens(item.prompt) * price[0] + item.output_tokens * price[1]) / 1e6


def evaluate(
    name: str, items: list[Item], scores: np.ndarray, threshold: float
) -> tuple[SetResult, list[tuple[float, float]]]:
    weak = np.array([i.weak_ok for i in items], dtype=float)
    strong = np.array([i.strong_ok for i in items], dtype=float)
    cw = np.array([_cost(i, WEAK_PRICE) for i in items])
    cs = np.array([_cost(i, STRONG_PRICE) for i in items])
    n, total = len(items), cs.sum()
    goal = TARGET * strong.mean()
    order = np.argsort(scores, kind="stable")
    quality = np.concatenate([[weak.sum()], weak.sum() + np.cumsum((strong - weak)[order])]) / n
    cost = np.concatenate([[cw.sum()], cw.sum() + np.cumsum((cs - cw)[order])])
    k = int(np.argmax(quality >= goal - 1e-12))
    gap = strong.mean() - weak.mean()
    r_share = min(1.0, max(0.0, (goal - weak.mean()) / gap)) if gap > 0 else 0.0
    gain = np.where(strong > weak)[0]
    need = max(0, math.ceil(round((goal - weak.mean()) * n, 9)))
    cheapest = np.sort((cs - cw)[gain])[:need]
    routed = scores < threshold
    cal_quality = np.where(routed, strong, weak).mean()
    cal_cost = np.where(routed, cs, cw).sum()
    result = SetResult(
        name,
        n,
        float(weak.mean()),
        float(strong.mean()),
        k / n,
        float(1 - cost[k] / total),
        r_share,
        float(1 - (cw.sum() + r_share * (total - cw.sum())) / total),
        need / n,
        float(1 - (cw.sum() + cheapest.sum()) / total),
        float(routed.mean()),
        float(cal_quality / strong.mean()),
        float(1 - cal_cost / total),
        len(gain) / n,
    )
    step = max(1, n // 200)
    curve = [(j / n, float(quality[j] / strong.mean())) for j in range(0, n + 1, step)]
    return result, [*curve, (1.0, 1.0)]


def run_calibrate(fit: list[Item], work: Path, seed: int) -> tuple[Path, dict[str, Any]]:
    labels = work / "labels-fit.csv"
    write_labels(fit, labels, "small", "frontier")
    args = argparse.Namespace(
        target_quality=TARGET,
        max_top_tier_share=None,
        seed=seed,
        folds=5,
        name="tier-quality",
        shadow=False,
    )
    artifact = calibrate(read_labels(labels), args)
    out = work / "calibrated"
    write_outputs(out, artifact, args)
    return out / ARTIFACT, artifact


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(int(q * len(ordered)), len(ordered) - 1)]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=None)
    parser.add_argument("--plot", type=Path, default=None, help="write the SVG plot here")
    parser.add_argument("--json", type=Path, default=None)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--latency",
        type=float,
        default=0.0,
        metavar="SECONDS",
        help="also measure the added latency through the router for this long (per router)",
    )
    parser.add_argument(
        "--compare-minilm",
        action="store_true",
        help="also a full MiniLM forward pass per prompt (minutes)",
    )
    args = parser.parse_args(argv)
    data = args.data or data_dir()
    if not data.is_dir():
        print(f"error: {data} not found (set TIERWISE_SHARED_DIR or --data)", file=sys.stderr)
        return 2
    fit = load(data, "mmlu-fit")
    seen = {i.prompt.strip() for i in fit}
    sets = {
        name: [i for i in load(data, name) if i.prompt.strip() not in seen] for name in EVAL_SETS
    }
    t0 = time.perf_counter()
    tmp = tempfile.TemporaryDirectory()
    path, artifact = run_calibrate(fit, Path(tmp.name), args.seed)
    model = load_model(path.read_bytes(), str(path))
    fit_s = time.perf_counter() - t0
    threshold = float(artifact["threshold"])
    results, curves, timings = [], {}, []
    for name, items in sets.items():
        scores = []
        for item in items:
            t = time.perf_counter()
            scores.append(model.scores(item.prompt)["small"])
            timings.append(time.perf_counter() - t)
        result, curve = evaluate(name, items, np.array(scores), threshold)
        results.append(result)
        curves[name] = curve
    report = _report(results, len(fit), threshold, fit_s, timings, artifact)
    print(report)
    if args.latency > 0:
        from tier_quality_latency import measure

        mix = [i.prompt for items in sets.values() for i in items[:: max(1, len(items) // 300)]]
        print("\n" + measure(path, threshold, mix, args.latency))
    tmp.cleanup()
    if args.compare_minilm:
        from tier_quality_minilm import compare

        print(compare(fit, sets, evaluate))
    if args.plot is not None:
        args.plot.write_text(_plot(results, curves), encoding="utf-8")
    if args.json is not None:
        args.json.write_text(json.dumps([asdict(r) for r in results], indent=1))
    return 0


def _report(
    results: list[SetResult],
    fit_n: int,
    threshold: float,
    fit_s: float,
    timings: list[float],
    artifact: dict[str, Any],
) -> str:
    held = artifact["calibration"]["heldOut"]
    lines = [
        f"fit: {fit_n} MMLU prompts (first 28 domain files); calibrate took {fit_s:.1f} s; "
        f"threshold {threshold:.4f} (held-out MMLU folds by domain: {held['topTierShare']:.1%} "
        f"strong calls at {held['relativeQuality']:.1%} quality)",
        f"scoring one prompt in process: p50 {_percentile(timings, 0.5) * 1e6:.0f} µs, "
        f"p99 {_percentile(timings, 0.99) * 1e6:.0f} µs ({len(timings)} prompts)",
        "",
        "| set | prompts | weak / strong quality | strong calls at 95%: classifier | random "
        "| oracle | 1 - strong calls (RouteLLM's measure) | RouteLLM | priced cost cut at 95%: "
        "classifier | random | oracle | calibrated threshold: strong calls, quality, cost cut |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in results:
        lines.append(
            f"| {r.name} | {r.n} | {r.weak_quality:.1%} / {r.strong_quality:.1%} | "
            f"{r.share95:.1%} | {r.random_share95:.1%} | {r.oracle_share95:.1%} | "
            f"**{1 - r.share95:.1%}** | {ROUTELLM[r.name]:.0%} | "
            f"**{r.cut95:.1%}** | {r.random_cut95:.1%} | {r.oracle_cut95:.1%} | "
            f"{r.calibrated_share:.1%}, "
            f"{r.calibrated_relative_quality:.1%}, {r.calibrated_cut:.1%} |"
        )
    return "\n".join(lines)


def _plot(results: list[SetResult], curves: dict[str, list[tuple[float, float]]]) -> str:
    panels = []
    for r in results:
        rel_weak = r.weak_quality / r.strong_quality
        best = (r.weak_quality + r.gain) / r.strong_quality
        oracle = [(0.0, rel_weak), (r.gain, best), (1.0, best)]
        low = math.floor(min(rel_weak, 0.8) * 20) / 20
        panels.append(
            Panel(
                f"{r.name} ({r.n} prompts)",
                [
                    Series("tier classifier (calibrated)", curves[r.name]),
                    Series("random", [(0.0, rel_weak), (1.0, 1.0)]),
                    Series("oracle", oracle),
                    Series(
                        "always weak / always strong",
                        [(0.0, rel_weak), (1.0, 1.0)],
                        marker_only=True,
                    ),
                ],
                low,
                max(1.02, best + 0.01),
                guide_y=TARGET,
            )
        )
    return render(panels, "share of requests on the strong tier", "quality vs always-strong")


if __name__ == "__main__":
    sys.exit(main())
