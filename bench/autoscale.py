"""Autoscaling benchmark (simulated): Tierwise's policy against baselines on request traces.

Why it exists: the autoscaler's promise is SLO attainment at low GPU cost, and a policy
judged only on the trace written alongside it proves little. This replays a trace, either
the seeded synthetic day or any CSV in the public LLM-inference trace format
(``--trace``), through the simulated fleet of ``autoscale_sim`` under every policy below,
at each replica cold start asked for, and compares them in the same run:

* ``tierwise``                 the CRD defaults, no dcgm-exporter
* ``tierwise+dcgm``            the defaults with a dcgm-exporter exporting profiling ratios
* ``tierwise+dcgm-util``       the defaults with dcgm-exporter's default counters only
* ``tierwise guard``           ``gpuGuard: true`` (SM activity), profiling exporter
* ``tierwise guard gpuUtil``   ``gpuGuard: true, gpuMetric: gpuUtil`` (the guard as it was
  on by default before: DCGM_FI_DEV_GPU_UTIL)
* ``tierwise step4``           ``maxScaleUpPercent: 0`` (4 replicas per decision at most)
* ``tierwise no-headroom``     ``headroomPerMinute: 0``
* ``tierwise no-trend``        ``scaleUpLookahead: 0s``
* ``tierwise reactive``        both off: the proportional rules alone
* ``tierwise kv0.5 reactive``  both off, ``targetKVCacheUsage: 0.5``: fixed headroom
* ``static-peak``  a fixed deployment sized for the busiest minute at 80% occupancy
* ``hpa-gpu``      Kubernetes HPA on DCGM_FI_DEV_GPU_UTIL (target 70%)
* ``queue-only``   the same HPA mechanics on waiting requests per replica (target 5)
* ``keda-pending`` KEDA's Prometheus scaler on the router's pending requests (threshold 5)

Everything is simulated (no GPU, no cluster); ``docs/benchmarks/autoscale.md`` has the set-up.

Run: ``.venv/bin/python bench/autoscale.py [--trace FILE.csv [--speedup K]] [--seed N]
[--seeds K] [--cold-start S ...] [--variant NAME=JSON ...] [--json OUT] [--markdown]``;
``--variant`` adds a Tierwise row with those ``spec.autoscaling`` fields.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

from autoscale_policies import (
    Exporter,
    hpa_policy,
    keda_policy,
    static_policy,
    tierwise_policy,
)
from autoscale_sim import Fleet, Metrics, Policy, Workload, simulate
from pydantic import ValidationError

from tierwise.api.model_deployment import AutoscalingSpec
from tierwise.sim import trace
from tierwise.sim.tracegen import SHAPES, generate

GOAL_ATTAINMENT = 0.99
GOAL_RATIO = 1.15
DEFAULTS = "tierwise"
DEFAULT_COLD_STARTS = (180.0,)
REACTIVE = {"headroomPerMinute": 0, "scaleUpLookahead": "0s"}


@dataclass(frozen=True)
class Run:
    """One workload at one cold start, and what each policy did on it."""

    workload: Workload
    fleet: Fleet
    results: dict[str, Metrics]


def policies(
    fleet: Fleet, workload: Workload, variants: dict[str, dict[str, object]] | None = None
) -> dict[str, tuple[Policy, int | None]]:
    """Every policy, fresh (they carry state), and its starting replicas (None: default);
    ``variants`` adds Tierwise rows with those ``spec.autoscaling`` fields."""
    tw = tierwise_policy
    peak = workload.replicas_for(fleet, 0, len(workload.arrivals), busiest_minute=True)
    extra = {name: (tw(fleet, **fields), None) for name, fields in (variants or {}).items()}
    return {
        DEFAULTS: (tw(fleet), None),
        "tierwise+dcgm": (tw(fleet, exporter=Exporter.PROFILING), None),
        "tierwise+dcgm-util": (tw(fleet, exporter=Exporter.UTIL_ONLY), None),
        "tierwise guard": (tw(fleet, exporter=Exporter.PROFILING, gpuGuard=True), None),
        "tierwise guard gpuUtil": (
            tw(fleet, exporter=Exporter.PROFILING, gpuGuard=True, gpuMetric="gpuUtil"),
            None,
        ),
        "tierwise step4": (tw(fleet, maxScaleUpPercent=0), None),
        "tierwise no-headroom": (tw(fleet, headroomPerMinute=0), None),
        "tierwise no-trend": (tw(fleet, scaleUpLookahead="0s"), None),
        "tierwise reactive": (tw(fleet, **REACTIVE), None),
        "tierwise kv0.5 reactive": (tw(fleet, targetKVCacheUsage=0.5, **REACTIVE), None),
        "static-peak": (static_policy(), peak),
        "hpa-gpu": (hpa_policy(fleet, lambda v: v.gpu_util, 70.0), None),
        "queue-only": (hpa_policy(fleet, lambda v: v.waiting / v.ready, 5.0), None),
        "keda-pending": (keda_policy(fleet, 5.0), None),
        **extra,
    }


def run(
    workload: Workload,
    fleet: Fleet,
    *,
    seed: int,
    variants: dict[str, dict[str, object]] | None = None,
) -> Run:
    results = {
        name: simulate(fleet, policy, workload, seed=seed, start=start)
        for name, (policy, start) in policies(fleet, workload, variants).items()
    }
    return Run(workload, fleet, results)


def variant(text: str) -> tuple[str, dict[str, object]]:
    """``NAME=JSON`` (``spec.autoscaling`` fields) for ``--variant``."""
    name, sep, fields = text.partition("=")
    try:
        parsed = json.loads(fields) if sep else None
    except json.JSONDecodeError as err:
        raise argparse.ArgumentTypeError(f"{text!r}: {err}") from err
    if not name or not isinstance(parsed, dict):
        raise argparse.ArgumentTypeError(
            f"{text!r}: give NAME={{spec.autoscaling fields as JSON}}, e.g. "
            "kv0.6='{\"targetKVCacheUsage\": 0.6}'"
        )
    try:
        AutoscalingSpec.model_validate(parsed)
    except ValidationError as err:
        problems = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in err.errors())
        raise argparse.ArgumentTypeError(f"{text!r}: {problems}") from err
    return name, parsed


def best_attaining(results: dict[str, Metrics]) -> float:
    """GPU-seconds of the cheapest policy at >= 99% attainment (NaN if none)."""
    costs = [m.gpu_seconds for m in results.values() if m.attainment >= GOAL_ATTAINMENT]
    return min(costs, default=math.nan)


def verdicts(results: dict[str, Metrics]) -> list[str]:
    """The goal, checked for the defaults with and without DCGM data, one line each."""
    best = best_attaining(results)
    base = results[DEFAULTS].gpu_seconds
    lines = []
    for name in (DEFAULTS, "tierwise+dcgm", "tierwise+dcgm-util"):
        m = results[name]
        ratio = m.gpu_seconds / best
        met = m.attainment >= GOAL_ATTAINMENT and ratio <= GOAL_RATIO
        lines.append(
            f"{name}: {'MET' if met else 'NOT MET'} ({100 * m.attainment:.2f}%, "
            f"{ratio:.2f}x the best at >= 99%, {m.gpu_seconds / base:.2f}x without DCGM)"
        )
    return lines


def table(results: dict[str, Metrics], *, markdown: bool) -> Iterator[str]:
    best = best_attaining(results)
    header = ["policy", "SLO attainment", "GPU-hours", "vs best >=99%", "p99 wait s", "peak"]
    rows = [header]
    for name, m in results.items():
        attains = m.attainment >= GOAL_ATTAINMENT
        rows.append(
            [
                name,
                f"{100 * m.attainment:.2f}%",
                f"{m.gpu_hours:.1f}",
                f"{m.gpu_seconds / best:.2f}x" if attains else "-",
                f"{m.percentile(0.99):.1f}",
                str(m.peak_replicas),
            ]
        )
    if markdown:
        yield "| " + " | ".join(header) + " |"
        yield "|" + "---|" * len(header)
        yield from ("| " + " | ".join(row) + " |" for row in rows[1:])
    else:
        yield from (
            "".join(cell.ljust(24 if i == 0 else 15) for i, cell in enumerate(row)) for row in rows
        )


def as_json(result: Run) -> dict[str, object]:
    """``{"trace": ..., "policies": [...]}``; ``tierwise`` is the CRD defaults."""
    return {
        "trace": result.workload.name,
        "policies": [
            {
                "name": name,
                "slo_attainment": round(m.attainment, 6),
                "gpu_hours": round(m.gpu_hours, 3),
                "p99_wait_s": m.percentile(0.99),
                "peak_replicas": m.peak_replicas,
            }
            for name, m in result.results.items()
        ],
    }


def workloads(args: argparse.Namespace, fleet: Fleet) -> Iterator[Workload]:
    if args.trace is not None:
        loaded = trace.load(args.trace).compressed(args.speedup)
        yield Workload.of(loaded, fleet)
        return
    shape = SHAPES["synthetic"]
    for seed in range(args.seed, args.seed + args.seeds):
        rows = tuple(generate(shape, seed))
        synthetic = trace.Trace(name=f"synthetic seed {seed}", start=shape.start, rows=rows)
        yield Workload.of(synthetic, fleet)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--trace", type=Path, help="a CSV in the public LLM-inference trace format")
    parser.add_argument(
        "--speedup", type=float, default=1.0, help="replay the trace K times faster (default 1)"
    )
    parser.add_argument("--seed", type=int, default=1, help="first synthetic seed (no --trace)")
    parser.add_argument("--seeds", type=int, default=1, help="synthetic seeds to run")
    parser.add_argument(
        "--cold-start",
        type=float,
        nargs="+",
        default=list(DEFAULT_COLD_STARTS),
        metavar="S",
        help="replica cold starts to run, seconds (default 180: weights from object storage)",
    )
    parser.add_argument("--json", type=Path, help="write the results (one cold start) as JSON")
    parser.add_argument(
        "--variant",
        type=variant,
        action="append",
        default=[],
        metavar="NAME=JSON",
        help="add a Tierwise row with these spec.autoscaling fields (repeatable)",
    )
    parser.add_argument("--markdown", action="store_true")
    args = parser.parse_args(argv)
    if args.json is not None and (len(args.cold_start) != 1 or args.seeds != 1):
        parser.error("--json writes one run: give a single --cold-start (and --seeds 1)")
    if not args.speedup > 0:
        parser.error("--speedup must be a positive number")
    started = time.perf_counter()
    try:
        loaded = list(workloads(args, Fleet()))
    except trace.TraceFormatError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    last: Run | None = None
    for workload in loaded:
        for cold in args.cold_start:
            fleet = replace(Fleet(), cold_start_s=cold)
            last = run(workload, fleet, seed=1, variants=dict(args.variant))
            print(f"\n{workload.name}, cold start {cold:g} s ({workload.requests} requests)")
            print("\n".join(table(last.results, markdown=args.markdown)))
            print("goal (>= 99% attainment, <= 1.15x the best GPU-hours at >= 99%):")
            print("\n".join(f"  {line}" for line in verdicts(last.results)))
    if args.json is not None and last is not None:
        args.json.write_text(json.dumps(as_json(last), indent=1) + "\n")
    print(f"\n{time.perf_counter() - started:.1f}s wall")
    return 0


if __name__ == "__main__":
    sys.exit(main())
