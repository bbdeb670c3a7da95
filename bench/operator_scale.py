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
  no-op check at scale: it must be 0).

Usage::

    .venv/bin/python bench/operator_scale.py [--count 500] [--timeout 180] [--json OUT]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
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


async def converged(url: str, count: int) -> tuple[int, int]:
    """(ModelDeployments Ready at generation 1, with all three children present)."""
    async with aiohttp.ClientSession() as session:

        async def items(path: str) -> list[dict[str, Any]]:
            async with session.get(url + path) as response:
                body: dict[str, Any] = await response.json()
                return list(body.get("items") or [])

        mds = await items(MD_PATH)
        deployments = await items(f"/apis/apps/v1/namespaces/{NS}/deployments")
        services = await items(f"/api/v1/namespaces/{NS}/services")
        pdbs = await items(f"/apis/policy/v1/namespaces/{NS}/poddisruptionbudgets")
    ready = {
        m["metadata"]["name"]
        for m in mds
        if (m.get("status") or {}).get("phase") == "Ready"
        and m["status"].get("observedGeneration") == m["metadata"].get("generation")
    }
    have = [{o["metadata"]["name"] for o in objs} for objs in (deployments, services, pdbs)]
    complete = ready.intersection(*have)
    return len(ready), len(complete)


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


def run(count: int, timeout: float) -> dict[str, Any]:
    with EmulatedCluster(workloads=FakeBackend()) as cluster, tempfile.TemporaryFile() as log:
        cluster.install_crd_files(sorted((ROOT / "crds").glob("*.yaml")))
        port = free_port()
        operator = start_operator(cluster.kubeconfig_path, port, log)
        try:
            wait_metrics(port, operator)
            time.sleep(1.0)  # let kopf's watches start
            started = time.monotonic()
            asyncio.run(create_all(cluster.url, count))
            created_s = time.monotonic() - started
            ready = complete = 0
            while time.monotonic() - started < timeout:
                ready, complete = asyncio.run(converged(cluster.url, count))
                if complete == count:
                    break
                time.sleep(2.0)
            elapsed = time.monotonic() - started
            at_converge = scrape(port)
            time.sleep(3.0)
            after = scrape(port)
            peak = peak_rss_mib(operator.pid)
        finally:
            operator.terminate()
            try:
                operator.wait(15)
            except subprocess.TimeoutExpired:
                operator.kill()
                operator.wait()
        if complete != count:
            log.seek(0)
            sys.stderr.write(log.read()[-4000:].decode(errors="replace"))
    reconciles = at_converge.get("tierwise_operator_reconciles_total", 0.0)
    writes = at_converge.get("tierwise_operator_api_writes_total", 0.0)
    return {
        "count": count,
        "converged": complete == count,
        "ready": ready,
        "complete": complete,
        "create_seconds": round(created_s, 2),
        "converge_seconds": round(elapsed, 2),
        "reconciles": int(reconciles),
        "reconciles_per_second": round(reconciles / elapsed, 1),
        "api_writes": int(writes),
        "writes_after_converged": int(after.get("tierwise_operator_api_writes_total", 0) - writes),
        "peak_rss_mib": round(peak, 1),
        "cpus": os.cpu_count(),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--count", type=int, default=500)
    parser.add_argument("--timeout", type=float, default=180.0)
    parser.add_argument("--json", type=Path, help="also write the result here")
    args = parser.parse_args()
    result = run(args.count, args.timeout)
    text = json.dumps(result, indent=2)
    print(text)
    if args.json:
        args.json.write_text(text + "\n")
    return 0 if result["converged"] else 1


if __name__ == "__main__":
    sys.exit(main())
