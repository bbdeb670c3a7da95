"""``tierwise demo``: the whole control loop on an embedded cluster, in about a minute.

Why it exists: the first thing anyone runs. On a laptop with no GPU and no Kubernetes it
must show every lever of the product move, with the real components:

1. the embedded cluster (:class:`~tierwise.local.cluster.EmulatedCluster`, an emulated
   Kubernetes API) with the generated CRDs; its Deployment controller runs engine pods as
   simulator processes speaking the OpenAI API with vLLM's and SGLang's metric names, and
   Tierwise's own pods (the router) as real ``tierwise router`` processes;
2. the real operator, ``tierwise operator``, as a child process against it: it reconciles
   the ModelDeployments into engine Deployments and the RoutingPolicy into a router
   Deployment, Service and policy document, and autoscales each ModelDeployment from its
   engines' ``/metrics`` and the router's demand;
3. ``examples/00-demo`` applied as a user would (:mod:`tierwise.demo.manifests`); the
   frontier tier's external API is one more simulator, labelled as a stand-in;
4. a traffic script in four phases (:mod:`tierwise.demo.script`) sent through the
   router's Service: steady mixed traffic, a burst that scales a tier up, a quiet spell
   that scales it down and another tier to zero, and a request that wakes that tier;
5. a live view while it runs (:mod:`tierwise.demo.live`) and a summary at the end
   (:mod:`tierwise.demo.summary`), also as JSON and as an HTML report.

The demo imports neither the operator nor the router (an import-linter contract): it
starts them as processes and reads them through the Kubernetes API and ``/metrics``, as a
person would. Everything started is stopped on the way out — success, error or Ctrl-C —
in reverse order, by an :class:`~contextlib.ExitStack`.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import signal
import tempfile
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Coroutine, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from tierwise.api.crds import build_crds
from tierwise.demo.children import ChildProcess, frontier_stand_in
from tierwise.demo.live import View, make_view
from tierwise.demo.manifests import (
    DemoError,
    Manifests,
    apply_manifests,
    create_secrets,
    load_manifests,
    read_rows,
)
from tierwise.demo.metrics import RouterMetrics
from tierwise.demo.script import build_script
from tierwise.demo.session import Played, Session, SessionOptions
from tierwise.demo.stages import (
    Running,
    operator_args,
    policy_status,
    wait_router,
    wait_settled,
)
from tierwise.demo.summary import (
    DemoSummary,
    Observed,
    PolicyView,
    summarize,
)
from tierwise.demo.text import format_deployments
from tierwise.local.cluster import EmulatedCluster
from tierwise.local.sim_workloads import SimWorkloadBackend
from tierwise.manifests.labels import service_name
from tierwise.sim.latency import Profile

REPO_EXAMPLE = Path(__file__).resolve().parents[3] / "examples" / "00-demo"


@dataclass(frozen=True)
class SimEngine:
    """How the simulator plays one ModelDeployment's engine."""

    profile: Profile
    max_running: int
    """Batch slots per replica: few, so that a laptop-sized burst builds a queue."""


@dataclass(frozen=True)
class DemoOptions:
    duration_s: float = 40.0
    """Length of the traffic script (start-up comes on top)."""
    requests: int = 400
    seed: int = 0
    keep_running: bool = False
    manifests: Path = REPO_EXAMPLE
    namespace: str = "demo"
    max_in_flight: int = 64
    ready_timeout_s: float = 90.0
    zero_wait_s: float = 30.0
    """How much longer than planned the quiet phase may wait for a tier to reach zero."""
    engines: Mapping[str, SimEngine] = field(
        default_factory=lambda: {
            "small-llm": SimEngine(Profile.SMALL, 2),
            "mid-llm": SimEngine(Profile.MID, 4),
        }
    )
    default_engine: SimEngine = SimEngine(Profile.MID, 4)
    frontier_profile: Profile = Profile.LARGE
    sample_s: float = 0.5


