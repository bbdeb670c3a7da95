"""``tierwise demo``: the whole system on an embedded, emulated cluster, in about a minute.

Why it exists: the first thing anyone runs. It must show, on a laptop with no GPU and no
Kubernetes, what Tierwise does — ModelDeployments become engine replicas, a RoutingPolicy
sends each request to the cheapest tier able to serve it, prefix-aware balancing keeps
agent sessions on the replica holding their cache, and the bill is compared with sending
everything to the frontier model — using the real components, not a mock-up:

1. the emulated Kubernetes API (:class:`~tierwise.local.cluster.EmulatedCluster`) with
   the generated CRDs, whose Deployment controller runs engine pods as simulator
   processes (:class:`~tierwise.local.sim_workloads.SimWorkloadBackend`);
2. the real operator, ``tierwise operator``, in a child process against it;
3. the manifests of ``examples/00-demo`` applied as a user would
   (:mod:`tierwise.local.demo_manifests`);
4. the router, ``tierwise router``, in a child process; its endpoint map is derived from
   the ready pods (:mod:`tierwise.local.endpoints`) because the RoutingPolicy reconciler
   that will write the routing table in-cluster is not built yet; the external frontier
   tier is one more simulator, labelled as a stand-in, with a random API key written as
   a mounted Secret file (never printed);
5. a mixed workload (:mod:`tierwise.local.demo_traffic`) through the router, and the
   report (:mod:`tierwise.local.demo_report`) from response headers and router metrics.

The operator and router run as processes (as in a cluster) rather than imported: that is
also what the layering allows (``local`` never imports ``controller`` or ``router``).
Everything started is stopped on the way out — success, error or Ctrl-C — in reverse
order, by an :class:`~contextlib.ExitStack`.
"""

from __future__ import annotations

import asyncio
import contextlib
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import kubernetes.client
import yaml

from tierwise.api.crds import build_crds
from tierwise.local.cluster import EmulatedCluster
from tierwise.local.demo_manifests import (
    DemoError,
    Manifests,
    apply_manifests,
    effective_policy,
    load_manifests,
    read_rows,
    write_secrets,
)
from tierwise.local.demo_report import (
    DemoSummary,
    DeploymentRow,
    format_deployments,
    parse_router_metrics,
    summarize,
)
from tierwise.local.demo_traffic import demo_mix, send_all
from tierwise.local.endpoints import endpoints_yaml, read_endpoints
from tierwise.local.processes import free_port
from tierwise.local.sim_workloads import SimWorkloadBackend
from tierwise.sim.config import SimConfig
from tierwise.sim.latency import PROFILES, Profile
from tierwise.sim.process import EngineProcess, start_engine

Emit = Callable[[str], None]
REPO_EXAMPLE = Path(__file__).resolve().parents[3] / "examples" / "00-demo"


@dataclass(frozen=True)
class DemoOptions:
    requests: int = 200
    seed: int = 0
    keep_running: bool = False
    manifests: Path = REPO_EXAMPLE
    namespace: str = "demo"
    concurrency: int = 12
    ready_timeout_s: float = 90.0
    profiles: Mapping[str, str] = field(
        default_factory=lambda: {"small-llm": Profile.SMALL, "mid-llm": Profile.MID}
    )
    """Simulator latency profile per ModelDeployment name (others: ``mid``)."""
    frontier_profile: Profile = Profile.LARGE


