"""Programming latency: from a replica's EndpointSlice entry to the first request routed to it.

Why it exists: the RoutingPolicy issue asks how fast a new replica gets traffic once it is
ready, with one and three router replicas and with many unrelated endpoints in the
namespace, and how many API writes an endpoint change costs (goal: p95 under 1 s, zero
writes; the anchor is kubelet's projection of a mounted ConfigMap, which lags up to a
minute, so a design that rewrote a file per endpoint change would be that slow).

Method. An embedded cluster (``tierwise.local.EmulatedCluster``, the emulated API server
over real HTTP) holds the policy document in a ConfigMap and the EndpointSlices, written
directly by this script (so the time measured is the routing path only: watch, table
build, install). ``--routers`` real ``tierwise router`` processes run in cluster mode
(``--config-map --config-file --discovery kubernetes``, KUBECONFIG at the cluster) in front
of two zero-latency simulator processes, with round-robin balancing. ``--noise`` unrelated
endpoints (other ModelDeployments' slices, same namespace, same labels) sit beside them.
Each trial writes a slice holding a new replica (a new pod name for simulator B), then each
router is polled by its own client with back-to-back requests; a router's latency is the
send time of its first request answered by the new replica (``x-tierwise-replica``) minus
the moment the slice write returned. Then the slice is deleted and the script waits until
no router routes to it. API writes are counted from the emulator's request log during the
trials, minus the script's own slice writes.

Usage::

    .venv/bin/python bench/programming_latency.py [--trials 25] [--routers 1] [--noise 0]
        [--json PATH]
"""

from __future__ import annotations

import argparse
import concurrent.futures
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tierwise.api.router_config import CONFIG_KEY, BackendInfo, dump_config
from tierwise.api.routing_policy import RoutingPolicy
from tierwise.local.cluster import EmulatedCluster
from tierwise.manifests.router_config import router_config
from tierwise.sim.config import SimConfig
from tierwise.sim.latency import LatencyParams
from tierwise.sim.process import EngineProcess, free_port, start_engine, stop_process_group

NS = "bench"
CONFIG_MAP = "bench-router"
SERVICE = "bench-md"
SLICES = f"/apis/discovery.k8s.io/v1/namespaces/{NS}/endpointslices"
CONFIGMAPS = f"/api/v1/namespaces/{NS}/configmaps"
WRITE_METHODS = {"POST", "PUT", "PATCH", "DELETE"}
POLICY = {
    "metadata": {"name": "bench", "namespace": NS},
    "spec": {
        "models": ["auto"],
        "tiers": [{"name": "only", "backends": [{"modelDeployment": SERVICE}]}],
        "balancing": {"policy": "round-robin"},
    },
}


def _call(base: str, method: str, path: str, body: dict[str, Any] | None = None) -> int:
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(
        base + path, data=data, method=method, headers={"content-type": "application/json"}
    )
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            status: int = response.status
            return status
    except urllib.error.HTTPError as error:
        return error.code


def _slice(name: str, service: str, host: str, port: int, pods: list[str]) -> dict[str, Any]:
    return {
        "apiVersion": "discovery.k8s.io/v1",
        "kind": "EndpointSlice",
        "metadata": {
            "name": name,
            "labels": {
                "kubernetes.io/service-name": service,
                "tierwise.dev/model-deployment": service,
                "endpointslice.kubernetes.io/managed-by": "bench",
            },
        },
        "addressType": "IPv4",
        "ports": [{"name": "http", "port": port, "protocol": "TCP"}],
        "endpoints": [
            {
                "addresses": [host],
                "conditions": {"ready": True, "serving": True, "terminating": False},
                "targetRef": {"kind": "Pod", "namespace": NS, "name": pod},
            }
            for pod in pods
        ],
    }


def _noise(base: str, count: int) -> None:
    """``count`` endpoints of other ModelDeployments (5 per slice, unreachable addresses)."""
    for index in range(0, count, 5):
        service = f"other-{index // 5}"
        pods = [f"{service}-{i}" for i in range(min(5, count - index))]
        body = _slice(service, service, f"10.77.{index // 250}.{index % 250 + 1}", 8000, pods)
        body["endpoints"] = [
            {**e, "addresses": [f"10.77.{(index + i) // 250}.{(index + i) % 250 + 1}"]}
            for i, e in enumerate(body["endpoints"])
        ]
        assert _call(base, "POST", SLICES, body) == 201


@dataclass
class Router:
    process: subprocess.Popen[bytes]
    url: str

    def ask(self) -> tuple[float, str]:
        """Send one request; return (send time, replica that answered)."""
        body = json.dumps(
            {"model": "auto", "messages": [{"role": "user", "content": "hi"}], "max_tokens": 1}
        ).encode()
        request = urllib.request.Request(
            self.url + "/v1/chat/completions",
            data=body,
            method="POST",
            headers={"content-type": "application/json"},
        )
        sent = time.monotonic()
        with urllib.request.urlopen(request, timeout=10) as response:
            response.read()
            return sent, str(response.headers.get("x-tierwise-replica", ""))


