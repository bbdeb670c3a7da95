"""Prefix-cache effectiveness through real router processes, with sglang-router as the peer.

Why it exists: ``bench/prefix_cache.py`` judges tierwise's balancers offline, but a peer
such as ``sglang-router --policy cache_aware`` only speaks HTTP, and the router issue asks
for its figures beside ours in the same run. This starts four vLLM-flavoured simulator
processes with a bounded prefix cache (``--kv-tokens`` per replica, sized so the agentic
working set fits the four replicas together but not one), puts one router process in
front of them, drives the same seeded ``agentic`` workload through it with a fixed
concurrency (``tierwise.sim.driver.drive``, non-streaming), and reads each simulator's
own ``/metrics`` before and after: hit rate = delta ``vllm:prefix_cache_hits_total`` /
delta ``vllm:prefix_cache_queries_total`` over all replicas, imbalance = max/mean of delta
``vllm:request_success_total`` per replica. Simulators are restarted for every router
(they have no cache-reset endpoint), so each starts cold.

Routers (started with ``bench/router_overhead.py``'s launch helpers, same flags):
  tierwise prefix-aware       ``tierwise router`` with ``balancing: {policy: prefix-aware}``
  tierwise prefix-hash        ``tierwise router`` with ``balancing: {policy: prefix-hash}``
  tierwise round-robin        ``tierwise router`` with ``balancing: {policy: round-robin}``
  ..., N routers              N such router processes (same policy and endpoint files) in
                              front of the same simulators; every request goes to one of
                              them drawn at random (seeded), as a Service spreading
                              connections would at worst: a session's turns land on
                              different routers (``--router-replicas``, default 3)
  sglang-router cache_aware   sglang-router 0.3.2, default cache_aware tunables
  vllm-router cache_aware     vllm-router 0.1.17, default tunables

Oracle: computed offline from the same trace with the simulator's ``PrefixCache``
(``bench/prefix_cache.py``'s ``Oracle``: sessions pinned round-robin to replicas on first
appearance, caches that never evict).

Every process runs in its own process group, loopback only, and is killed on exit, on an
exception, on Ctrl-C and on SIGTERM. Each router's drive is bounded by ``--target-timeout``.

Usage::

    .venv/bin/python bench/prefix_cache_http.py [--requests 600] [--concurrency 16]
        [--kv-tokens 40000] [--seed 7] [--only tierwise,sglang] [--json PATH]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import platform
import random
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from types import FrameType

import aiohttp
import prefix_cache as offline  # bench/prefix_cache.py (sys.path[0] is bench/)
import router_overhead as launch  # bench/router_overhead.py

from tierwise.sim.config import SimConfig
from tierwise.sim.driver import DriveOptions, RequestResult, drive, percentile, send
from tierwise.sim.latency import LatencyParams
from tierwise.sim.process import EngineProcess, free_port, running_engines, stop_process_group
from tierwise.sim.traffic import Request, TrafficShape, Workload, generate

SIM_MODEL = "bench"  # the ModelDeployment name router_overhead's policy file uses


@dataclass(frozen=True, slots=True)
class Router:
    """A router to measure: a target of ``router_overhead._targets`` (or a tierwise
    balancing policy), extra flags, model, and how many processes to run side by side."""

    target: str
    model: str
    extra: tuple[str, ...] = ()
    balancing: str = ""
    """Set: ``tierwise router`` with this ``spec.balancing.policy`` (``target`` unused)."""
    spread: bool = False
    """Run ``--router-replicas`` processes and spread the requests over them."""


ROUTERS = {
    "tierwise prefix-aware": Router("", "auto", balancing="prefix-aware"),
    "tierwise prefix-hash": Router("", "auto", balancing="prefix-hash"),
    "tierwise prefix-aware, N routers": Router("", "auto", balancing="prefix-aware", spread=True),
    "tierwise prefix-hash, N routers": Router("", "auto", balancing="prefix-hash", spread=True),
    "tierwise round-robin": Router("", "auto", balancing="round-robin"),
    "sglang-router cache_aware": Router("sglang-router cache_aware", SIM_MODEL),
    # Its default balance_abs_threshold (64) never triggers at this concurrency; this
    # row shows cache_aware with balancing that can (max-min in-flight > 4).
    "sglang-router cache_aware, balance-abs-threshold 4": Router(
        "sglang-router cache_aware", SIM_MODEL, ("--balance-abs-threshold", "4")
    ),
    "vllm-router cache_aware": Router("vllm-router cache_aware", SIM_MODEL),
}


@dataclass(frozen=True, slots=True)
class Counters:
    """One simulator's cumulative prefix-cache tokens and finished requests."""

    queries: float
    hits: float
    requests: float