def run_demo(
    options: DemoOptions,
    out: IO[str],
    on_summary: Callable[[DemoSummary], None] | None = None,
    interrupted: threading.Event | None = None,
) -> DemoSummary:
    """Run the demo end to end, showing progress on ``out``; everything is stopped
    before this returns or raises.

    ``on_summary`` is called with the summary while everything is still up (the
    ``--keep-running`` wait happens after it). ``interrupted``, once set, ends that wait
    with KeyboardInterrupt: the signal handler's own KeyboardInterrupt is lost when it
    fires while the main thread runs a ``__del__`` (the garbage collector).
    """
    began = time.monotonic()
    manifests = load_manifests(options.manifests)
    try:
        script = build_script(options.duration_s, options.requests, options.seed)
    except ValueError as e:
        raise DemoError(str(e)) from e
    view = make_view(out, list(manifests.tiers))
    with contextlib.ExitStack() as stack:
        stack.callback(view.stop)
        run = _start(stack, options, manifests, view)
        emit = view.stage
        emit(
            f"[5/6] traffic through the router: {len(script.phases)} phases, "
            f"{options.requests} requests over {script.length_s:.0f}s (seed {options.seed})"
        )
        session = SessionOptions(options.zero_wait_s, options.sample_s, options.max_in_flight)
        played = asyncio.run(_interruptible(Session(run, script, session, view).play()))
        view.stop()
        summary = _summary(run, played, total_s=time.monotonic() - began)
        emit(f"[6/6] done after {summary.total_s:.0f}s; summary below (latencies, costs simulated)")
        if on_summary is not None:
            on_summary(summary)
        if options.keep_running:
            _keep_running(run, emit, interrupted or threading.Event())
        return summary
    raise AssertionError("unreachable")  # pragma: no cover - the with block returns


def _start(
    stack: contextlib.ExitStack, options: DemoOptions, manifests: Manifests, view: View
) -> Running:
    """Cluster, operator, frontier stand-in and manifests, until the operator says Ready."""
    workdir = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="tierwise-demo-")))
    frontier = stack.enter_context(
        frontier_stand_in(
            manifests, profile=options.frontier_profile, seed=options.seed, log=workdir / "f.log"
        )
    )
    run = _start_cluster(stack, options, manifests, workdir, view.stage)
    if frontier is not None:
        run.frontier_url = frontier.url
        view.stage(
            f"      frontier tier: external API stand-in (simulator, {options.frontier_profile}"
            f" profile) at {frontier.url}/v1; its API key is a Secret, never shown"
        )
    _apply_and_wait(run, options, view.stage)
    return run


def _start_cluster(
    stack: contextlib.ExitStack,
    options: DemoOptions,
    manifests: Manifests,
    workdir: Path,
    emit: Callable[[str], None],
) -> Running:
    sims = {n: options.engines.get(n, options.default_engine) for n in manifests.names}
    backend = SimWorkloadBackend(
        {n: s.profile for n, s in sims.items()},
        engine_args={n: ["--max-running", str(s.max_running)] for n, s in sims.items()},
    )
    cluster = stack.enter_context(
        EmulatedCluster(workloads=backend, namespaces=(options.namespace,), max_termination_grace=2)
    )
    cluster.install_crds(build_crds().values())
    api = stack.enter_context(cluster.api_client())
    run = Running(workdir, manifests, options.namespace, api, cluster, backend)
    emit(
        f"[1/6] embedded cluster (emulated Kubernetes API) on {cluster.url}: CRDs installed; "
        "engine pods run as simulators, router pods as real `tierwise router` processes"
    )
    run.operator = stack.enter_context(
        ChildProcess(
            "tierwise operator",
            operator_args(cluster.kubeconfig_path, options.namespace),
            workdir / "operator.log",
        )
    )
    emit(
        f"[2/6] tierwise operator (pid {run.operator.pid}) reconciles ModelDeployments and "
        f"RoutingPolicies in namespace {options.namespace}; its autoscaler reads the engines' "
        "and the router's /metrics"
    )
    return run


