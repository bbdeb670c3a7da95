"""RouteLLM's labelled evaluation data: loading, the fixed split, and conversion to the
labelled format ``tierwise route calibrate`` reads.

Why it exists: the tier-quality benchmark, its CI fixture and users trying calibrate on
public data all need the same reading of these files (which column is which model, what
counts as answered well, which prompts are contaminated), written once.

Data (``<repo>/../shared/data/routellm``, or ``$TIERWISE_SHARED_DIR/data/routellm``; see
its README): per-prompt correctness of a weak model (Mixtral-8x7B-Instruct) and a strong
one (GPT-4-1106-preview) on MMLU (57 domain files) and GSM8K, and GPT-4 judge scores on
MT-Bench. Apache License 2.0.

Split (the benchmark's fixed protocol): the MMLU files whose names sort into the first half
(``floor(57 / 2) = 28`` files, abstract_algebra .. high_school_physics) are
for fitting; the other 29, GSM8K minus the contaminated prompts and the 80 MT-Bench first
turns (judge score >= 8 counts as answered well) are for evaluation.

Commands::

    # labelled CSV for calibrate: prompt, <weak tier>, <strong tier>, group (the source)
    python bench/routellm_data.py labels --set mmlu-fit -o labels.csv \\
        [--weak-tier small] [--strong-tier frontier] [--data DIR]
    # the small committed fixture (a few rows of every file, same layout)
    python bench/routellm_data.py fixture -o tests/fixtures/routellm-small
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import random
import shutil
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
WEAK, STRONG = "mistralai/Mixtral-8x7B-Instruct-v0.1", "gpt-4-1106-preview"
SETS = ("mmlu-fit", "mmlu-eval", "gsm8k", "mt-bench")
MT_BENCH_GOOD = 8.0


def shared_dir() -> Path:
    """``$TIERWISE_SHARED_DIR`` if set, else ``<repo>/../shared`` (CI clones beside it)."""
    env = os.environ.get("TIERWISE_SHARED_DIR")
    return Path(env) if env else REPO.parent / "shared"


def data_dir() -> Path:
    return shared_dir() / "data" / "routellm"


@dataclass(frozen=True)
class Item:
    source: str
    """mmlu-fit, mmlu-eval, gsm8k or mt-bench."""
    group: str
    """MMLU domain, or the set's name."""
    prompt: str
    weak_ok: bool
    strong_ok: bool
    output_tokens: int
    """Answer length assumed for pricing (see tier_quality.py)."""


def _truthy(value: str) -> bool:
    return value.strip().lower() == "true"


def mmlu_files(data: Path) -> tuple[list[Path], list[Path]]:
    files = sorted((data / "mmlu").glob("mmlu_*.csv"))
    half = len(files) // 2
    return files[:half], files[half:]


def load(data: Path, which: str) -> list[Item]:
    """One set of the fixed split, in file order."""
    if which in ("mmlu-fit", "mmlu-eval"):
        fit, evaluate = mmlu_files(data)
        return list(_mmlu(fit if which == "mmlu-fit" else evaluate, which))
    if which == "gsm8k":
        return list(_gsm8k(data))
    if which == "mt-bench":
        return list(_mt_bench(data))
    raise ValueError(f"unknown set {which!r}; use one of {', '.join(SETS)}")


def _mmlu(files: list[Path], source: str) -> Iterator[Item]:
    for path in files:
        domain = path.stem.removeprefix("mmlu_")
        with path.open(encoding="utf-8", newline="") as f:
            for row in csv.DictReader(f):
                yield Item(
                    source, domain, row["prompt"], _truthy(row[WEAK]), _truthy(row[STRONG]), 8
                )


