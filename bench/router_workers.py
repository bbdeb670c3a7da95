"""Requests per second of ``tierwise router --workers N`` against one worker, same run.

Why it exists: issue 13 asks ``--workers`` to use every core: on a 2-core machine, 2
workers should answer at least 1.6x the requests per second of one worker at no worse
p99. This runs, in one invocation and against the same backend, ``tierwise router
--workers 1`` and ``--workers 2`` (or ``--workers`` as given) and drives each with the
same closed-loop load.

Pieces (all loopback, each in its own process group, stopped on exit):
  backend     ``bench/router_overhead.py backend``: raw uvloop/httptools servers answering
              a fixed chat completion at once (zero latency)
  router      ``tierwise router --workers N --policy RP --endpoints EP``, balancing
              ``--policy`` (default prefix-hash: what replicated workers should run)
  load        ``--loadgens`` processes of ``bench/router_overhead.py loadgen``, each
              holding ``concurrency / loadgens`` keep-alive connections (the kernel's
              SO_REUSEPORT hash spreads connections, not requests, over workers), sending
              non-streaming chat bodies with a shared 1 KB system prompt
Measured per row: requests/s (sum over load generators), p50 (mean of theirs) and p99
(the worst of theirs: conservative), router CPU µs per request (utime+stime of the
router's process tree from /proc), the load generators' own CPU (cores busy, from
``RUSAGE_CHILDREN``), errors, and the load average before and after.

Placement: ``--router-cpus``, ``--backend-cpus`` and ``--loadgen-cpus`` pin each piece
with ``taskset`` (empty: unpinned, the kernel decides; on a 2-core machine everything
then shares both cores, so the load generators and the backend compete with the router).

Usage::

    .venv/bin/python bench/router_workers.py [--workers 1,2] [--seconds 4]
        [--concurrency 64] [--loadgens 2] [--policy prefix-hash]
        [--router-cpus 0,1 --backend-cpus 2 --loadgen-cpus 3-6] [--json PATH]
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import platform
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import router_overhead as overhead  # bench/router_overhead.py (sys.path[0] is bench/)

from tierwise.sim.process import stop_process_group

PY = sys.executable
OVERHEAD = str(Path(overhead.__file__).resolve())


@dataclass
class Row:
    workers: int
    rps: float
    p50_ms: float
    p99_ms: float
    router_cpu_us: float
    loadgen_cores: float
    errors: int
    requests: int
    load_before: float
    load_after: float


def pinned(cpus: str, command: list[str]) -> list[str]:
    return ["taskset", "-c", cpus, *command] if cpus else command


def load(port: int, args: argparse.Namespace) -> tuple[list[dict[str, float]], float]:
    """Run the load generators at once; their results and the CPU cores they kept busy."""
    per = max(args.concurrency // args.loadgens, 1)
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    began = time.monotonic()
    procs = [
        subprocess.Popen(
            pinned(
                args.loadgen_cpus,
                [
                    PY,
                    OVERHEAD,
                    "loadgen",
                    "--port",
                    str(port),
                    "--concurrency",
                    str(per),
                    "--seconds",
                    str(args.seconds),
                ],
            ),
            stdout=subprocess.PIPE,
            text=True,
        )
        for _ in range(args.loadgens)
    ]
    outs = [json.loads(p.communicate()[0]) for p in procs]
    wall = time.monotonic() - began
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return outs, cpu / wall


def measure(workers: int, root: Path, backend_ports: list[int], args: argparse.Namespace) -> Row:
    port = overhead._free_port()
    policy = overhead._policy(root, backend_ports, args.policy)
    command = [
        PY,
        "-m",
        "tierwise.cli",
        "router",
        "--log-level",
        "warning",
        *policy,
        "--port",
        str(port),
        "--workers",
        str(workers),
    ]
    proc = subprocess.Popen(
        pinned(args.router_cpus, command),
        start_new_session=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        overhead._wait_ready(port, proc)
        load(port, argparse.Namespace(**{**vars(args), "seconds": 1.0}))  # warm-up
        load_before = os.getloadavg()[0]
        ticks = overhead._cpu_ticks(proc.pid)
        outs, loadgen_cores = load(port, args)
        used = (overhead._cpu_ticks(proc.pid) - ticks) / os.sysconf("SC_CLK_TCK")
        n = sum(int(o["n"]) for o in outs)
        return Row(
            workers=workers,
            rps=sum(o["rps"] for o in outs),
            p50_ms=sum(o["p50_ms"] for o in outs) / len(outs),
            p99_ms=max(o["p99_ms"] for o in outs),
            router_cpu_us=used * 1e6 / max(n, 1),
            loadgen_cores=loadgen_cores,
            errors=sum(int(o["errors"]) for o in outs),
            requests=n,
            load_before=load_before,
            load_after=os.getloadavg()[0],
        )
    finally:
        stop_process_group(proc, 15)


def table(rows: list[Row], first: int) -> str:
    """Rows as measured; each compared with the latest row of ``first`` workers before it
    (rows alternate, so that is the same repetition, seconds apart)."""
    lines = [
        "| workers | req/s | vs the preceding first-count row | p50 ms | p99 ms "
        "| router CPU µs/req | load generators' CPU (cores) | errors "
        "| load avg before / after |",
        "|" + "---|" * 9,
    ]
    base = rows[0]
    for r in rows:
        if r.workers == first:
            base = r
        lines.append(
            f"| {r.workers} | {r.rps:.0f} | {r.rps / base.rps:.2f}x | {r.p50_ms:.3f} | "
            f"{r.p99_ms:.3f} | {r.router_cpu_us:.1f} | {r.loadgen_cores:.2f} | {r.errors} | "
            f"{r.load_before:.2f} / {r.load_after:.2f} |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--workers", default="1,2", help="comma-separated worker counts")
    parser.add_argument("--seconds", type=float, default=4.0)
    parser.add_argument("--concurrency", type=int, default=64)
    parser.add_argument("--loadgens", type=int, default=2)
    parser.add_argument("--policy", default="prefix-hash")
    parser.add_argument("--router-cpus", default="")
    parser.add_argument("--backend-cpus", default="")
    parser.add_argument("--loadgen-cpus", default="")
    parser.add_argument("--repeat", type=int, default=1, help="alternate the rows this often")
    parser.add_argument("--json", default="/tmp/tierwise-router-workers.json")
    args = parser.parse_args(argv)
    counts = [int(w) for w in args.workers.split(",")]
    root = Path(tempfile.mkdtemp(prefix="tierwise-router-workers-bench-"))
    ports = [overhead._free_port()]
    model_dir = overhead._model_dir(root)
    backend = subprocess.Popen(
        pinned(
            args.backend_cpus, [PY, OVERHEAD, "backend", "--model-dir", model_dir, *map(str, ports)]
        ),
        start_new_session=True,
    )
    rows: list[Row] = []
    try:
        overhead._wait_ready(ports[0], backend)
        for _ in range(args.repeat):
            for count in counts:
                rows.append(measure(count, root, ports, args))
                print(table(rows, counts[0]).splitlines()[-1], file=sys.stderr, flush=True)
    finally:
        stop_process_group(backend, 10)
        shutil.rmtree(root, ignore_errors=True)
    Path(args.json).write_text(json.dumps([asdict(r) for r in rows], indent=1))
    print(
        f"python {platform.python_version()} on {platform.machine()}, {os.cpu_count()} cores; "
        f"policy {args.policy}; concurrency {args.concurrency} over {args.loadgens} load "
        f"generators; {args.seconds}s per row; pinning: router {args.router_cpus or '-'}, "
        f"backend {args.backend_cpus or '-'}, load {args.loadgen_cpus or '-'}\n"
    )
    print(table(rows, counts[0]))
    ratios = sorted(
        b.rps / a.rps
        for a, b in itertools.pairwise(rows)
        if a.workers == counts[0] and b.workers != counts[0]
    )
    if ratios:
        print(f"\nratio per repetition (sorted): {', '.join(f'{r:.2f}x' for r in ratios)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
