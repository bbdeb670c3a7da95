"""Autoscaling benchmark (simulated): Tierwise's policy against three baselines over a day.

Why it exists: the autoscaler's promise is SLO attainment at low GPU cost; this replays one
seeded, bursty, day-shaped trace against simulated replicas and compares, in the same run:

* ``tierwise``    :func:`tierwise.autoscaler.policy.decide` with the CRD defaults (and
  variants: without the load trend, ``scaleUpLookahead: 0s``; ``targetKVCacheUsage: 0.5``)
* ``static-peak`` a fixed deployment sized for the trace's busiest minute at 80% occupancy
* ``hpa-gpu``     Kubernetes HPA on DCGM GPU utilisation alone (target 70%)
* ``queue-only``  the same HPA mechanics on waiting requests per replica alone (target 5)

Everything is simulated (no GPU, no cluster): a discrete-time model with 1 s steps.

Model (all tunables below, in ``Setup``):
- Arrivals: Poisson per second with a day-shaped rate (trough at 04:00, peak at 16:00)
  times bursts (``bursts`` per day, x1.5-3 the rate for 3-15 min, 60 s ramp).
- Replicas: ``slots`` concurrent requests each; one global FIFO queue in front (the router
  balancing on load); service time per request from the simulator's latency model
  (``tierwise.sim.latency``, the ``mid`` preset: ~8B model on one H100) at a full batch,
  for lognormal prompt and output lengths. Queue wait is measured at 1 s resolution
  (a request admitted in its arrival second or the next meets the 2 s SLO).
- A new replica serves after a cold start drawn from 60-120 s (pod scheduled on an
  existing GPU node, image cached, weights loaded from a local cache; a new node would add
  minutes). It is billed from the moment it is requested. A removed replica stops taking
  requests at once and is billed until its share of in-flight requests drains.
- Signals, read every 15 s from ready replicas only: waiting and running per replica,
  KV-cache usage = 0.95 x slot occupancy (engines admit until the KV cache is nearly full),
  GPU utilisation as dcgm-exporter reports it: 100% on any replica with one request in
  flight.

Run: ``.venv/bin/python bench/autoscale.py [--seed N] [--seeds K] [--markdown]``.
"""

from __future__ import annotations

import argparse
import math
import random
import sys
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field

from tierwise.api.model_deployment import AutoscalingSpec, ReplicasSpec
from tierwise.autoscaler.history import History
from tierwise.autoscaler.model import ReplicaSample, Signals
from tierwise.autoscaler.policy import decide
from tierwise.sim.latency import PROFILES, Profile, request_seconds

DAY_S = 24 * 3600
SLO_WAIT_S = 2.0
GOAL_ATTAINMENT = 0.99
GOAL_RATIO = 1.15


@dataclass(frozen=True)
class Setup:
    peak_rate: float = 12.0  # requests/s at the 16:00 peak, before bursts
    trough_share: float = 0.15  # rate at 04:00 as a share of the peak
    bursts: int = 8
    slots: int = 8
    interval_s: int = 15
    cold_start_s: tuple[float, float] = (60.0, 120.0)
    max_replicas: int = 40
    prompt_tokens_mean: float = 1500.0
    output_tokens_mean: float = 250.0


@dataclass
class Metrics:
    requests: int = 0
    met: int = 0
    gpu_seconds: float = 0.0
    waits: list[int] = field(default_factory=list)  # histogram: waits[w] = requests waiting w s
    peak_replicas: int = 0

    def record(self, wait: int, count: int) -> None:
        while len(self.waits) <= wait:
            self.waits.append(0)
        self.waits[wait] += count
        self.requests += count
        self.met += count if wait + 0.5 < SLO_WAIT_S else 0

    def percentile(self, q: float) -> float:
        rank, seen = q * self.requests, 0
        for wait, count in enumerate(self.waits):
            seen += count
            if seen >= rank:
                return wait + 0.5
        return math.nan


def rate_curve(setup: Setup, rng: random.Random) -> list[float]:
    """Requests per second for each second of the day."""
    out = []
    for t in range(DAY_S):
        phase = (t - 4 * 3600) / DAY_S
        shape = (0.5 - 0.5 * math.cos(2 * math.pi * phase)) ** 1.5
        out.append(setup.peak_rate * (setup.trough_share + (1 - setup.trough_share) * shape))
    for _ in range(setup.bursts):
        start = rng.randrange(DAY_S - 3600)
        length = rng.uniform(180, 900)
        factor = rng.uniform(1.5, 3.0)
        for t in range(start, int(start + length)):
            ramp = min(1.0, (t - start) / 60.0)
            out[t] *= 1 + (factor - 1) * ramp
    return out


def poisson(rng: random.Random, lam: float) -> int:
    """A Poisson draw by counting exponential gaps within one second."""
    count, clock = 0, rng.expovariate(lam) if lam > 0 else math.inf
    while clock < 1.0:
        count += 1
        clock += rng.expovariate(lam)
    return count