@dataclass
class Row:
    policy: str
    hit_rate: float
    per_replica: list[int]
    sent: int
    failed: int
    p50_s: float
    p99_s: float
    wall_s: float
    note: str = ""

    @property
    def imbalance(self) -> float:
        mean = statistics.fmean(self.per_replica) if self.per_replica else 0.0
        return max(self.per_replica) / mean if mean else 0.0


def scrape(url: str) -> Counters:
    """Sum the vLLM prefix-cache and request-success counters of one simulator."""
    with urllib.request.urlopen(url + "/metrics", timeout=5) as response:
        text = response.read().decode()
    sums = {"queries": 0.0, "hits": 0.0, "requests": 0.0}
    names = {
        "vllm:prefix_cache_queries_total": "queries",
        "vllm:prefix_cache_hits_total": "hits",
        "vllm:request_success_total": "requests",
    }
    for line in text.splitlines():
        name = line.split("{", 1)[0].split(" ", 1)[0]
        if name in names:
            sums[names[name]] += float(line.rsplit(" ", 1)[1])
    return Counters(**sums)


def sim_configs(args: argparse.Namespace, model_dir: str) -> list[SimConfig]:
    latency = LatencyParams(
        prefill_base_ms=2.0,
        prefill_ms_per_token=args.prefill_ms_per_token,
        decode_ms_per_token=args.decode_ms_per_token,
        decode_ms_per_running=0.01,
        kv_capacity_tokens=args.kv_tokens,
    )
    return [
        SimConfig(model=SIM_MODEL, seed=i, latency=latency, model_path=Path(model_dir))
        for i in range(args.replicas)
    ]


@contextlib.contextmanager
def router_process(command: list[str], log: Path) -> Iterator[subprocess.Popen[bytes]]:
    """Run a router in its own process group; SIGTERM then SIGKILL the group on exit."""
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            command, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
        )
    try:
        yield proc
    finally:
        stop_process_group(proc, 10)


def wait_ready(port: int, model: str, proc: subprocess.Popen[bytes], timeout: float) -> None:
    """Until one tiny chat request through the router answers 200."""
    body = json.dumps(
        {"model": model, "messages": [{"role": "user", "content": "ping"}], "max_tokens": 1}
    ).encode()
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"router exited with {proc.returncode}")
        request = urllib.request.Request(
            f"http://127.0.0.1:{port}/v1/chat/completions",
            body,
            {"content-type": "application/json"},
        )
        with contextlib.suppress(OSError), urllib.request.urlopen(request, timeout=5) as r:
            if r.status == 200:
                return
        time.sleep(0.25)
    raise TimeoutError(f"router on port {port} not ready after {timeout}s")


async def drive_spread(
    ports: list[int], requests: list[Request], options: DriveOptions, seed: int
) -> list[RequestResult]:
    """``drive`` over several routers: each request to a random one (seeded), sessions
    still in turn order, one at a time, under the same concurrency limit."""
    if len(ports) == 1:
        return await drive(f"http://127.0.0.1:{ports[0]}", requests, options)
    rng = random.Random(seed)
    urls = [f"http://127.0.0.1:{rng.choice(ports)}/v1/chat/completions" for _ in requests]
    sessions: dict[str, list[int]] = defaultdict(list)
    for idx, request in enumerate(requests):
        sessions[request.session_id].append(idx)
    results: list[RequestResult | None] = [None] * len(requests)
    limit = asyncio.Semaphore(max(options.concurrency, 1))
    timeout = aiohttp.ClientTimeout(total=options.timeout_s)
    async with aiohttp.ClientSession(timeout=timeout) as http:

        async def run_session(indices: list[int]) -> None:
            for idx in sorted(indices, key=lambda i: requests[i].turn):
                async with limit:
                    results[idx] = await send(http, urls[idx], requests[idx], options)

        async with asyncio.TaskGroup() as group:
            for indices in sessions.values():
                group.create_task(run_session(indices))
    return [r for r in results if r is not None]


