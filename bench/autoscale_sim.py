"""The simulated fleet behind ``bench/autoscale.py``: replicas, one queue, 1 s steps.

Why it exists: every autoscaling policy in the benchmark is judged on the same requests
served by the same simulated replicas; this module is that common ground, kept apart from
the policies and the report. Everything here is simulated (no GPU, no cluster).

Model (tunables in :class:`Fleet`):

- Requests come from a trace (:mod:`tierwise.sim.trace`): each has an arrival time and
  prompt and output token counts. Its service time is the simulator's latency model
  (``tierwise.sim.latency``, ``mid`` preset: ~8B model on one H100) at a full batch:
  prefill of every prompt token (no prefix cache) plus one decode step per output token,
  rounded up to whole seconds.
- Replicas: ``slots`` concurrent requests each, one global FIFO queue in front (the router
  balancing on load). Queue wait is measured at 1 s resolution: a request admitted in its
  arrival second or the next meets the 2 s SLO.
- Cold start: a new replica serves ``cold_start_s`` (+-``cold_start_jitter``, uniform) after
  it is requested, and is billed from the request on. A removed replica stops taking
  requests at once (a starting one is cancelled first) and is billed until its share of
  in-flight requests drains.
- Start: every policy starts with the replicas the trace's first ten minutes need at 80%
  slot occupancy, all ready (as if the deployment had served this load before the trace),
  and a fresh autoscaler history. After the trace ends, the queue drains, still billed.
- Signals, read every ``interval_s`` from ready replicas only: waiting and running per
  replica; KV-cache usage = 0.95 x slot occupancy (engines admit until the KV cache is
  nearly full); the GPU as dcgm-exporter would report it: ``DCGM_FI_DEV_GPU_UTIL`` 100% on
  any replica with one request in flight; the profiling ratios (SM and tensor-pipe
  activity) modelled at their best case for the guard, proportional to slot occupancy.
"""

from __future__ import annotations

import math
import random
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field

from tierwise.sim.latency import PROFILES, Profile, request_seconds
from tierwise.sim.trace import Trace

SLO_WAIT_S = 2.0
WARM_START_S = 600
"""The trace's first seconds whose load sizes the starting fleet."""


@dataclass(frozen=True)
class Fleet:
    """What every policy scales: replica size, decision period, cold start, bounds."""

    slots: int = 8
    interval_s: int = 15
    cold_start_s: float = 180.0
    cold_start_jitter: float = 0.25
    max_replicas: int = 40
    profile: Profile = Profile.MID

    def cold_start(self, rng: random.Random) -> float:
        spread = self.cold_start_s * self.cold_start_jitter
        return rng.uniform(self.cold_start_s - spread, self.cold_start_s + spread)


@dataclass(frozen=True)
class Workload:
    """A trace as the fleet sees it: per second, the service seconds of each arrival."""

    name: str
    arrivals: list[list[int]]
    requests: int

    @classmethod
    def of(cls, trace: Trace, fleet: Fleet) -> Workload:
        params = PROFILES[fleet.profile]
        arrivals: list[list[int]] = [[] for _ in range(int(trace.duration_s) + 1)]
        for row in trace.rows:
            seconds = request_seconds(
                params,
                uncached_tokens=row.context_tokens,
                output_tokens=row.generated_tokens,
                running=fleet.slots,
            )
            arrivals[int(row.at_s)].append(max(1, math.ceil(seconds)))
        return cls(trace.name, arrivals, len(trace.rows))

    def replicas_for(self, fleet: Fleet, start: int, end: int, *, busiest_minute: bool) -> int:
        """Replicas for the load in ``[start, end)`` at 80% slot occupancy (Little's law):
        its busiest minute, or its mean."""
        seconds = self.arrivals[start:end]
        if busiest_minute:
            work = max(
                (sum(map(sum, seconds[m : m + 60])) / 60 for m in range(0, len(seconds), 60)),
                default=0.0,
            )
        else:
            work = sum(map(sum, seconds)) / max(len(seconds), 1)
        return max(1, math.ceil(work / (0.8 * fleet.slots)))