def arrivals(setup: Setup, seed: int) -> list[int]:
    rng = random.Random(seed)
    return [poisson(rng, lam) for lam in rate_curve(setup, rng)]


def service_table(setup: Setup, seed: int, size: int = 4096) -> list[float]:
    """Service times (s) of ``size`` requests at a full batch, from the simulator's model."""
    rng = random.Random(seed + 1)
    params = PROFILES[Profile.MID]

    def lognormal(mean: float, sigma: float) -> int:
        return max(1, round(rng.lognormvariate(math.log(mean) - sigma**2 / 2, sigma)))

    return [
        request_seconds(
            params,
            uncached_tokens=lognormal(setup.prompt_tokens_mean, 0.8),
            output_tokens=min(4096, lognormal(setup.output_tokens_mean, 0.8)),
            running=setup.slots,
        )
        for _ in range(size)
    ]


@dataclass
class Cluster:
    """Replica lifecycle: requested (starting) then ready; removal drains."""

    starting: list[float] = field(default_factory=list)  # ready-at times
    ready: int = 0

    @property
    def desired(self) -> int:
        return self.ready + len(self.starting)

    def tick(self, now: float) -> None:
        done = [at for at in self.starting if at <= now]
        self.starting = [at for at in self.starting if at > now]
        self.ready += len(done)

    def scale(self, desired: int, now: float, rng: random.Random, setup: Setup) -> None:
        while self.desired < desired:
            self.starting.append(now + rng.uniform(*setup.cold_start_s))
        while self.desired > desired:
            if self.starting:
                self.starting.remove(max(self.starting))  # cancel the latest start first
            else:
                self.ready -= 1


@dataclass(frozen=True)
class View:
    """What a policy sees at a decision: per-ready-replica means and the router's hold."""

    now: float
    current: int
    ready: int
    waiting: int
    running: int
    slots: int
    tokens: float

    def per_replica(self) -> tuple[float, float, float, float]:
        n = self.ready
        occupancy = min(1.0, self.running / (n * self.slots))
        busy = min(self.running, n) / n
        return self.waiting / n, self.running / n, 0.95 * occupancy, 100.0 * busy


Policy = Callable[[View], int]


def tierwise_policy(setup: Setup, *, dcgm: bool = False, **fields: object) -> Policy:
    """:func:`decide` with ``spec.autoscaling`` fields (CRD defaults otherwise); ``dcgm``
    feeds it GPU utilisation as dcgm-exporter reports it, else the guard has no data."""
    spec = AutoscalingSpec.model_validate(fields)
    bounds = ReplicasSpec(min=1, max=setup.max_replicas)
    state = {"history": History()}

    def policy(view: View) -> int:
        if view.ready:
            queue, running, kv, gpu = view.per_replica()
            tokens = view.tokens / view.ready
            replicas = tuple(
                ReplicaSample(
                    f"r{i}", queue, running, kv, gpu if dcgm else None, prompt_tokens_total=tokens
                )
                for i in range(view.ready)
            )
            demand = 0.0
        else:
            replicas, demand = (), float(view.waiting)
        signals = Signals(observed_at=view.now, replicas=replicas, demand=demand)
        decision = decide(
            spec,
            bounds,
            current=view.current,
            signals=signals,
            history=state["history"],
            now=view.now,
        )
        state["history"] = decision.history
        return decision.desired

    return policy


def hpa_policy(setup: Setup, metric: Callable[[View], float], target: float) -> Policy:
    """Kubernetes HPA defaults: tolerance 0.1, scale-up by max(4 pods, 100%) per 15 s with
    no window, scale-down to the highest recommendation of the last 300 s."""
    recent: deque[tuple[float, int]] = deque()

    def policy(view: View) -> int:
        if not view.ready:
            return view.current
        ratio = metric(view) / target
        wanted = view.current if abs(ratio - 1) <= 0.1 else math.ceil(view.current * ratio - 1e-9)
        wanted = min(max(wanted, 1), setup.max_replicas)
        recent.append((view.now, wanted))
        while recent[0][0] < view.now - 300:
            recent.popleft()
        if wanted < view.current:
            wanted = min(view.current, max(n for _, n in recent))
        return min(wanted, view.current + max(4, view.current))

    return policy


