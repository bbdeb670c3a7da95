"""How fast the operator converges when 500 ModelDeployments arrive at once.

Why it exists: an operator that reconciles one object at a time, or rewrites objects it
already applied, falls over at fleet scale long before the API server does. This creates
N ModelDeployments (default 500) at once against the emulated cluster (kmock API server
plus the fake-pod Deployment controller, in this process), runs the real operator as a
subprocess (``tierwise operator``), and measures:

* time to converge: from the first create until every ModelDeployment is ``Ready`` at
  ``observedGeneration`` 1 with its Deployment, Service and PodDisruptionBudget present;
* reconciles per second: ``tierwise_operator_reconciles_total`` over that time;
* the operator's peak memory: ``VmHWM`` (peak resident set) from ``/proc/PID/status``;
* API writes by the operator, and writes in a 3 s quiet period after convergence (the
  no-op check at scale: it must be 0);
* CPU seconds of the operator process and of this process (the emulated API server and
  the Deployment controller, plus this script's 2 s polling) over that time.

``--faults RATE`` answers that fraction of the operator's writes (POST/PUT/PATCH/DELETE)
with 409, 500 or 503 (one third each), to check that every failed reconcile is retried.
Whenever some ModelDeployments do not converge, each one is printed to stderr with its
status, conditions, which children exist and its Deployment's status.

Usage::

    .venv/bin/python bench/operator_scale.py [--count 500] [--timeout 180] [--faults 0.05] \
        [--json OUT]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import re
import resource
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

import aiohttp

from tierwise.local.cluster import EmulatedCluster
from tierwise.local.processes import free_port
from tierwise.local.workloads import FakeBackend

ROOT = Path(__file__).resolve().parents[1]
NS = "default"
MD_PATH = f"/apis/tierwise.dev/v1alpha1/namespaces/{NS}/modeldeployments"



def stop_operator(operator: subprocess.Popen[bytes]) -> None:
    """SIGTERM, then SIGKILL after 15 s: kopf finishes its handlers on SIGTERM."""
    operator.terminate()
    try:
        operator.wait(15)
    except subprocess.TimeoutExpired:
        operator.kill()
        operator.wait()

def model_deployment(index: int) -> dict[str, Any]:
    return {
        "apiVersion": "tierwise.dev/v1alpha1",
        "kind": "ModelDeployment",
        "metadata": {"name": f"model-{index:04d}"},
        "spec": {
            "model": {"uri": f"hf://org/model-{index % 17}"},
            "engine": {"name": "vllm" if index % 2 else "sglang"},
            "replicas": {"min": 1, "max": 2},
        },
    }


async def create_all(url: str, count: int) -> None:
    async with aiohttp.ClientSession() as session:

        async def create(i: int) -> None:
            async with session.post(url + MD_PATH, json=model_deployment(i)) as response:
                if response.status >= 300:
                    raise RuntimeError(f"create {i}: {response.status} {await response.text()}")

        await asyncio.gather(*(create(i) for i in range(count)))


async def snapshot(url: str) -> dict[str, list[dict[str, Any]]]:
    """The ModelDeployments and their children, by kind."""
    async with aiohttp.ClientSession() as session:

        async def items(path: str) -> list[dict[str, Any]]:
            async with session.get(url + path) as response:
                body: dict[str, Any] = await response.json()
                return list(body.get("items") or [])

        return {
            "ModelDeployment": await items(MD_PATH),
            "Deployment": await items(f"/apis/apps/v1/namespaces/{NS}/deployments"),
            "Service": await items(f"/api/v1/namespaces/{NS}/services"),
            "PodDisruptionBudget": await items(
                f"/apis/policy/v1/namespaces/{NS}/poddisruptionbudgets"),
        }


def _is_ready(md: dict[str, Any]) -> bool:
    status = md.get("status") or {}
    return bool(status.get("phase") == "Ready"
                and status.get("observedGeneration") == md["metadata"].get("generation"))


def converged(url: str) -> tuple[int, set[str], dict[str, list[dict[str, Any]]]]:
    """(how many are Ready at their generation, which are also complete, the snapshot)."""
    objects = asyncio.run(snapshot(url))
    ready = {m["metadata"]["name"] for m in objects["ModelDeployment"] if _is_ready(m)}
    have = [{o["metadata"]["name"] for o in objects[kind]}
            for kind in ("Deployment", "Service", "PodDisruptionBudget")]
    return len(ready), ready.intersection(*have), objects


def describe_stuck(objects: dict[str, list[dict[str, Any]]], complete: set[str]) -> list[str]:
    """One line per ModelDeployment that has not converged: what it and its children say."""
    by_kind = {kind: {o["metadata"]["name"]: o for o in objs} for kind, objs in objects.items()}
    lines = []
    for md in objects["ModelDeployment"]:
        name = md["metadata"]["name"]
        if name in complete:
            continue
        status = md.get("status") or {}
        conditions = [(c.get("type"), c.get("status"), c.get("reason"), c.get("message"))
                      for c in status.get("conditions") or []]
        children = [k for k in ("Deployment", "Service", "PodDisruptionBudget")
                    if name in by_kind[k]]
        deployment = (by_kind["Deployment"].get(name) or {}).get("status")
        annotations = {k: v for k, v in (md["metadata"].get("annotations") or {}).items()
                       if k.startswith("tierwise.dev/") and "last-handled" not in k}
        lines.append(
            f"{name}: generation={md['metadata'].get('generation')} phase={status.get('phase')}"
            f" observedGeneration={status.get('observedGeneration')} conditions={conditions}"
            f" children={children} deployment.status={deployment}"
            f" finalizers={md['metadata'].get('finalizers')} kopf={annotations}")
    return lines


def peak_rss_mib(pid: int) -> float:
    text = Path(f"/proc/{pid}/status").read_text()
    match = re.search(r"VmHWM:\s+(\d+) kB", text)
    return int(match.group(1)) / 1024 if match else float("nan")


def scrape(port: int) -> dict[str, float]:
    text = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5).read().decode()
    totals: dict[str, float] = {}
    for line in text.splitlines():
        for name in ("tierwise_operator_reconciles_total", "tierwise_operator_api_writes_total"):
            if line.startswith(name + "{"):
                totals[name] = totals.get(name, 0.0) + float(line.rsplit(" ", 1)[1])
    return totals


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process, from ``/proc/PID/stat``."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def own_cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def injector(rate: float, seed: int = 7) -> Any:
    """A fault function for the emulator: a fraction of writes fail with 409/500/503."""
    rng = random.Random(seed)
    counts: dict[int, int] = {}

    def fault(request: Any) -> int | None:
        if str(request.method.value).upper() not in ("POST", "PUT", "PATCH", "DELETE"):
            return None
        if rng.random() >= rate:
            return None
        status = rng.choice((409, 500, 503))
        counts[status] = counts.get(status, 0) + 1
        return status

    fault.counts = counts  # type: ignore[attr-defined]
    return fault


def start_operator(kubeconfig: Path, port: int, log: Any) -> subprocess.Popen[bytes]:
    command = [sys.executable, "-m", "tierwise.cli", "operator", "--kubeconfig", str(kubeconfig),
               "--metrics-port", str(port)]
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    return subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, env=env, cwd=ROOT)


def wait_metrics(port: int, process: subprocess.Popen[bytes], timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError("the operator exited at start; see its log")
        try:
            scrape(port)
            return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError("the operator's metrics endpoint never answered")


def run(count: int, timeout: float, *, faults: float = 0.0, stuck: bool = False,
        keep_log: Path | None = None) -> dict[str, Any]:
    with EmulatedCluster(workloads=FakeBackend()) as cluster, tempfile.TemporaryFile() as log:
        cluster.install_crd_files(sorted((ROOT / "crds").glob("*.yaml")))
        port = free_port()
        operator = start_operator(cluster.kubeconfig_path, port, log)
        fault = injector(faults)
        try:
            wait_metrics(port, operator)
            time.sleep(1.0)  # let kopf's watches start
            cpu_before = (cpu_seconds(operator.pid), own_cpu_seconds())
            started = time.monotonic()
            asyncio.run(create_all(cluster.url, count))
            created_s = time.monotonic() - started
            if faults:
                cluster.server.fault = fault
            ready, complete = 0, set()
            while time.monotonic() - started < timeout:
                ready, complete, objects = converged(cluster.url)
                if len(complete) == count:
                    break
                time.sleep(2.0)
            elapsed = time.monotonic() - started
            cpu = (cpu_seconds(operator.pid) - cpu_before[0], own_cpu_seconds() - cpu_before[1])
            cluster.server.fault = None
            if len(complete) != count or stuck:
                for line in describe_stuck(objects, complete):
                    sys.stderr.write(line + "\n")
            at_converge = scrape(port)
            time.sleep(3.0)
            after = scrape(port)
            peak = peak_rss_mib(operator.pid)
        finally:
            stop_operator(operator)
        if keep_log is not None:
            log.seek(0)
            keep_log.write_bytes(log.read())
        if len(complete) != count:
            log.seek(0)
            sys.stderr.write(log.read()[-4000:].decode(errors="replace"))
    reconciles = at_converge.get("tierwise_operator_reconciles_total", 0.0)
    writes = at_converge.get("tierwise_operator_api_writes_total", 0.0)
    return {
        "count": count,
        "converged": len(complete) == count,
        "ready": ready,
        "complete": len(complete),
        "faults_injected": dict(fault.counts),
        "create_seconds": round(created_s, 2),
        "converge_seconds": round(elapsed, 2),
        "reconciles": int(reconciles),
        "reconciles_per_second": round(reconciles / elapsed, 1),
        "api_writes": int(writes),
        "writes_after_converged": int(after.get("tierwise_operator_api_writes_total", 0) - writes),
        "peak_rss_mib": round(peak, 1),
        "operator_cpu_s": round(cpu[0], 1),
        "emulator_cpu_s": round(cpu[1], 1),
        "operator_cpu_share": round(cpu[0] / elapsed, 2),
        "emulator_cpu_share": round(cpu[1] / elapsed, 2),
        "cpus": os.cpu_count(),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--count", type=int, default=500)
    parser.add_argument("--timeout", type=float, default=180.0)
    parser.add_argument("--faults", type=float, default=0.0,
                        help="fraction of the operator's writes answered 409/500/503")
    parser.add_argument("--stuck", action="store_true",
                        help="print the unconverged ModelDeployments even on success")
    parser.add_argument("--json", type=Path, help="also write the result here")
    parser.add_argument("--log", type=Path, help="keep the operator's log here")
    args = parser.parse_args()
    result = run(args.count, args.timeout, faults=args.faults, stuck=args.stuck,
                 keep_log=args.log)
    text = json.dumps(result, indent=2)
    print(text)
    if args.json:
        args.json.write_text(text + "\n")
    return 0 if result["converged"] else 1


if __name__ == "__main__":
    sys.exit(main())
