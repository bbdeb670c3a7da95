"""The operator on a busy cluster: what it asks the API server, and what it costs.

Why it exists: an operator that watches every Pod and Deployment of a cluster, and LISTs
on each reconcile and on a timer, loads the API server in proportion to the *cluster*, not
to what it owns. This puts N ModelDeployments (default 500) and P RoutingPolicies (50, each
naming 10 models) on the emulated cluster next to U unrelated Pods and Deployments (5,000
in namespace ``busy``) that change at R events/s (50: an annotation patched, Pods and
Deployments in turn), runs the real operator as a subprocess (``tierwise operator``) once
everything is Ready, and measures with the churn on:

* idle: the operator's API requests per minute by verb and resource over ``--idle`` s;
* one spec change: the operator's requests from the patch until 1 s after ``Ready`` at
  the new generation (a new model URI: the Deployment rolls), and the time to that
  ``Ready`` (p50/p95 over ``--changes`` changes, one after the other);
* the operator process's CPU (share of one core) over the idle window, its resident
  memory at the end and its peak, and its reconciles per minute in the idle window
  (``tierwise_operator_reconciles_total``, writing or not).

Requests are counted at the emulated API server by client (the operator's aiohttp client
and kopf's; this script's own client identifies itself). ``--before DIR`` runs the same
scenario first with the operator from another source tree (e.g. ``git archive main``
unpacked into DIR), in the same process and on the same machine.

Usage::

    .venv/bin/python bench/operator_busy_cluster.py [--models 500] [--policies 50] \\
        [--unrelated 5000] [--churn 50] [--idle 60] [--changes 20] [--before DIR] [--json OUT]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any

import aiohttp
import kmock

from tierwise.local.cluster import EmulatedCluster
from tierwise.local.processes import free_port
from tierwise.local.workloads import FakeBackend

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "bench"))
from operator_scale import (  # noqa: E402
    cpu_seconds,
    peak_rss_mib,
    scrape,
    stop_operator,
    wait_metrics,
)

NS, BUSY = "default", "busy"
GROUP_PATH = f"/apis/tierwise.dev/v1alpha1/namespaces/{NS}"
BENCH_AGENT = "tierwise-bench"
PODS = kmock.resource("", "v1", "pods")
DEPLOYMENTS = kmock.resource("apps", "v1", "deployments")
MDS = kmock.resource("tierwise.dev", "v1alpha1", "modeldeployments")
RPS = kmock.resource("tierwise.dev", "v1alpha1", "routingpolicies")


def model_deployment(index: int, uri: str | None = None) -> dict[str, Any]:
    return {
        "apiVersion": "tierwise.dev/v1alpha1",
        "kind": "ModelDeployment",
        "metadata": {"name": f"model-{index:04d}"},
        "spec": {
            "model": {"uri": uri or f"hf://org/model-{index % 17}"},
            "engine": {"name": "vllm"},
            "replicas": {"min": 1, "max": 1},
            "autoscaling": {"enabled": False},
        },
    }


def routing_policy(index: int, models: int) -> dict[str, Any]:
    named = [f"model-{(index * 10 + k) % models:04d}" for k in range(10)]
    return {
        "apiVersion": "tierwise.dev/v1alpha1",
        "kind": "RoutingPolicy",
        "metadata": {"name": f"policy-{index:03d}"},
        "spec": {
            "tiers": [
                {"name": "small", "backends": [{"modelDeployment": n} for n in named[:5]]},
                {"name": "large", "backends": [{"modelDeployment": n} for n in named[5:]]},
            ],
            "defaultTier": "small",
            "router": {"replicas": 1},
        },
    }


# -- what the operator asks -----------------------------------------------------------------
class Requests:
    """The emulated API server's hook: counts every request not made by this script."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.log: list[tuple[float, str, str]] = []

    def __call__(self, request: Any) -> int | None:
        agent = next((str(v) for k, v in request.headers.items() if k.lower() == "user-agent"), "")
        if agent.startswith(BENCH_AGENT):
            return None
        method = str(request.method.value).upper()
        params = request.params
        if method == "GET":
            if params.get("watch") in ("true", "1"):
                method = "WATCH"
            elif request.name is None:
                method = "LIST"
        plural = request.resource.plural if request.resource is not None else "?"
        sub = f"/{request.subresource}" if request.subresource else ""
        with self._lock:
            self.log.append((time.monotonic(), method, f"{plural}{sub}"))
        return None

    def between(self, start: float, end: float) -> list[tuple[str, str]]:
        with self._lock:
            return [(m, r) for t, m, r in self.log if start <= t <= end]