def _start_router(folder: Path, kubeconfig: Path, document: str, index: int) -> Router:
    config_file = folder / f"policy-{index}.json"
    config_file.write_text(document)
    port = free_port()
    argv = [
        sys.executable, "-m", "tierwise.cli", "router",
        "--config-map", CONFIG_MAP, "--config-file", str(config_file),
        "--discovery", "kubernetes", "--namespace", NS, "--port", str(port),
        "--scrape-interval", "5", "--log-level", "error",
    ]  # fmt: skip
    env = {**os.environ, "KUBECONFIG": str(kubeconfig)}
    log = (folder / f"router-{index}.log").open("wb")
    process = subprocess.Popen(
        argv, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
    )
    router = Router(process, f"http://127.0.0.1:{port}")
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            if router.ask()[1]:
                return router
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"router {index} did not serve; see {folder}/router-{index}.log")


def _first_hit(router: Router, replica: str, timeout_s: float = 10.0) -> float:
    """Monotonic send time of the first request this router sends to ``replica``."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        sent, answered = router.ask()
        if answered == replica:
            return sent
    raise RuntimeError(f"{router.url} never routed to {replica}")


def _gone(router: Router, prefix: str, timeout_s: float = 10.0) -> None:
    deadline = time.monotonic() + timeout_s
    streak = 0
    while time.monotonic() < deadline:
        streak = 0 if router.ask()[1].startswith(prefix) else streak + 1
        if streak >= 4:  # round robin over one replica: four misses in a row
            return
    raise RuntimeError(f"{router.url} still routes to {prefix}*")


def _writes(cluster: EmulatedCluster) -> int:
    return sum(1 for r in list(cluster.server) if str(r.method.value).upper() in WRITE_METHODS)


def run(trials: int, routers: int, noise: int) -> dict[str, Any]:
    fast = LatencyParams(prefill_base_ms=0.0, prefill_ms_per_token=0.0, decode_ms_per_token=0.0)
    engines: list[EngineProcess] = [
        start_engine(SimConfig(model=SERVICE, latency=fast, seed=i)) for i in range(2)
    ]
    started: list[Router] = []
    try:
        with (
            tempfile.TemporaryDirectory(prefix="tierwise-bench-") as tmp,
            EmulatedCluster(namespaces=(NS,), bookmark_interval=1.0) as cluster,
        ):
            base = cluster.url
            config = router_config(RoutingPolicy.model_validate(POLICY), {})
            config = config.model_copy(
                update={
                    "backends": {SERVICE: BackendInfo(service=SERVICE, served_model_name=SERVICE)},
                    "missing": [],
                }
            )
            document = dump_config(config)
            cm = {"metadata": {"name": CONFIG_MAP}, "data": {CONFIG_KEY: document}}
            assert _call(base, "POST", CONFIGMAPS, cm) == 201
            a, b = engines
            host_a, port_a = a.url.split("//")[1].split(":")
            host_b, port_b = b.url.split("//")[1].split(":")
            first = _slice("bench-a", SERVICE, host_a, int(port_a), ["a-0"])
            assert _call(base, "POST", SLICES, first) == 201
            _noise(base, noise)
            started = [
                _start_router(Path(tmp), cluster.kubeconfig_path, document, i)
                for i in range(routers)
            ]
            before = _writes(cluster)
            own = 0
            latencies: list[float] = []
            all_programmed: list[float] = []
            pool = concurrent.futures.ThreadPoolExecutor(max_workers=routers)
            for trial in range(trials):
                replica = f"b-{trial}"
                body = _slice("bench-b", SERVICE, host_b, int(port_b), [replica])
                futures = []
                assert _call(base, "POST", SLICES, body) == 201
                written = time.monotonic()
                own += 1
                futures = [pool.submit(_first_hit, r, replica) for r in started]
                hits = [max(0.0, f.result() - written) for f in futures]
                latencies += hits
                all_programmed.append(max(hits))
                assert _call(base, "DELETE", f"{SLICES}/bench-b") == 200
                own += 1
                for future in [pool.submit(_gone, r, "b-") for r in started]:
                    future.result()
            pool.shutdown()
            other_writes = _writes(cluster) - before - own
    finally:
        for router in started:
            stop_process_group(router.process)
        for engine in engines:
            engine.stop()
    return {
        "trials": trials,
        "routers": routers,
        "noise_endpoints": noise,
        "per_router_ms": _summary(latencies),
        "all_routers_ms": _summary(all_programmed),
        "api_writes_per_endpoint_change": other_writes / (2 * trials),
    }


def _summary(values: list[float]) -> dict[str, float]:
    ms = sorted(v * 1000 for v in values)
    p95 = ms[min(len(ms) - 1, round(0.95 * (len(ms) - 1)))]
    return {"p50": round(statistics.median(ms), 1), "p95": round(p95, 1),
            "max": round(ms[-1], 1), "n": len(ms)}  # fmt: skip


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--trials", type=int, default=25)
    parser.add_argument("--routers", type=int, action="append", help="repeatable (default 1 3)")
    parser.add_argument("--noise", type=int, action="append", help="repeatable (default 0 200)")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    rows = []
    for routers in args.routers or [1, 3]:
        for noise in args.noise or [0, 200]:
            row = run(args.trials, routers, noise)
            rows.append(row)
            print(
                f"routers={routers} noise={noise}: per router p50 {row['per_router_ms']['p50']} "
                f"ms p95 {row['per_router_ms']['p95']} ms; all routers p95 "
                f"{row['all_routers_ms']['p95']} ms; API writes per endpoint change "
                f"{row['api_writes_per_endpoint_change']}",
                flush=True,
            )
    result = {
        "machine": f"{platform.machine()}, {os.cpu_count()} cores, "
        f"Python {platform.python_version()}",
        "rows": rows,
    }
    if args.json:
        args.json.write_text(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