def _gsm8k(data: Path) -> Iterator[Item]:
    with (data / "gsm8k_contaminated_prompts.jsonl").open(encoding="utf-8") as f:
        bad = {json.loads(line)["eval_prompt"].strip() for line in f if line.strip()}
    csv.field_size_limit(10**8)
    with (data / "gsm8k_responses.csv").open(encoding="utf-8", newline="") as f:
        for row in csv.DictReader(f):
            if row["prompt"].strip() in bad:
                continue
            out = max(1, len(row[f"{STRONG}_response"]) // 4)
            yield Item(
                "gsm8k", "gsm8k", row["prompt"], _truthy(row[WEAK]), _truthy(row[STRONG]), out
            )


def _mt_bench(data: Path) -> Iterator[Item]:
    scores: dict[tuple[int, str], float] = {}
    with (data / "mt_bench" / "judgements.jsonl").open(encoding="utf-8") as f:
        for line in f:
            j = json.loads(line)
            if j.get("turn") == 1:
                scores[(j["question_id"], j["model"])] = float(j["score"])
    with (data / "mt_bench" / "question.jsonl").open(encoding="utf-8") as f:
        for line in f:
            q = json.loads(line)
            weak = scores.get((q["question_id"], WEAK))
            strong = scores.get((q["question_id"], STRONG))
            if weak is None or strong is None:
                continue
            good = MT_BENCH_GOOD
            yield Item("mt-bench", q["category"], q["turns"][0], weak >= good, strong >= good, 400)


def write_labels(items: list[Item], out: Path, weak: str, strong: str) -> None:
    """The labelled CSV of docs/routing.md: prompt, weak tier, strong tier, group."""
    with out.open("w", encoding="utf-8", newline="") as f:
        writer = csv.writer(f, lineterminator="\n")
        writer.writerow(["prompt", weak, strong, "group"])
        for item in items:
            writer.writerow(
                [item.prompt, str(item.weak_ok).lower(), str(item.strong_ok).lower(), item.group]
            )


def make_fixture(data: Path, out: Path, *, per_file: int, seed: int) -> None:
    """A few rows of every file, same layout, for the CI version of the benchmark."""
    rng = random.Random(seed)
    (out / "mmlu").mkdir(parents=True, exist_ok=True)
    (out / "mt_bench").mkdir(parents=True, exist_ok=True)
    csv.field_size_limit(10**8)
    for path in sorted((data / "mmlu").glob("mmlu_*.csv")):
        _sample_csv(path, out / "mmlu" / path.name, per_file, rng)
    _sample_csv(data / "gsm8k_responses.csv", out / "gsm8k_responses.csv", per_file * 8, rng)
    shutil.copy(data / "gsm8k_contaminated_prompts.jsonl", out / "gsm8k_contaminated_prompts.jsonl")
    for name in ("question.jsonl", "contaminated_prompts.jsonl"):
        shutil.copy(data / "mt_bench" / name, out / "mt_bench" / name)
    # judgements: first turns only, and only the fields the benchmark reads (1.4 MB -> 15 KB)
    with (data / "mt_bench" / "judgements.jsonl").open(encoding="utf-8") as src:
        kept = [json.loads(line) for line in src]
    with (out / "mt_bench" / "judgements.jsonl").open("w", encoding="utf-8") as dst:
        for j in kept:
            if j.get("turn") == 1:
                keep = {k: j[k] for k in ("question_id", "model", "turn", "score")}
                dst.write(json.dumps(keep) + "\n")
    shutil.copy(data / "LICENSE", out / "LICENSE")


def _sample_csv(src: Path, dst: Path, n: int, rng: random.Random) -> None:
    with src.open(encoding="utf-8", newline="") as f:
        reader = csv.reader(f)
        header = next(reader)
        rows = list(reader)
    picked = sorted(rng.sample(range(len(rows)), min(n, len(rows))))
    with dst.open("w", encoding="utf-8", newline="") as f:
        writer = csv.writer(f, lineterminator="\n")
        writer.writerow(header)
        writer.writerows(rows[i] for i in picked)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    labels = sub.add_parser("labels", help="write a labelled CSV for tierwise route calibrate")
    labels.add_argument("--set", choices=SETS, action="append", required=True)
    labels.add_argument("-o", "--output", type=Path, required=True)
    labels.add_argument("--weak-tier", default="small")
    labels.add_argument("--strong-tier", default="frontier")
    labels.add_argument("--data", type=Path, default=None)
    fixture = sub.add_parser("fixture", help="write the small CI fixture")
    fixture.add_argument("-o", "--output", type=Path, required=True)
    fixture.add_argument("--per-file", type=int, default=5)
    fixture.add_argument("--seed", type=int, default=16)
    fixture.add_argument("--data", type=Path, default=None)
    args = parser.parse_args(argv)
    data = args.data or data_dir()
    if not data.is_dir():
        print(f"error: {data} not found (set TIERWISE_SHARED_DIR or --data)", file=sys.stderr)
        return 2
    if args.command == "labels":
        items = [item for name in args.set for item in load(data, name)]
        write_labels(items, args.output, args.weak_tier, args.strong_tier)
        print(f"wrote {len(items)} labelled prompts to {args.output}")
    else:
        make_fixture(data, args.output, per_file=args.per_file, seed=args.seed)
        print(f"wrote the fixture to {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