def by_verb(calls: list[tuple[str, str]], minutes: float = 1.0) -> dict[str, float]:
    counts = Counter(m for m, _ in calls)
    return {verb: round(n / minutes, 1) for verb, n in sorted(counts.items())}


def by_request(calls: list[tuple[str, str]], minutes: float = 1.0) -> dict[str, float]:
    counts = Counter(f"{m} {r}" for m, r in calls)
    return {key: round(n / minutes, 1) for key, n in sorted(counts.items())}


# -- the cluster ------------------------------------------------------------------------------
def _unrelated(cluster: EmulatedCluster, count: int) -> None:
    async def create() -> None:
        store = cluster.server.store
        for i in range(count // 2):
            labels = {"app": f"busy-{i}"}
            store.create(DEPLOYMENTS, BUSY, {
                "apiVersion": "apps/v1", "kind": "Deployment",
                "metadata": {"name": f"busy-{i}", "labels": labels},
                "spec": {"replicas": 0, "selector": {"matchLabels": labels},
                         "template": {"metadata": {"labels": labels},
                                      "spec": {"containers": [{"name": "c", "image": "x"}]}}},
            })  # fmt: skip
        for i in range(count - count // 2):
            store.create(PODS, BUSY, {
                "apiVersion": "v1", "kind": "Pod",
                "metadata": {"name": f"busy-{i}", "labels": {"app": "busy"}},
                "spec": {"containers": [{"name": "c", "image": "x"}]},
            })  # fmt: skip

    cluster.call(create(), timeout=300)


async def _churn(cluster: EmulatedCluster, count: int, rate: float, stop: asyncio.Event) -> int:
    """Patch an annotation of an unrelated Pod or Deployment ``rate`` times a second."""
    store, events, started = cluster.server.store, 0, time.monotonic()
    half = max(count // 2, 1)
    while not stop.is_set():
        kind = DEPLOYMENTS if events % 2 else PODS
        name = f"busy-{(events // 2) % half}"
        patch = {"metadata": {"annotations": {"bench/churn": str(events)}}}
        store.patch(kind, BUSY, name, content_type="application/merge-patch+json", patch=patch)
        events += 1
        delay = started + events / rate - time.monotonic()
        if delay > 0:
            await asyncio.sleep(delay)
        elif events % 50 == 0:
            await asyncio.sleep(0)
    return events


def _ready(body: Any, generation: int | None = None) -> bool:
    """Condition Ready True at the generation (a RoutingPolicy has no phase)."""
    if body is None:
        return False
    status = body.get("status") or {}
    want = generation if generation is not None else body["metadata"].get("generation")
    ready = any(
        c.get("type") == "Ready" and c.get("status") == "True"
        for c in status.get("conditions") or []
    )
    return bool(ready and status.get("observedGeneration") == want)


def _read(cluster: EmulatedCluster, resource: kmock.resource, name: str) -> dict[str, Any] | None:
    async def get() -> dict[str, Any] | None:
        try:
            return dict(cluster.server.store.get(resource, NS, name, shared=True))
        except Exception:
            return None

    return cluster.call(get())


def _all_ready(cluster: EmulatedCluster) -> tuple[int, int]:
    async def count() -> tuple[int, int]:
        store = cluster.server.store
        models = sum(1 for _, o in store.iter_objects(MDS, NS) if _ready(o))
        policies = sum(1 for _, o in store.iter_objects(RPS, NS) if _ready(o))
        return models, policies

    return cluster.call(count())


async def _create(url: str, paths_bodies: list[tuple[str, dict[str, Any]]]) -> None:
    headers = {"User-Agent": BENCH_AGENT}
    async with aiohttp.ClientSession(headers=headers) as session:
        limit = asyncio.Semaphore(32)

        async def one(path: str, body: dict[str, Any]) -> None:
            async with limit, session.post(url + path, json=body) as response:
                if response.status >= 300:
                    raise RuntimeError(f"create: {response.status} {await response.text()}")

        await asyncio.gather(*(one(p, b) for p, b in paths_bodies))


async def _patch(url: str, name: str, patch: dict[str, Any]) -> None:
    headers = {"User-Agent": BENCH_AGENT, "Content-Type": "application/merge-patch+json"}
    async with aiohttp.ClientSession(headers=headers) as session:
        path = f"{url}{GROUP_PATH}/modeldeployments/{name}"
        async with session.patch(path, data=json.dumps(patch)) as response:
            if response.status >= 300:
                raise RuntimeError(f"patch: {response.status} {await response.text()}")


def _start_operator(source: Path, kubeconfig: Path, port: int, log: Any) -> subprocess.Popen[bytes]:
    command = [sys.executable, "-m", "tierwise.cli", "operator", "--kubeconfig", str(kubeconfig),
               "--metrics-port", str(port)]  # fmt: skip
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "PYTHONPATH": str(source / "operator")}
    return subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, env=env, cwd=source)


def _say(text: str) -> None:
    sys.stderr.write(f"[{time.strftime('%H:%M:%S')}] {text}\n")
    sys.stderr.flush()


def _rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def run(source: Path, args: argparse.Namespace) -> dict[str, Any]:
    requests = Requests()
    cluster_ctx = EmulatedCluster(workloads=FakeBackend(), namespaces=(NS, BUSY))
    with cluster_ctx as cluster, tempfile.TemporaryFile() as log:
        cluster.install_crd_files(sorted((ROOT / "crds").glob("*.yaml")))
        _unrelated(cluster, args.unrelated)
        objects = [(f"{GROUP_PATH}/modeldeployments", model_deployment(i))
                   for i in range(args.models)]  # fmt: skip
        objects += [(f"{GROUP_PATH}/routingpolicies", routing_policy(i, args.models))
                    for i in range(args.policies)]  # fmt: skip
        asyncio.run(_create(cluster.url, objects))
        _say(f"{source.name}: cluster populated; starting the operator")
        cluster.server.fault = requests
        port = free_port()
        operator = _start_operator(source, cluster.kubeconfig_path, port, log)
        stop = asyncio.Event()
        churn = asyncio.run_coroutine_threadsafe(
            _churn(cluster, args.unrelated, args.churn, stop), cluster.loop
        )
        try:
            wait_metrics(port, operator, timeout=60)
            started = time.monotonic()
            while _all_ready(cluster) != (args.models, args.policies):
                if time.monotonic() - started > args.timeout:
                    raise RuntimeError(f"not converged: {_all_ready(cluster)} Ready")
                _say(f"{source.name}: Ready (models, policies) {_all_ready(cluster)}")
                time.sleep(1.0)
            converge_s = time.monotonic() - started
            _say(f"{source.name}: all Ready after {converge_s:.1f}s; idle window next")
            time.sleep(args.settle)

            reconciles_start = scrape(port).get("tierwise_operator_reconciles_total", 0.0)
            idle_start, cpu_start = time.monotonic(), cpu_seconds(operator.pid)
            time.sleep(args.idle)
            idle_end, cpu_end = time.monotonic(), cpu_seconds(operator.pid)
            reconciles = scrape(port).get("tierwise_operator_reconciles_total", 0.0)
            minutes = (idle_end - idle_start) / 60
            idle_calls = requests.between(idle_start, idle_end)
            rss = _rss_mib(operator.pid)
            _say(f"{source.name}: idle window done; timing spec changes")

            per_change: list[int] = []
            reads_per_change: list[int] = []
            to_ready: list[float] = []
            change_calls: list[tuple[str, str]] = []
            for j in range(args.changes):
                name = f"model-{(j * 7) % args.models:04d}"
                before = _read(cluster, MDS, name) or {}
                generation = int(before["metadata"]["generation"]) + 1
                t0 = time.monotonic()
                change = {"spec": {"model": {"uri": f"hf://org/changed-{j}"}}}
                asyncio.run(_patch(cluster.url, name, change))
                while not _ready(_read(cluster, MDS, name), generation):
                    if time.monotonic() - t0 > 30:
                        raise RuntimeError(f"{name} not Ready at generation {generation}")
                    time.sleep(0.01)
                to_ready.append(time.monotonic() - t0)
                time.sleep(1.0)
                calls = [c for c in requests.between(t0, time.monotonic()) if c[0] != "WATCH"]
                per_change.append(len(calls))
                change_calls += calls
                reads_per_change.append(sum(1 for m, _ in calls if m in ("GET", "LIST")))
            peak = peak_rss_mib(operator.pid)
        finally:
            cluster.loop.call_soon_threadsafe(stop.set)
            churn_events = churn.result(30)
            stop_operator(operator)
            cluster.server.fault = None
        if args.log:
            log.seek(0)
            Path(f"{args.log}.{source.name}").write_bytes(log.read())
    ordered = sorted(to_ready)
    return {
        "source": str(source),
        "models": args.models,
        "policies": args.policies,
        "unrelated": args.unrelated,
        "churn_per_s": args.churn,
        "churn_events": churn_events,
        "converge_s": round(converge_s, 1),
        "idle_s": round(idle_end - idle_start, 1),
        "idle_requests_per_minute": by_verb(idle_calls, minutes),
        "idle_requests_per_minute_by_resource": by_request(idle_calls, minutes),
        "idle_reconciles_per_minute": round((reconciles - reconciles_start) / minutes, 1),
        "spec_change_requests": per_change,
        "spec_change_reads": reads_per_change,
        "spec_change_requests_median": statistics.median(per_change) if per_change else None,
        "spec_change_requests_by_resource": by_request(change_calls, max(len(per_change), 1)),
        "ready_s_p50": round(statistics.median(ordered), 3) if ordered else None,
        "ready_s_p95": round(ordered[max(0, int(len(ordered) * 0.95) - 1)], 3) if ordered else None,
        "operator_cpu_share_idle": round((cpu_end - cpu_start) / (idle_end - idle_start), 3),
        "operator_rss_mib": round(rss, 1),
        "operator_peak_rss_mib": round(peak, 1),
        "load_average": os.getloadavg(),
        "cpus": os.cpu_count(),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--models", type=int, default=500)
    parser.add_argument("--policies", type=int, default=50)
    parser.add_argument("--unrelated", type=int, default=5000)
    parser.add_argument("--churn", type=float, default=50.0, help="unrelated events per second")
    parser.add_argument("--idle", type=float, default=60.0, help="idle window, seconds")
    parser.add_argument("--changes", type=int, default=20, help="spec changes to time")
    parser.add_argument("--settle", type=float, default=10.0,
                        help="seconds after convergence before the idle window")
    parser.add_argument("--timeout", type=float, default=600.0)
    parser.add_argument("--before", type=Path, help="another source tree to run first")
    parser.add_argument("--json", type=Path, help="also write the results here")
    parser.add_argument("--log", type=Path, help="keep each operator's log at LOG.<tree>")
    args = parser.parse_args()
    results = []
    if args.before is not None:
        results.append({"run": "before", **run(args.before.resolve(), args)})
    results.append({"run": "after", **run(ROOT, args)})
    text = json.dumps(results, indent=2)
    print(text)
    if args.json:
        args.json.write_text(text + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