class ChildProcess:
    """A ``tierwise`` subcommand in its own process group, logged to a file."""

    def __init__(self, name: str, args: Sequence[str], log: Path) -> None:
        self.name, self.log = name, log
        self.argv = [sys.executable, "-m", "tierwise.cli", *args]
        self.process: subprocess.Popen[bytes] | None = None

    def __enter__(self) -> ChildProcess:
        with self.log.open("wb") as out:
            self.process = subprocess.Popen(
                self.argv,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        return self

    def __exit__(self, *_: object) -> None:
        process, self.process = self.process, None
        if process is None or process.poll() is not None:
            return
        process.terminate()
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()

    def check(self) -> None:
        """Raise :class:`DemoError` with the log's tail when the process has exited."""
        if self.process is not None and self.process.poll() is not None:
            raise DemoError(f"{self.name} exited with {self.process.returncode}:\n{self.tail()}")

    def tail(self, chars: int = 1500) -> str:
        try:
            return self.log.read_text(errors="replace")[-chars:]
        except OSError:
            return ""


def _all_ready(rows: Sequence[DeploymentRow]) -> bool:
    return all(r.phase == "Ready" and r.desired > 0 and r.ready >= r.desired for r in rows)


def wait_ready(
    api: kubernetes.client.ApiClient,
    namespace: str,
    manifests: Manifests,
    *,
    operator: ChildProcess,
    timeout_s: float,
    emit: Emit,
) -> None:
    """Poll the ModelDeployments' status until all are Ready, printing each change."""
    deadline = time.monotonic() + timeout_s
    seen: dict[str, tuple[str, int, int]] = {}
    while True:
        operator.check()
        rows = read_rows(api, namespace, manifests)
        for r in rows:
            if r.phase != "-" and seen.get(r.name) != (r.phase, r.ready, r.desired):
                seen[r.name] = (r.phase, r.ready, r.desired)
                emit(f"      {r.name}: {r.phase}, {r.ready}/{r.desired} replicas ready")
        if _all_ready(rows):
            return
        if time.monotonic() > deadline:
            raise DemoError(
                f"ModelDeployments not Ready after {timeout_s:.0f}s: "
                f"{seen}\noperator log:\n{operator.tail()}"
            )
        time.sleep(0.2)


def _http_get(url: str, timeout: float = 5.0) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, ""
    except OSError:
        return 0, ""


def wait_router(router: ChildProcess, url: str, timeout_s: float = 30.0) -> None:
    deadline = time.monotonic() + timeout_s
    while _http_get(url + "/readyz", timeout=1.0)[0] != 200:
        router.check()
        if time.monotonic() > deadline:
            raise DemoError(
                f"the router at {url} is not ready after {timeout_s:.0f}s:\n{router.tail()}"
            )
        time.sleep(0.1)


@contextlib.contextmanager
def _frontier(
    manifests: Manifests, options: DemoOptions, log: Path
) -> Iterator[EngineProcess | None]:
    externals = manifests.externals()
    if not externals:
        yield None
        return
    config = SimConfig(
        model=externals[0]["model"],
        seed=options.seed + 7,
        latency=PROFILES[options.frontier_profile],
    )
    engine = start_engine(config, log_path=log, startup_timeout_s=30.0)
    try:
        yield engine
    finally:
        engine.stop()


@dataclass
class _Running:
    """What the stages share while the demo is up."""

    workdir: Path
    manifests: Manifests
    api: kubernetes.client.ApiClient
    cluster: EmulatedCluster
    router_url: str = ""
    frontier_url: str = ""
    endpoints: dict[str, list[str]] = field(default_factory=dict)


def _start_cluster(
    stack: contextlib.ExitStack,
    options: DemoOptions,
    emit: Emit,
    workdir: Path,
    manifests: Manifests,
) -> _Running:
    backend = SimWorkloadBackend(options.profiles, default_profile=Profile.MID)
    cluster = stack.enter_context(
        EmulatedCluster(workloads=backend, namespaces=("default", options.namespace))
    )
    cluster.install_crds(build_crds().values())
    api = stack.enter_context(cluster.api_client())
    emit(
        f"[1/6] embedded cluster (emulated Kubernetes API) on {cluster.url}; "
        "CRDs installed; engine pods run as simulator processes"
    )
    return _Running(workdir, manifests, api, cluster)


def _start_operator(
    stack: contextlib.ExitStack, run: _Running, options: DemoOptions, emit: Emit
) -> ChildProcess:
    operator = stack.enter_context(
        ChildProcess(
            "tierwise operator",
            ["operator", "--kubeconfig", str(run.cluster.kubeconfig_path), "-n", options.namespace],
            run.workdir / "operator.log",
        )
    )
    emit(
        f"[2/6] tierwise operator started (pid {operator.process.pid if operator.process else '?'}"
        f", watching namespace {options.namespace})"
    )
    return operator


def _start_router(
    stack: contextlib.ExitStack,
    run: _Running,
    options: DemoOptions,
    frontier: EngineProcess | None,
    emit: Emit,
) -> ChildProcess:
    run.endpoints = read_endpoints(run.api, options.namespace, run.manifests.names)
    files = {
        name: run.workdir / name
        for name in ("routingpolicy.yaml", "endpoints.yaml", "modeldeployments.yaml")
    }
    policy = effective_policy(run.manifests, frontier.url if frontier else None)
    files["routingpolicy.yaml"].write_text(yaml.safe_dump(policy, sort_keys=False))
    files["endpoints.yaml"].write_text(endpoints_yaml(run.endpoints))
    files["modeldeployments.yaml"].write_text(
        yaml.safe_dump_all(run.manifests.deployments, sort_keys=False)
    )
    port = free_port()
    router = stack.enter_context(
        ChildProcess(
            "tierwise router",
            [
                "router",
                "--policy",
                str(files["routingpolicy.yaml"]),
                "--endpoints",
                str(files["endpoints.yaml"]),
                "--deployments",
                str(files["modeldeployments.yaml"]),
                "--secrets-dir",
                str(run.workdir / "secrets"),
                "--port",
                str(port),
                "--namespace",
                options.namespace,
                "--shutdown-grace",
                "2",
                "--scrape-interval",
                "0.5",
            ],
            run.workdir / "router.log",
        )
    )
    run.router_url = f"http://127.0.0.1:{port}"
    wait_router(router, run.router_url)
    emit(
        f"[4/6] tierwise router on {run.router_url}; endpoints derived from ready pods "
        "(stand-in for the RoutingPolicy reconciler, not built yet)"
    )
    if frontier is not None:
        run.frontier_url = frontier.url
        emit(
            f"      frontier tier: external API stand-in (simulator, '{options.frontier_profile}'"
            f" profile) at {frontier.url}/v1; API key written as a Secret file, not shown"
        )
    return router


def _drive(run: _Running, options: DemoOptions, emit: Emit) -> DemoSummary:
    mix = demo_mix(options.requests, options.seed)
    emit(
        f"[5/6] sending {len(mix)} requests (chat, code, reasoning, agentic sessions) "
        f"through the router, {options.concurrency} at a time"
    )
    began = time.monotonic()
    outcomes = asyncio.run(send_all(run.router_url, mix, concurrency=options.concurrency))
    wall = time.monotonic() - began
    status, text = _http_get(run.router_url + "/metrics")
    if status != 200:
        raise DemoError(f"could not read the router's /metrics (status {status})")
    rows = read_rows(run.api, options.namespace, run.manifests, run.endpoints)
    urls = {"router": run.router_url, "cluster": run.cluster.url}
    if run.frontier_url:
        urls["frontier"] = run.frontier_url
    return summarize(
        rows,
        outcomes,
        parse_router_metrics(text),
        tier_order=list(run.manifests.tiers),
        wall_s=wall,
        urls=urls,
    )


def run_demo(
    options: DemoOptions,
    emit: Emit,
    on_summary: Callable[[DemoSummary], None] | None = None,
    interrupted: threading.Event | None = None,
) -> DemoSummary:
    """Run the demo end to end; everything is stopped before this returns or raises.

    ``on_summary`` is called with the summary while everything is still up (the
    ``--keep-running`` wait happens after it). ``interrupted``, once set, ends that wait
    with KeyboardInterrupt: the signal handler's own KeyboardInterrupt is lost when it
    fires while the main thread runs a ``__del__`` (the garbage collector).
    """
    manifests = load_manifests(options.manifests)
    with contextlib.ExitStack() as stack:
        workdir = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="tierwise-demo-")))
        frontier = stack.enter_context(_frontier(manifests, options, workdir / "frontier.log"))
        run = _start_cluster(stack, options, emit, workdir, manifests)
        operator = _start_operator(stack, run, options, emit)
        write_secrets(run.api, options.namespace, manifests.externals(), workdir / "secrets")
        apply_manifests(run.api, options.namespace, manifests)
        emit(
            f"[3/6] applied {options.manifests.name}: {len(manifests.deployments)} "
            "ModelDeployments, 1 RoutingPolicy; waiting for replicas"
        )
        wait_ready(
            run.api,
            options.namespace,
            manifests,
            operator=operator,
            timeout_s=options.ready_timeout_s,
            emit=emit,
        )
        _start_router(stack, run, options, frontier, emit)
        for line in format_deployments(
            read_rows(run.api, options.namespace, manifests, run.endpoints)
        ):
            emit("      " + line)
        summary = _drive(run, options, emit)
        emit("[6/6] done; report below (all latencies and costs are simulated)")
        if on_summary is not None:
            on_summary(summary)
        if options.keep_running:
            _keep_running(run, options, operator, emit, interrupted or threading.Event())
        return summary
    raise AssertionError("unreachable")  # pragma: no cover - the with block returns


