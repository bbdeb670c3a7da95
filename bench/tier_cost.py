"""Tier routing: cost per 1,000 requests and a quality proxy, against always-top-tier.

Why it exists: the router's reason to be is answering each request on the cheapest tier
that can serve it. This routes a mixed traffic file through ``tierwise.router.tiers`` with
an example three-tier policy and prices every request with ``tierwise.router.cost``,
beside the baselines "everything on the top tier" and "everything on the cheapest tier".

Traffic (deterministic for a seed) from RouteLLM's labelled data in
``../shared/data/routellm`` (read by ``bench/routellm_data.py``; see its README): MMLU
questions, GSM8K word problems (contaminated prompts excluded), MT-Bench first turns
(contaminated excluded).

Quality proxy: the share of prompts answered correctly given the tier chosen. The data
labels two models: a weak one (Mixtral-8x7B-Instruct) and a strong one (GPT-4-1106). A
self-hosted tier takes the weak label, the frontier tier the strong one (so both
self-hosted tiers count as Mixtral-class). MMLU and GSM8K use the correctness columns;
an MT-Bench answer counts as correct when GPT-4 judged its first turn 8/10 or better.

Prices and token counts are ASSUMPTIONS, stated in the policy below and in the output:
self-hosted tiers per GPU-hour at the cost module's throughput floor (1,000 tokens/s per
replica); the frontier at GPT-4.1's list price. Output tokens: GSM8K the labelled model's
response length; MMLU 8; MT-Bench 400.

Usage::

    .venv/bin/python bench/tier_cost.py [--mmlu 1500] [--gsm8k 600] [--seed 7]
        [--classifier off|hashing|model]
"""

from __future__ import annotations

import argparse
import csv
import json
import random
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from routellm_data import WEAK, data_dir, load

from tierwise.api.routing_policy import RoutingPolicy
from tierwise.router.classifier import Classifier, HashingEmbedder, make_classifier
from tierwise.router.cost import request_cost
from tierwise.router.features import estimate_tokens, request_view
from tierwise.router.table import RoutingTable, build_table
from tierwise.router.tiers import choose_tier

POLICY: dict[str, Any] = {
    "metadata": {"name": "bench-three-tier"},
    "spec": {
        "tiers": [
            {
                "name": "small",
                "backends": [{"modelDeployment": "small-8b"}],
                "price": {"perGPUHour": 1.2},
                "maxPromptTokens": 8000,
            },
            {
                "name": "mid",
                "backends": [{"modelDeployment": "mid-47b"}],
                "price": {"perGPUHour": 5.0},
            },
            {
                "name": "frontier",
                "backends": [
                    {
                        "external": {
                            "baseURL": "https://api.example.com/v1",
                            "model": "frontier",
                            "apiKeySecretRef": {"name": "k", "key": "k"},
                        }
                    }
                ],
                "price": {"inputPerMillionTokens": 2.0, "outputPerMillionTokens": 8.0},
            },
        ],
        "rules": [
            {
                "name": "word-problems",
                "tier": "frontier",
                "match": {
                    "regex": r"(?i)\b(how (many|much|long|far|old)|what (percent|fraction)"
                    r"|in total|altogether|per (hour|day|week))\b"
                },
            },
            {"name": "reasoning", "tier": "frontier", "match": {"category": "reasoning"}},
            {
                "name": "code-and-writing",
                "tier": "mid",
                "match": {
                    "keywords": [
                        "code",
                        "function",
                        "python",
                        "write a",
                        "compose",
                        "draft",
                        "essay",
                        "refactor",
                    ]
                },
            },
            {"name": "long-prompts", "tier": "mid", "match": {"minPromptTokens": 600}},
        ],
        "defaultTier": "small",
        "classifier": {
            "categories": [
                {
                    "name": "reasoning",
                    "examples": [
                        "A train leaves at 3 pm going 60 miles per hour; "
                        "when does it arrive 150 miles away?",
                        "If a shirt costs $20 after a 20% discount, what was the original price?",
                        "Prove that the sum of two even numbers is even.",
                        "Solve for x: 3x + 7 = 22, and explain each step.",
                    ],
                }
            ],
            "threshold": 0.55,
        },
    },
}


@dataclass(frozen=True)
class Item:
    source: str
    prompt: str
    weak_ok: bool
    strong_ok: bool
    output_tokens: int


def load_traffic(mmlu: int, gsm8k: int, seed: int) -> list[Item]:
    rng = random.Random(seed)
    data = data_dir()
    items: list[Item] = []
    every_mmlu = load(data, "mmlu-fit") + load(data, "mmlu-eval")
    for row in rng.sample(every_mmlu, min(mmlu, len(every_mmlu))):
        items.append(Item("mmlu", row.prompt, row.weak_ok, row.strong_ok, 8))
    csv.field_size_limit(10**8)
    with (data / "gsm8k_responses.csv").open(encoding="utf-8", newline="") as f:
        weak_answer = {r["prompt"]: r[f"{WEAK}_response"] for r in csv.DictReader(f)}
    gsm = load(data, "gsm8k")
    for row in rng.sample(gsm, min(gsm8k, len(gsm))):
        out = estimate_tokens(weak_answer[row.prompt])
        items.append(Item("gsm8k", row.prompt, row.weak_ok, row.strong_ok, out))
    items.extend(_mt_bench(data))
    rng.shuffle(items)
    return items


