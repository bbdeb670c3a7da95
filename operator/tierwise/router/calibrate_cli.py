"""``tierwise route calibrate``: labelled traffic in, a reviewable routing threshold out.

Why it exists: teams want "keep 95% of the frontier's quality, send as little as possible
to it" as a file they can review and commit, with the curve behind it. This reads the
labels (:mod:`tierwise.router.calibrate_data`), fits and cross-validates
(:mod:`tierwise.router.calibrate_fit`), prints the curve and writes into ``-o DIR``:

* ``tier-quality.json`` — the artefact the router loads (reviewable metadata first: data
  hash, folds, the held-out curve and the chosen threshold; then the model);
* ``tier-quality-configmap.yaml`` — the same artefact as a ConfigMap (``--name``) to
  ``kubectl apply``; ConfigMaps hold at most 1 MiB, a two-tier artefact is about 90 KB;
* ``routingpolicy-fragment.yaml`` — ``spec.classifier.tierQuality`` (pinned by sha256),
  one ``minPredictedQuality`` rule per cheaper tier, and ``defaultTier``: the top tier;
* ``curve.csv`` — threshold, top-tier share, quality, per held-out fold estimate.

Deterministic: the same file, options and ``--seed`` give byte-identical outputs.
Exit status 0 written, 2 refused (the message names the line or the shortfall).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
from pathlib import Path
from typing import Any

import yaml

from tierwise.router.calibrate_data import CalibrationDataError, LabelledSet, read_labels
from tierwise.router.classifier import ClassifierUnavailableError
from tierwise.router.tier_quality import API_VERSION, KIND, MODEL_NAME, encode_scores

ARTIFACT = "tier-quality.json"
CONFIGMAP_LIMIT = 1024 * 1024


def register(sub: Any) -> None:
    p = sub.add_parser(
        "calibrate",
        help="fit the tier classifier on labelled prompts and pick the quality threshold",
    )
    p.add_argument("--data", required=True, type=Path, help="labelled prompts (.csv or .jsonl)")
    p.add_argument(
        "--target-quality",
        type=float,
        default=0.95,
        help="share of the top tier's quality to keep (default 0.95)",
    )
    p.add_argument(
        "--max-top-tier-share",
        type=float,
        default=None,
        metavar="S",
        help="refuse if the target needs more than this share of requests on the top tier",
    )
    p.add_argument("-o", "--output", required=True, type=Path, help="folder for the artefacts")
    p.add_argument("--tiers", default=None, help="tier columns, cheapest first (a,b,c)")
    p.add_argument("--seed", type=int, default=0, help="fold assignment seed (default 0)")
    p.add_argument("--folds", type=int, default=5, help="held-out folds (default 5)")
    p.add_argument("--name", default="tier-quality", help="ConfigMap name (default tier-quality)")
    p.add_argument("--shadow", action="store_true", help="write the rules with shadow: true")
    p.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    try:
        _check_args(args)
        tiers = [t.strip() for t in args.tiers.split(",")] if args.tiers else None
        data = read_labels(args.data, tiers)
        result = calibrate(data, args)
    except (CalibrationDataError, ClassifierUnavailableError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    write_outputs(args.output, result, args)
    print(summary(result, args.output))
    return 0


def _check_args(args: argparse.Namespace) -> None:
    if not 0 < args.target_quality <= 1:
        raise CalibrationDataError(
            f"--target-quality {args.target_quality:g}: give a share in (0, 1], e.g. 0.95"
        )
    share = args.max_top_tier_share
    if share is not None and not 0 <= share <= 1:
        raise CalibrationDataError(f"--max-top-tier-share {share:g}: give a share in [0, 1]")
    if args.folds < 2:
        raise CalibrationDataError(f"--folds {args.folds}: give at least 2")


def calibrate(data: LabelledSet, args: argparse.Namespace) -> dict[str, Any]:
    """Fit, cross-validate and choose; the artefact as a JSON-ready dict."""
    import numpy as np

    from tierwise.router import calibrate_fit as fit

    fit.check_enough(data, args.target_quality)
    emb = fit.load_static_embedding()
    x = fit.featurize(data.prompts, emb)
    labels = np.array(data.labels, dtype=bool)
    fold = fit.assign_folds(data, args.folds, args.seed)
    held_out = fit.out_of_fold(x, labels, fold)
    chosen = fit.choose_threshold(
        held_out,
        labels,
        target=args.target_quality,
        max_top_share=args.max_top_tier_share,
        top_name=data.tiers[-1],
    )
    top_quality = float(labels[:, -1].mean())
    models = {}
    for k, tier in enumerate(data.tiers[:-1]):
        f = fit.folded(fit.fit_logistic(x, labels[:, k]), emb)
        models[tier] = {
            "bias": _num(f["bias"]),
            "lengthWeight": _num(f["lengthWeight"]),
            "numbersWeight": _num(f["numbersWeight"]),
            "tokenScores": encode_scores([float(v) for v in f["tokenScores"]]),
        }
    points = fit.curve(held_out, labels, chosen)
    return {
        "apiVersion": API_VERSION,
        "kind": KIND,
        "tiers": list(data.tiers),
        "threshold": _num(chosen.threshold),
        "calibration": {
            "dataSha256": data.sha256,
            "rows": len(data),
            "seed": args.seed,
            "folds": args.folds,
            "groupedFolds": data.groups is not None,
            "targetQuality": args.target_quality,
            "maxTopTierShare": args.max_top_tier_share,
            "topTierQuality": _num(top_quality),
            "heldOut": _point(chosen, data.tiers, top_quality),
            "curve": [_point(p, data.tiers, top_quality) for p in points],
        },
        "embedding": {
            "model": MODEL_NAME,
            "tokenizerSha256": emb.tokenizer_sha256,
            "vocabSize": emb.vocab_size,
            "dims": int(emb.table.shape[1]),
            "method": "input token embeddings, centred, top principal components",
        },
        "features": {"maxChars": emb.max_chars},
        "models": models,
    }


def _num(value: float) -> float:
    """Six significant digits: stable text across platforms' last-bit differences."""
    return float(f"{value:.6g}")