async def drive_bounded(
    ports: list[int],
    requests: list[Request],
    options: DriveOptions,
    *,
    timeout_s: float,
    seed: int,
) -> tuple[list[RequestResult], str]:
    try:
        results = await asyncio.wait_for(drive_spread(ports, requests, options, seed), timeout_s)
    except TimeoutError:
        return [], f"timed out after {timeout_s:.0f}s"
    return results, ""


def measure(
    name: str,
    ports: list[int],
    engines: list[EngineProcess],
    *,
    requests: list[Request],
    args: argparse.Namespace,
) -> Row:
    """Drive the workload through the router listening on ``port``; counter deltas."""
    before = [scrape(e.url) for e in engines]
    options = DriveOptions(
        model=ROUTERS[name.replace(f"{args.router_replicas} routers", "N routers")].model,
        concurrency=args.concurrency,
        stream=False,
        timeout_s=60.0,
    )
    began = time.monotonic()
    results, note = asyncio.run(
        drive_bounded(ports, requests, options, timeout_s=args.target_timeout, seed=args.seed)
    )
    wall = time.monotonic() - began
    after = [scrape(e.url) for e in engines]
    queries = sum(a.queries - b.queries for a, b in zip(after, before, strict=True))
    hits = sum(a.hits - b.hits for a, b in zip(after, before, strict=True))
    ok = [r.latency_s for r in results if r.ok]
    errors = sorted({f"{r.status} {(r.error or '')[:120]}" for r in results if not r.ok})
    note = "; ".join([note, *errors[:2]]).strip("; ")
    return Row(
        policy=name,
        hit_rate=hits / queries if queries else 0.0,
        per_replica=[round(a.requests - b.requests) for a, b in zip(after, before, strict=True)],
        sent=len(results),
        failed=len(requests) - len(ok),
        p50_s=percentile(ok, 50),
        p99_s=percentile(ok, 99),
        wall_s=wall,
        note=note,
    )


def run_router(
    name: str, requests: list[Request], args: argparse.Namespace, root: Path, model_dir: str
) -> Row:
    """Fresh simulators, one router in front of them, the workload, the counters."""
    with running_engines(sim_configs(args, model_dir)) as engines:
        ports = [e.port for e in engines]
        router = ROUTERS[name]
        command = router_command(router, root, ports, model_dir)
        count = args.router_replicas if router.spread else 1
        with contextlib.ExitStack() as stack:
            router_ports = []
            for _ in range(count):
                port = free_port()
                log = root / f"router-{len(list(root.glob('router-*')))}.log"
                proc = stack.enter_context(router_process([*command(port), *router.extra], log))
                try:
                    wait_ready(port, router.model, proc, timeout=60)
                except (RuntimeError, TimeoutError) as exc:
                    tail = log.read_text(errors="replace")[-400:]
                    return Row(
                        name, 0.0, [0] * len(engines), 0, len(requests), 0, 0, 0, f"{exc} {tail}"
                    )
                router_ports.append(port)
            return measure(
                row_name(name, args), router_ports, engines, requests=requests, args=args
            )


def router_command(router: Router, root: Path, ports: list[int], model_dir: str) -> launch.Command:
    if router.balancing:
        policy = launch._policy(root, ports, router.balancing)
        tw = [launch.PY, "-m", "tierwise.cli", "router", "--log-level", "warning", *policy]
        return lambda p: [*tw, "--port", str(p)]
    command = launch._targets(root, ports, model_dir)[router.target]
    assert command is not None
    return command