def _mt_bench(data: Path) -> list[Item]:
    """MT-Bench first turns minus RouteLLM's contaminated prompts (judge score >= 8 = good)."""
    with (data / "mt_bench" / "contaminated_prompts.jsonl").open(encoding="utf-8") as f:
        bad = {json.loads(line)["eval_prompt"].strip() for line in f if line.strip()}
    return [
        Item("mt-bench", q.prompt, q.weak_ok, q.strong_ok, 400)
        for q in load(data, "mt-bench")
        if q.prompt.strip() not in bad
    ]


@dataclass
class Tally:
    requests: int = 0
    dollars: float = 0.0
    correct: int = 0

    def add(self, dollars: float, ok: bool) -> None:
        self.requests += 1
        self.dollars += dollars
        self.correct += ok

    @property
    def per_thousand(self) -> float:
        return self.dollars * 1000 / self.requests if self.requests else 0.0

    @property
    def quality(self) -> float:
        return self.correct / self.requests if self.requests else 0.0


def evaluate(
    table: RoutingTable, items: list[Item], classifier: Classifier | None
) -> dict[str, Any]:
    routed, top, cheap = Tally(), Tally(), Tally()
    tiers: dict[str, int] = {}
    by_source: dict[str, Tally] = {}
    last, first = table.tiers[-1], table.tiers[0]
    for item in items:
        body = {"model": "auto", "messages": [{"role": "user", "content": item.prompt}]}
        view = request_view("/v1/chat/completions", {}, body)
        decision = choose_tier(table, view, classifier)
        tier = table.tier(decision.tier)
        tokens = view.prompt_tokens
        ok = item.strong_ok if tier is last else item.weak_ok
        dollars = request_cost(tier, tokens, item.output_tokens)
        routed.add(dollars, ok)
        by_source.setdefault(item.source, Tally()).add(dollars, ok)
        top.add(request_cost(last, tokens, item.output_tokens), item.strong_ok)
        cheap.add(request_cost(first, tokens, item.output_tokens), item.weak_ok)
        tiers[decision.tier] = tiers.get(decision.tier, 0) + 1
    return {"routed": routed, "top": top, "cheap": cheap, "tiers": tiers, "by_source": by_source}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mmlu", type=int, default=1500)
    parser.add_argument("--gsm8k", type=int, default=600)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--classifier", choices=["off", "hashing", "model"], default="off")
    args = parser.parse_args(argv)
    items = load_traffic(args.mmlu, args.gsm8k, args.seed)
    policy = RoutingPolicy.model_validate(POLICY)
    table = build_table(policy, {"small-8b": ["http://s:8000"], "mid-47b": ["http://m:8000"]})
    spec = policy.spec.classifier
    classifier = None
    if args.classifier == "hashing":
        classifier = make_classifier(spec, embedder=HashingEmbedder())
    elif args.classifier == "model":
        classifier = make_classifier(spec)
    t0 = time.perf_counter()
    result = evaluate(table, items, classifier)
    elapsed = time.perf_counter() - t0
    _report(result, items, args, elapsed)
    return 0


def _report(
    result: dict[str, Any], items: list[Item], args: argparse.Namespace, elapsed: float
) -> None:
    routed, top, cheap = result["routed"], result["top"], result["cheap"]
    counts = {s: sum(1 for i in items if i.source == s) for s in ("mmlu", "gsm8k", "mt-bench")}
    print(
        f"{len(items)} requests ({', '.join(f'{k} {v}' for k, v in counts.items())}), "
        f"seed {args.seed}, classifier {args.classifier}; routing took "
        f"{elapsed / len(items) * 1e6:.1f} µs per request\n"
    )
    print(
        "| routing | $ per 1,000 requests | vs always-top-tier | quality proxy "
        "| vs always-top-tier |"
    )
    print("|---|---|---|---|---|")
    for name, t in (
        ("always top tier (frontier)", top),
        ("tierwise rules", routed),
        ("always cheapest tier (small)", cheap),
    ):
        print(
            f"| {name} | ${t.per_thousand:.4f} | {t.dollars / top.dollars:.1%} | "
            f"{t.quality:.1%} | {t.quality / top.quality:.1%} |"
        )
    share = ", ".join(f"{k} {v / len(items):.0%}" for k, v in sorted(result["tiers"].items()))
    print(f"\nTier shares: {share}.")
    print("\n| source | requests | $ per 1,000 (routed) | quality (routed) |\n|---|---|---|---|")
    for source, t in sorted(result["by_source"].items()):
        print(f"| {source} | {t.requests} | ${t.per_thousand:.4f} | {t.quality:.1%} |")


if __name__ == "__main__":
    sys.exit(main())
