"""Fit the tier classifier and pick the threshold that keeps the quality target.

Why it exists: "keep 95% of the frontier's quality and send as little as possible to it"
is a number a team can review only if it is measured on prompts the model did not learn
from. This module fits, cross-validates and chooses; :mod:`tierwise.router.calibrate_cli`
reads the data and writes the files.

Method (tunables in capitals)
    * Static embeddings: the packaged all-MiniLM-L6-v2's input token embedding matrix
      (30,522 x 384, read from its safetensors file, no forward pass), centred and
      projected on its top ``EMBED_DIMS`` [128] principal components. A prompt's vector is
      the mean over its tokens, plus the two cheap features of
      :mod:`tierwise.router.tier_quality` (log prompt tokens, log number words). Measured
      against a full MiniLM forward pass and a distilled (forward-pass-per-token) table in
      docs/benchmarks/tier_quality.md: no worse for routing, no PyTorch needed.
    * One L2-regularised logistic regression per cheaper tier (strength ``L2`` [1.0] on
      standardised features, intercept free), fitted by Newton's method: deterministic,
      no random start. Label: the tier answered the prompt well.
    * Threshold: ``FOLDS`` [5] folds (rows shuffled with ``--seed``; with a ``group``
      column whole groups go to one fold). Each fold is scored by models fitted on the
      others; on those held-out scores every candidate threshold ``t`` routes each
      prompt to the cheapest tier whose score is ``>= t`` (else the top tier). The chosen
      ``t`` has the smallest top-tier share among those whose quality (share of prompts
      answered well by the chosen tier) is at least ``target x`` the top tier's own
      quality, and whose top-tier share is within ``--max-top-tier-share``.
    * The shipped model is refitted on all rows; its weights are folded per token
      (:mod:`tierwise.router.tier_quality`) and stored as float16.
    * Enough data: at least ``MIN_ROWS`` [50] rows and ``MIN_PER_OUTCOME`` [10] prompts
      each answered well and badly per cheaper tier; otherwise refused with the shortfall.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt

from tierwise.router.calibrate_data import CalibrationDataError, LabelledSet
from tierwise.router.classifier import ClassifierUnavailableError
from tierwise.router.tier_quality import (
    DEFAULT_MAX_CHARS,
    Tokenize,
    load_tokenizer,
    model_dir,
    prompt_features,
)

EMBED_DIMS = 128
L2 = 1.0
FOLDS = 5
MIN_ROWS = 50
MIN_PER_OUTCOME = 10
CURVE_STEP = 0.05
Array = npt.NDArray[np.float64]


@dataclass(frozen=True)
class StaticEmbedding:
    """Token id -> projected static embedding, and the tokenizer it belongs to."""

    table: Array
    tokenize: Tokenize
    tokenizer_sha256: str
    max_chars: int = DEFAULT_MAX_CHARS

    @property
    def vocab_size(self) -> int:
        return int(self.table.shape[0])


def load_static_embedding(dims: int = EMBED_DIMS) -> StaticEmbedding:
    """The packaged model's token embeddings, projected (see the module docstring)."""
    try:
        from safetensors.numpy import load_file
    except ImportError as exc:
        raise ClassifierUnavailableError(
            "calibrate needs the safetensors package (the 'classifier' extra)"
        ) from exc
    tensors = load_file(str(model_dir() / "model.safetensors"))
    names = [k for k in tensors if k.endswith("word_embeddings.weight")]
    if len(names) != 1:
        raise ClassifierUnavailableError("the packaged model has no single word embedding matrix")
    matrix = tensors[names[0]].astype(np.float64)
    centred = matrix - matrix.mean(axis=0)
    _, vectors = np.linalg.eigh(centred.T @ centred)
    table = centred @ vectors[:, ::-1][:, :dims]
    tokenize, sha = load_tokenizer()
    return StaticEmbedding(table, tokenize, sha)


def featurize(prompts: Sequence[str], emb: StaticEmbedding) -> Array:
    """Rows of [mean projected embedding..., log tokens, log number words]."""
    dims = emb.table.shape[1]
    out = np.zeros((len(prompts), dims + 2))
    for i, text in enumerate(prompts):
        f = prompt_features(text, emb.tokenize, emb.max_chars)
        if f.ids:
            out[i, :dims] = emb.table[f.ids].mean(axis=0)
        out[i, dims] = f.length
        out[i, dims + 1] = f.numbers
    return out


@dataclass(frozen=True)
class Logistic:
    """A fitted model on standardised features: ``z = b + sum(w * (x - mean) / scale)``."""

    mean: Array
    scale: Array
    weights: Array
    bias: float

    def logit(self, x: Array) -> Array:
        result: Array = self.bias + ((x - self.mean) / self.scale) @ self.weights
        return result


def fit_logistic(x: Array, y: npt.NDArray[np.bool_], l2: float = L2) -> Logistic:
    """L2-regularised logistic regression by Newton's method (deterministic)."""
    mean = x.mean(axis=0)
    scale = x.std(axis=0)
    scale[scale < 1e-9] = 1.0
    z = np.hstack([np.ones((len(x), 1)), (x - mean) / scale])
    target = y.astype(np.float64)
    beta = np.zeros(z.shape[1])
    penalty = np.full(z.shape[1], l2)
    penalty[0] = 0.0
    for _ in range(50):
        p = 1.0 / (1.0 + np.exp(-np.clip(z @ beta, -35, 35)))
        gradient = z.T @ (p - target) + penalty * beta
        hessian = (z * (p * (1 - p))[:, None]).T @ z + np.diag(penalty + 1e-9)
        step = np.linalg.solve(hessian, gradient)
        beta -= step
        if float(np.max(np.abs(step))) < 1e-10:
            break
    return Logistic(mean, scale, beta[1:].copy(), float(beta[0]))