def _apply_and_wait(run: Running, options: DemoOptions, emit: Callable[[str], None]) -> None:
    manifests = run.manifests
    create_secrets(run.api, options.namespace, manifests.externals())
    apply_manifests(run.api, options.namespace, manifests, run.frontier_url or None)
    emit(
        f"[3/6] applied {options.manifests.name}: {', '.join(manifests.names)} and "
        f"RoutingPolicy {manifests.policy_name}; waiting for the operator"
    )
    wait_settled(run, timeout_s=options.ready_timeout_s, emit=emit)
    router = service_name(f"{manifests.policy_name}-router")
    run.router_url = run.cluster.service_url(options.namespace, router)
    wait_router(run, _status)
    emit(
        f"[4/6] the router the operator deployed ({', '.join(run.router_pods())}) answers "
        f"through Service {router} at {run.router_url}"
    )
    for line in format_deployments(read_rows(run.api, options.namespace, manifests)):
        emit("      " + line)


async def _interruptible(play: Coroutine[Any, Any, Played]) -> Played:
    """``play``, cancelled cleanly on SIGINT or SIGTERM, then KeyboardInterrupt.

    The CLI's handlers raise KeyboardInterrupt wherever the main thread is; inside the
    event loop that can land in any task and leave it unretrieved. Here the loop's own
    handlers cancel the traffic instead (its tasks and sessions close in order), and the
    CLI's handlers come back afterwards.
    """
    loop = asyncio.get_running_loop()
    main = asyncio.current_task()
    assert main is not None
    caught: list[int] = []
    previous = {sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGTERM)}

    def cancel(sig: int) -> None:
        caught.append(sig)
        main.cancel()

    for sig in previous:
        loop.add_signal_handler(sig, cancel, sig)
    try:
        return await play
    except asyncio.CancelledError:
        if caught:
            raise KeyboardInterrupt from None
        raise
    finally:
        for sig, handler in previous.items():
            loop.remove_signal_handler(sig)
            if handler is not None:
                signal.signal(sig, handler)


def _summary(run: Running, played: Played, *, total_s: float) -> DemoSummary:
    observer = played.observer
    rows = [
        dataclasses.replace(
            r,
            timeline=tuple(observer.timelines.get(r.name, ())),
            scale_events=tuple(e for e in observer.events if e.model_deployment == r.name),
            peak_queue=observer.peaks.get(r.name, 0.0),
        )
        for r in read_rows(run.api, run.namespace, run.manifests)
    ]
    urls = {"router": run.router_url, "cluster": run.cluster.url}
    if run.frontier_url:
        urls["frontier"] = run.frontier_url
    latest = observer.latest
    observed = Observed(
        deployments=rows,
        metrics=latest.router if latest is not None else RouterMetrics(),
        policy=PolicyView.from_status(run.manifests.policy_name, policy_status(run)),
        phases=played.player.phases,
        wake=played.wake,
        cost_timeline=observer.costs,
        urls=urls,
    )
    return summarize(
        observed,
        played.player.outcomes,
        tier_order=list(run.manifests.tiers),
        wall_s=played.wall_s,
        total_s=total_s,
    )


def _status(url: str) -> int:
    try:
        with urllib.request.urlopen(url, timeout=1.0) as response:
            return int(response.status)
    except urllib.error.HTTPError as exc:
        return exc.code
    except OSError:
        return 0


def _keep_running(run: Running, emit: Callable[[str], None], interrupted: threading.Event) -> None:
    """Stay up until Ctrl-C (or SIGTERM), printing where everything listens."""
    kubeconfig = run.cluster.kubeconfig_path
    emit("")
    emit("Still running (Ctrl-C stops everything):")
    emit(f"  router      {run.router_url}   e.g.")
    emit(
        f"    curl -s {run.router_url}/v1/chat/completions -H 'content-type: application/json' "
        '-d \'{"model":"auto","messages":[{"role":"user","content":"prove it"}]}\' -i'
    )
    emit(f"    curl -s {run.router_url}/metrics | grep tierwise_router_cost")
    emit(f"  cluster     {run.cluster.url}")
    emit(f"  kubeconfig  {kubeconfig}")
    emit(f"    kubectl --kubeconfig {kubeconfig} -n {run.namespace} get md,rp,deploy,pods")
    emit(f"  logs        {run.workdir}/operator.log; the router's: kubectl logs (not emulated),")
    folder = run.backend.tierwise.folder if run.backend.tierwise is not None else None
    emit(f"              {folder}/{run.namespace}/<router pod>/container.log")
    while True:
        if run.operator is not None:
            run.operator.check()
        if interrupted.wait(2.0):
            raise KeyboardInterrupt