@dataclass
class Metrics:
    """One policy's outcome on one workload."""

    requests: int = 0
    met: int = 0
    gpu_seconds: float = 0.0
    waits: list[int] = field(default_factory=list)  # waits[w] = requests that waited w s
    peak_replicas: int = 0

    def record(self, wait: int, count: int) -> None:
        while len(self.waits) <= wait:
            self.waits.append(0)
        self.waits[wait] += count
        self.requests += count
        self.met += count if wait + 0.5 < SLO_WAIT_S else 0

    @property
    def attainment(self) -> float:
        return self.met / self.requests if self.requests else math.nan

    @property
    def gpu_hours(self) -> float:
        return self.gpu_seconds / 3600

    def percentile(self, q: float) -> float:
        rank, seen = q * self.requests, 0
        for wait, count in enumerate(self.waits):
            seen += count
            if seen >= rank:
                return wait + 0.5
        return math.nan


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

    def scale(self, desired: int, now: float, rng: random.Random, fleet: Fleet) -> None:
        while self.desired < desired:
            self.starting.append(now + fleet.cold_start(rng))
        while self.desired > desired:
            if self.starting:
                self.starting.remove(max(self.starting))  # cancel the latest start first
            else:
                self.ready -= 1


@dataclass(frozen=True)
class View:
    """What a policy sees at a decision: the fleet and what its ready replicas report."""

    now: float
    current: int
    ready: int
    waiting: int
    running: int
    slots: int
    admitted: int
    """Requests admitted so far (the prompt-token counter's stand-in: only its growth counts)."""

    @property
    def occupancy(self) -> float:
        return min(1.0, self.running / (self.ready * self.slots)) if self.ready else 0.0

    @property
    def kv_cache_usage(self) -> float:
        return 0.95 * self.occupancy

    @property
    def gpu_util(self) -> float:
        """DCGM_FI_DEV_GPU_UTIL, mean over ready replicas: 100 on each with a request."""
        return 100.0 * min(self.running, self.ready) / self.ready if self.ready else 0.0

    @property
    def gpu_activity(self) -> float:
        """A profiling ratio (SM or tensor-pipe activity) as percent, at its best case for a
        guard: proportional to the work in flight."""
        return 100.0 * self.occupancy


Policy = Callable[[View], int]


def simulate(
    fleet: Fleet, policy: Policy, workload: Workload, *, seed: int, start: int | None = None
) -> Metrics:
    """Replay ``workload`` on a fleet that ``policy`` scales every ``interval_s``, starting
    with ``start`` ready replicas (default: what the first ten minutes need)."""
    rng = random.Random(seed)
    horizon = max((max(s) for s in workload.arrivals if s), default=1) + 2
    completions = [0] * horizon
    queue: deque[tuple[int, list[int]]] = deque()  # cohorts: arrival second, services left
    waiting = running = admitted = 0
    if start is None:
        start = workload.replicas_for(fleet, 0, WARM_START_S, busiest_minute=False)
        start = min(start, fleet.max_replicas)
    cluster = Cluster(ready=start)
    out = Metrics()
    end = len(workload.arrivals)
    t = 0
    while t < end or queue:
        cluster.tick(t)
        slot = t % horizon
        running -= completions[slot]
        completions[slot] = 0
        if t < end and workload.arrivals[t]:
            queue.append((t, list(reversed(workload.arrivals[t]))))
            waiting += len(workload.arrivals[t])
        free = cluster.ready * fleet.slots - running
        while free > 0 and queue:
            arrived, services = queue[0]
            k = min(free, len(services))
            out.record(t - arrived, k)
            for _ in range(k):
                completions[(t + services.pop()) % horizon] += 1
            free -= k
            running += k
            waiting -= k
            admitted += k
            if not services:
                queue.popleft()
        if t % fleet.interval_s == 0:
            view = View(t, cluster.desired, cluster.ready, waiting, running, fleet.slots, admitted)
            cluster.scale(policy(view), t, rng, fleet)
        billed = len(cluster.starting) + max(cluster.ready, math.ceil(running / fleet.slots))
        out.gpu_seconds += billed
        out.peak_replicas = max(out.peak_replicas, billed)
        t += 1
    return out