def _point(p: Any, tiers: tuple[str, ...], top_quality: float) -> dict[str, Any]:
    return {
        "threshold": _num(p.threshold),
        "quality": _num(p.quality),
        "relativeQuality": _num(p.quality / top_quality),
        "topTierShare": _num(p.top_share),
        "shares": {t: _num(s) for t, s in zip(tiers, p.shares, strict=True)},
    }


def artifact_bytes(artifact: dict[str, Any]) -> bytes:
    return (json.dumps(artifact, indent=1, ensure_ascii=False) + "\n").encode("utf-8")


def write_outputs(out: Path, artifact: dict[str, Any], args: argparse.Namespace) -> None:
    out.mkdir(parents=True, exist_ok=True)
    data = artifact_bytes(artifact)
    digest = hashlib.sha256(data).hexdigest()
    (out / ARTIFACT).write_bytes(data)
    configmap = {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": args.name, "labels": {"app.kubernetes.io/part-of": "tierwise"}},
        "data": {ARTIFACT: data.decode("utf-8")},
    }
    (out / "tier-quality-configmap.yaml").write_text(
        _HEADER + yaml.safe_dump(configmap, sort_keys=False, width=1 << 30), encoding="utf-8"
    )
    (out / "routingpolicy-fragment.yaml").write_text(
        _HEADER + yaml.safe_dump(fragment(artifact, digest, args), sort_keys=False),
        encoding="utf-8",
    )
    lines = ["threshold,top_tier_share,quality,relative_quality"]
    for p in artifact["calibration"]["curve"]:
        lines.append(f"{p['threshold']},{p['topTierShare']},{p['quality']},{p['relativeQuality']}")
    (out / "curve.csv").write_text("\n".join(lines) + "\n", encoding="utf-8")


_HEADER = "# Written by `tierwise route calibrate`; review and commit it with tier-quality.json.\n"


def fragment(artifact: dict[str, Any], digest: str, args: argparse.Namespace) -> dict[str, Any]:
    """The RoutingPolicy spec parts to merge: classifier, rules, default tier."""
    threshold = artifact["threshold"]
    rules: list[dict[str, Any]] = []
    for tier in artifact["tiers"][:-1]:
        rule: dict[str, Any] = {"name": f"calibrated-{tier}"[:63], "tier": tier}
        if args.shadow:
            rule["shadow"] = True
        rule["match"] = {"minPredictedQuality": threshold}
        rules.append(rule)
    return {
        "spec": {
            "classifier": {
                "tierQuality": {
                    "configMap": {"name": args.name, "key": ARTIFACT},
                    "sha256": digest,
                }
            },
            "rules": rules,
            "defaultTier": artifact["tiers"][-1],
        }
    }


def summary(artifact: dict[str, Any], out: Path) -> str:
    cal = artifact["calibration"]
    tiers = artifact["tiers"]
    held = cal["heldOut"]
    size = len(artifact_bytes(artifact))
    lines = [
        f"{cal['rows']} labelled prompts, tiers {' < '.join(tiers)}, {cal['folds']} held-out "
        f"folds{' by group' if cal['groupedFolds'] else ''}, seed {cal['seed']}",
        f"top tier {tiers[-1]!r} answers {cal['topTierQuality']:.1%} well; target "
        f"{cal['targetQuality']:.0%} of it",
        "",
        "threshold  top-tier share  quality  vs top tier",
    ]
    for p in cal["curve"]:
        mark = "  <- chosen" if p["threshold"] == artifact["threshold"] else ""
        lines.append(
            f"{p['threshold']:9.3f}  {p['topTierShare']:14.1%}  {p['quality']:7.1%}  "
            f"{p['relativeQuality']:11.1%}{mark}"
        )
    shares = ", ".join(f"{t} {s:.1%}" for t, s in held["shares"].items())
    lines += [
        "",
        f"chosen threshold {artifact['threshold']:.4g}: held-out quality {held['quality']:.1%} "
        f"({held['relativeQuality']:.1%} of the top tier), shares {shares}",
        f"wrote {out}/: {ARTIFACT} ({size / 1024:.0f} KiB"
        + ("" if size < CONFIGMAP_LIMIT - 4096 else "; too big for a ConfigMap, use path:")
        + "), tier-quality-configmap.yaml, routingpolicy-fragment.yaml, curve.csv",
    ]
    return "\n".join(lines)