def simulate(
    setup: Setup,
    policy: Policy,
    *,
    demand: list[int],
    service: list[float],
    seed: int,
    static: int | None = None,
) -> Metrics:
    rng = random.Random(seed + 2)
    horizon = int(max(service)) + 2
    completions = [0] * horizon
    queue: deque[list[int]] = deque()  # cohorts [arrival second, count]
    waiting = running = 0
    tokens = 0.0
    cluster = Cluster(ready=static if static is not None else 1)
    out = Metrics()
    for t in range(DAY_S):
        cluster.tick(t)
        slot = t % horizon
        running -= completions[slot]
        completions[slot] = 0
        if demand[t]:
            queue.append([t, demand[t]])
            waiting += demand[t]
        free = cluster.ready * setup.slots - running
        while free > 0 and queue:
            cohort = queue[0]
            k = min(free, cohort[1])
            out.record(t - cohort[0], k)
            for _ in range(k):
                done = t + max(1, math.ceil(service[rng.randrange(len(service))]))
                completions[done % horizon] += 1
            cohort[1] -= k
            free -= k
            running += k
            waiting -= k
            tokens += k * setup.prompt_tokens_mean
            if not cohort[1]:
                queue.popleft()
        if static is None and t % setup.interval_s == 0:
            view = View(t, cluster.desired, cluster.ready, waiting, running, setup.slots, tokens)
            cluster.scale(policy(view), t, rng, setup)
        billed = len(cluster.starting) + max(cluster.ready, math.ceil(running / setup.slots))
        out.gpu_seconds += billed
        out.peak_replicas = max(out.peak_replicas, billed)
    return out


def static_size(setup: Setup, demand: list[int], service: list[float]) -> int:
    """Replicas for the busiest minute at 80% slot occupancy (Little's law)."""
    peak = max(sum(demand[t : t + 60]) / 60 for t in range(0, DAY_S, 60))
    mean_service = sum(math.ceil(s) for s in service) / len(service)
    return math.ceil(peak * mean_service / (0.8 * setup.slots))


def run(seed: int, setup: Setup) -> dict[str, Metrics]:
    demand = arrivals(setup, seed)
    service = service_table(setup, seed)
    policies: dict[str, tuple[Policy, int | None]] = {
        "tierwise": (tierwise_policy(setup), None),
        "tierwise no-trend": (tierwise_policy(setup, scaleUpLookahead="0s"), None),
        "tierwise kv0.5": (tierwise_policy(setup, targetKVCacheUsage=0.5), None),
        "tierwise kv0.5 no-trend": (
            tierwise_policy(setup, targetKVCacheUsage=0.5, scaleUpLookahead="0s"),
            None,
        ),
        "tierwise+dcgm": (tierwise_policy(setup, dcgm=True), None),
        "static-peak": (lambda view: view.current, static_size(setup, demand, service)),
        "hpa-gpu": (hpa_policy(setup, lambda v: v.per_replica()[3], 70.0), None),
        "queue-only": (hpa_policy(setup, lambda v: v.per_replica()[0], 5.0), None),
    }
    return {
        name: simulate(setup, policy, demand=demand, service=service, seed=seed, static=static)
        for name, (policy, static) in policies.items()
    }


def report(seed: int, results: dict[str, Metrics], markdown: bool) -> bool:
    attaining = {n: m for n, m in results.items() if m.met / m.requests >= GOAL_ATTAINMENT}
    best = min((m.gpu_seconds for m in attaining.values()), default=math.nan)
    header = ["policy", "SLO attainment", "GPU-hours", "vs best >=99%", "p99 wait s", "peak"]
    rows = []
    for name, m in results.items():
        ratio = m.gpu_seconds / best if name in attaining else math.nan
        rows.append(
            [
                name,
                f"{100 * m.met / m.requests:.2f}%",
                f"{m.gpu_seconds / 3600:.1f}",
                "-" if math.isnan(ratio) else f"{ratio:.2f}x",
                f"{m.percentile(0.99):.1f}",
                str(m.peak_replicas),
            ]
        )
    met = [n for n in results if n in attaining and results[n].gpu_seconds <= GOAL_RATIO * best]
    ok = any(n.startswith("tierwise") for n in met)
    print(f"\nseed {seed} ({results['tierwise'].requests} requests, simulated)")
    if markdown:
        print("| " + " | ".join(header) + " |\n|" + "---|" * len(header))
        for row in rows:
            print("| " + " | ".join(row) + " |")
    else:
        for row in [header, *rows]:
            print("".join(cell.ljust(16) for cell in row))
    print(
        f"goal (>=99% attainment, GPU-hours <= {GOAL_RATIO}x best at that attainment) met by: "
        f"{', '.join(met) or 'none'}"
    )
    return ok


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--seeds", type=int, default=3, help="run seed, seed+1, ...")
    parser.add_argument("--markdown", action="store_true")
    args = parser.parse_args(argv)
    started = time.perf_counter()
    setup = Setup()
    verdicts = [
        report(s, run(s, setup), args.markdown) for s in range(args.seed, args.seed + args.seeds)
    ]
    print(
        f"\n{sum(verdicts)}/{len(verdicts)} seeds: a tierwise row meets the goal; "
        f"{time.perf_counter() - started:.1f}s wall"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