def row_name(name: str, args: argparse.Namespace) -> str:
    return name.replace("N routers", f"{args.router_replicas} routers")


def oracle(args: argparse.Namespace) -> Row:
    """Sessions pinned to replicas, caches that never evict: the same trace, offline."""
    sessions = offline.prepare(args.requests, args.seed, args.system_prompts)
    ns = argparse.Namespace(
        replicas=args.replicas, clients=args.concurrency, think_s=0.0, seed=args.seed
    )
    out = offline.run_policy(
        "oracle (pinned, unbounded cache)", offline.Oracle, sessions, ns, 10**9
    )
    return Row(out.policy, out.hit_rate, out.per_replica, args.requests, 0, 0, 0, out.seconds)


def table(rows: list[Row], oracle_rate: float) -> str:
    best = oracle_rate
    lines = [
        "| policy | hit rate | % of oracle | imbalance (max/mean) | requests per replica "
        "| p50 s | p99 s | failed | wall s | goal (≥95% of oracle, ≤1.25) |",
        "|" + "---|" * 10,
    ]
    for r in rows:
        share = r.hit_rate / best if best else 0.0
        goal = "yes" if share >= 0.95 and r.imbalance <= 1.25 and not r.failed else "no"
        latency = f"{r.p50_s:.3f} | {r.p99_s:.3f}" if r.p50_s else "- | -"
        lines.append(
            f"| {r.policy} | {r.hit_rate:.1%} | {share:.1%} | {r.imbalance:.3f} | "
            f"{' / '.join(map(str, r.per_replica))} | {latency} | {r.failed} | "
            f"{r.wall_s:.1f} | {goal}{' (' + r.note + ')' if r.note else ''} |"
        )
    return "\n".join(lines)


def _terminate(signum: int, frame: FrameType | None) -> None:
    raise SystemExit(128 + signum)  # unwinds through every ``finally``: processes stopped


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--requests", type=int, default=600)
    parser.add_argument("--replicas", type=int, default=4)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--kv-tokens", type=int, default=40_000, help="KV pool per replica")
    parser.add_argument("--prefill-ms-per-token", type=float, default=0.06)
    parser.add_argument("--decode-ms-per-token", type=float, default=1.0)
    parser.add_argument("--system-prompts", type=int, default=TrafficShape().agentic_system_prompts)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--target-timeout", type=float, default=90.0)
    parser.add_argument("--router-replicas", type=int, default=3)
    parser.add_argument("--only", default="", help="comma-separated name fragments")
    parser.add_argument("--json", default="/tmp/tierwise-prefix-cache-http.json")
    args = parser.parse_args(argv)
    signal.signal(signal.SIGTERM, _terminate)
    shape = TrafficShape(agentic_system_prompts=args.system_prompts)
    requests = generate(Workload.AGENTIC, args.requests, args.seed, shape=shape)
    root = Path(tempfile.mkdtemp(prefix="tierwise-prefix-http-"))
    rows: list[Row] = []
    best = oracle(args)
    try:
        model_dir = launch._model_dir(root)
        for name in ROUTERS:
            if args.only and not any(o in name for o in args.only.split(",")):
                continue
            rows.append(run_router(name, requests, args, root, model_dir))
            print(table(rows[-1:], best.hit_rate), file=sys.stderr, flush=True)
        rows.append(best)
    finally:
        shutil.rmtree(root, ignore_errors=True)
    Path(args.json).write_text(json.dumps([asdict(r) for r in rows], indent=1))
    print(header(args, requests))
    print(table(rows, best.hit_rate))
    return 0


def header(args: argparse.Namespace, requests: list[Request]) -> str:
    sessions = len({r.session_id for r in requests})
    return (
        f"python {platform.python_version()} on {platform.machine()}, {os.cpu_count()} cores; "
        f"{len(requests)} agentic requests in {sessions} sessions (seed {args.seed}, "
        f"{args.system_prompts} system prompts), {args.replicas} vLLM simulators with "
        f"{args.kv_tokens} KV tokens each, concurrency {args.concurrency}, non-streaming\n"
    )


if __name__ == "__main__":
    sys.exit(main())