def assign_folds(data: LabelledSet, folds: int, seed: int) -> npt.NDArray[np.int64]:
    """Fold of each row: shuffled rows, or shuffled whole groups when groups are given."""
    rng = np.random.default_rng(seed)
    n = len(data)
    if data.groups is None:
        order = rng.permutation(n)
        fold = np.empty(n, dtype=np.int64)
        fold[order] = np.arange(n) % folds
        return fold
    names = sorted(set(data.groups))
    if len(names) < folds:
        raise CalibrationDataError(
            f"the group column has {len(names)} distinct groups; {folds} folds need at least "
            f"{folds} (drop the column or add groups)"
        )
    shuffled = [names[i] for i in rng.permutation(len(names))]
    of_group = {g: i % folds for i, g in enumerate(shuffled)}
    return np.array([of_group[g] for g in data.groups], dtype=np.int64)


def check_enough(data: LabelledSet, target: float) -> None:
    if len(data) < MIN_ROWS:
        raise CalibrationDataError(
            f"{len(data)} labelled rows; calibrate needs at least {MIN_ROWS} (add rows)"
        )
    labels = np.array(data.labels, dtype=bool)
    for k, tier in enumerate(data.tiers[:-1]):
        good = int(labels[:, k].sum())
        bad = len(data) - good
        if min(good, bad) < MIN_PER_OUTCOME:
            raise CalibrationDataError(
                f"tier {tier!r} answered {good} prompts well and {bad} badly; calibrate needs "
                f"at least {MIN_PER_OUTCOME} of each per cheaper tier (add labelled rows)"
            )
    if not labels[:, -1].any():
        raise CalibrationDataError(
            f"the top tier {data.tiers[-1]!r} answered no prompt well; a quality target "
            f"of {target:.0%} of it means nothing (check the labels)"
        )


def route(scores: Array, threshold: float) -> npt.NDArray[np.int64]:
    """Tier index per row: the cheapest whose score is >= threshold, else the top one."""
    n, cheaper = scores.shape
    clears = scores >= threshold
    first = np.argmax(clears, axis=1)
    chosen: npt.NDArray[np.int64] = np.where(clears.any(axis=1), first, cheaper).astype(np.int64)
    return chosen if n else np.zeros(0, dtype=np.int64)


@dataclass
class Point:
    threshold: float
    quality: float
    top_share: float
    shares: list[float] = field(default_factory=list)


def evaluate(scores: Array, labels: npt.NDArray[np.bool_], threshold: float) -> Point:
    chosen = route(scores, threshold)
    n = len(chosen)
    quality = float(labels[np.arange(n), chosen].mean())
    tiers = labels.shape[1]
    shares = [float((chosen == k).mean()) for k in range(tiers)]
    return Point(threshold, quality, shares[-1], shares)


def choose_threshold(
    scores: Array,
    labels: npt.NDArray[np.bool_],
    *,
    target: float,
    max_top_share: float | None,
    top_name: str,
) -> Point:
    """The threshold of the module docstring, or refuse naming the shortfall."""
    top_quality = float(labels[:, -1].mean())
    goal = target * top_quality
    candidates = np.unique(np.concatenate([scores.ravel(), [0.0, 1.0 + 1e-9]]))
    if len(candidates) > 4000:
        candidates = np.unique(np.quantile(candidates, np.linspace(0, 1, 4001)))
    best: Point | None = None
    for t in candidates:
        point = evaluate(scores, labels, float(t))
        if point.quality + 1e-12 < goal:
            continue
        if best is None or (point.top_share, -point.quality) < (best.top_share, -best.quality):
            best = point
    assert best is not None  # threshold above every score routes all to the top tier
    if max_top_share is not None and best.top_share > max_top_share + 1e-12:
        raise CalibrationDataError(
            f"keeping {target:.0%} of {top_name!r}'s quality needs at least "
            f"{best.top_share:.1%} of requests on it on held-out folds; "
            f"--max-top-tier-share {max_top_share:g} allows {max_top_share:.1%}: lower the "
            "target, raise the share, or add labelled data"
        )
    return best


def curve(scores: Array, labels: npt.NDArray[np.bool_], chosen: Point) -> list[Point]:
    steps = round(1 / CURVE_STEP)
    points = [evaluate(scores, labels, i * CURVE_STEP) for i in range(steps + 1)]
    points.append(chosen)
    return sorted(points, key=lambda p: p.threshold)


def out_of_fold(x: Array, labels: npt.NDArray[np.bool_], fold: npt.NDArray[np.int64]) -> Array:
    """Held-out probability per row and cheaper tier."""
    cheaper = labels.shape[1] - 1
    scores = np.zeros((len(x), cheaper))
    for f in np.unique(fold):
        test = fold == f
        for k in range(cheaper):
            model = fit_logistic(x[~test], labels[~test, k])
            scores[test, k] = 1.0 / (1.0 + np.exp(-model.logit(x[test])))
    return scores


def folded(model: Logistic, emb: StaticEmbedding) -> dict[str, Any]:
    """The model as per-token scores plus feature weights (tier_quality's TierModel)."""
    dims = emb.table.shape[1]
    w = model.weights / model.scale
    token_scores = emb.table @ w[:dims]
    bias = model.bias - float(np.dot(model.mean, w))
    return {
        "bias": bias,
        "lengthWeight": float(w[dims]),
        "numbersWeight": float(w[dims + 1]),
        "tokenScores": token_scores,
    }