def _keep_running(
    run: _Running,
    options: DemoOptions,
    operator: ChildProcess,
    emit: Emit,
    interrupted: threading.Event,
) -> None:
    """Stay up until Ctrl-C, refreshing the router's endpoint file as pods change."""
    emit("")
    emit("Still running (Ctrl-C stops everything):")
    emit(f"  router      {run.router_url}   e.g.")
    emit(
        f"    curl -s {run.router_url}/v1/chat/completions -H 'content-type: application/json' "
        '-d \'{"model":"auto","messages":[{"role":"user","content":"prove it"}]}\' -i'
    )
    emit(f"    curl -s {run.router_url}/metrics | grep tierwise_router_cost")
    emit(f"  cluster     {run.cluster.url}   kubeconfig {run.cluster.kubeconfig_path}")
    emit(
        f"    kubectl --kubeconfig {run.cluster.kubeconfig_path} -n {options.namespace} "
        "get md,deploy,pods"
    )
    emit(f"  logs        {run.workdir}/operator.log, router.log")
    path = run.workdir / "endpoints.yaml"
    while True:
        operator.check()
        current = read_endpoints(run.api, options.namespace, run.manifests.names)
        if current != run.endpoints:
            run.endpoints = current
            path.write_text(endpoints_yaml(current))  # the router polls the file
        if interrupted.wait(2.0):
            raise KeyboardInterrupt
