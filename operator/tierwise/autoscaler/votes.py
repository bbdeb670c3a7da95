"""The policy's proposals: one replica count per readable signal, and the load trend's.

Why it exists: :mod:`tierwise.autoscaler.policy` combines proposals under windows, guards,
steps and bounds; what each signal proposes, and the knobs it reads, live here so each half
stays small enough to read whole. Pure, like the policy (see its docstring for the rules).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from tierwise.api.common import parse_duration
from tierwise.api.model_deployment import AutoscalingSpec, ReplicasSpec
from tierwise.autoscaler import coldstart, trend
from tierwise.autoscaler.history import History
from tierwise.autoscaler.model import Reason, Signal, Signals

_EPS = 1e-9
_NOISE_FLOOR = 1e-6
"""Projected growth (in replicas at target) below which a trend is rounding noise."""


@dataclass(frozen=True, slots=True)
class Tunables:
    """The spec's knobs with durations in seconds, the cold start resolved, and
    ``target_kv_cache_usage`` already divided by the cold-start ``headroom``."""

    min: int
    max: int
    target_queue_depth: float
    target_kv_cache_usage: float
    target_gpu_utilization: float
    scale_up_on_gpu: bool
    tolerance: float
    up_window: float
    down_window: float
    up_step: int
    down_step: int
    zero_after: float
    lookahead: float = 0.0
    interval: float = 15.0
    up_percent: int = 0
    gpu_guard: bool = False
    cold_start: float = coldstart.DEFAULT_COLD_START_S
    headroom: float = 1.0

    @classmethod
    def of(
        cls, spec: AutoscalingSpec, replicas: ReplicasSpec, *, measured: float | None = None
    ) -> Tunables:
        """The knobs of ``spec``; ``measured`` is the cold start seen on the pods, if any."""
        if spec.cold_start is not None:
            cold = parse_duration(spec.cold_start)
        else:
            cold = measured if measured is not None else coldstart.DEFAULT_COLD_START_S
        headroom = coldstart.headroom(spec.headroom_per_minute, cold)
        lookahead = spec.scale_up_lookahead
        return cls(
            min=replicas.min,
            max=replicas.max,
            target_queue_depth=spec.target_queue_depth,
            target_kv_cache_usage=spec.target_kv_cache_usage / headroom,
            target_gpu_utilization=float(spec.target_gpu_utilization),
            scale_up_on_gpu=spec.scale_up_on_gpu_utilization,
            tolerance=spec.tolerance,
            up_window=parse_duration(spec.scale_up_window),
            down_window=parse_duration(spec.scale_down_window),
            up_step=spec.max_scale_up_step,
            down_step=spec.max_scale_down_step,
            zero_after=parse_duration(spec.scale_to_zero_after),
            lookahead=cold if lookahead is None else parse_duration(lookahead),
            interval=parse_duration(spec.interval),
            up_percent=spec.max_scale_up_percent,
            gpu_guard=spec.gpu_guard,
            cold_start=cold,
            headroom=headroom,
        )

    @property
    def floor(self) -> int:
        """Fewest replicas while serving: min, but at least one (zero is the idle rule's)."""
        return max(self.min, 1)

    def up_limit(self, current: int) -> int:
        """Most replicas one decision may add to ``current``: HPA's max(pods, percent)."""
        return max(self.up_step, math.ceil(current * self.up_percent / 100))

    @property
    def trend_window(self) -> float:
        return trend.window_for(self.lookahead, self.interval)


@dataclass(frozen=True, slots=True)
class Vote:
    replicas: int
    reason: Reason
    value: float
    target: float
    text: str = ""
    """Replaces the ``value/replica vs target`` part of the message when set."""


def votes(
    t: Tunables, current: int, signals: Signals, *, history: History, now: float
) -> tuple[list[Vote], History]:
    """One proposal per readable load signal (queue, KV cache, GPU when asked) and the load
    trend's; the history with this reading's load level."""
    level = trend.load_level(
        signals, target_kv=t.target_kv_cache_usage, target_queue=t.target_queue_depth
    )
    out: list[Vote] = []
    ahead = _trend_vote(t, current=current, level=level, history=history, now=now)
    if ahead is not None:
        out.append(ahead)
    queue = signals.known(Signal.QUEUE_DEPTH)
    if queue:
        held = signals.demand or 0.0  # requests the router holds are waiting too
        out.append(_vote(queue, current, t.target_queue_depth, t, Reason.QUEUE_DEPTH, held))
    kv = signals.known(Signal.KV_CACHE_USAGE)
    if kv:
        vote = _vote(kv, current, t.target_kv_cache_usage, t, Reason.KV_CACHE_USAGE)
        if t.headroom > 1:
            vote = _with_headroom(vote, t)
        out.append(vote)
    gpu = signals.known(Signal.GPU_UTILIZATION)
    if gpu and t.scale_up_on_gpu:
        vote = _vote(gpu, current, t.target_gpu_utilization, t, Reason.GPU_UTILIZATION)
        if vote.replicas > current:  # a scale-up signal only; the guard handles the rest
            out.append(vote)
    keep = t.lookahead + t.trend_window
    return out, history.with_load(now, level, keep_for=keep)


def ceil(value: float) -> int:
    return math.ceil(value - _EPS)


def _trend_vote(
    t: Tunables, *, current: int, level: float | None, history: History, now: float
) -> Vote | None:
    """Scale up now for the load ``scaleUpLookahead`` ahead (:mod:`tierwise.autoscaler.trend`).
    Replicas still starting count as capacity: ``current`` includes them and is compared
    with the projection, which is roughly when they will be ready."""
    if level is None or t.lookahead < t.interval:
        return None  # off (0s), or shorter than one reading apart (the spec refuses that)
    seen = trend.growth(
        history.loads, now=now, level=level, span=t.lookahead, window=t.trend_window
    )
    # Growth within the tolerance band (or floating-point noise in a level summed over a
    # different replica count) is no trend: projecting it would fight the reactive votes
    # under constant load and flap.
    if seen is None or seen.rate * t.lookahead <= max(t.tolerance * seen.level, _NOISE_FLOOR):
        return None
    ahead = seen.projected(t.lookahead)
    if ahead <= current * (1 + t.tolerance):
        return None
    text = (
        f"load {seen.level:.3g} replicas at target grew {60 * seen.rate:.3g}/min over "
        f"{t.lookahead:g}s, {ahead:.3g} as far ahead"
    )
    return Vote(ceil(ahead), Reason.LOAD_TREND, ahead, float(current), text)


def _vote(
    values: list[float],
    current: int,
    target: float,
    t: Tunables,
    reason: Reason,
    extra: float = 0.0,
) -> Vote:
    """HPA's proportional rule with its conservative fill for replicas that did not report;
    ``extra`` is load not on any replica (requests the router holds)."""
    known = len(values)
    total = sum(values) + extra
    mean = total / known
    ratio = mean / target
    if known < current:
        if ratio > 1:
            ratio = total / (current * target)  # silent replicas assumed idle
        elif ratio < 1:
            ratio = (total + (current - known) * target) / (current * target)  # at target
    if abs(ratio - 1) <= t.tolerance or (ratio - 1) * (mean / target - 1) < 0:
        return Vote(current, reason, mean, target)
    return Vote(ceil(current * ratio), reason, mean, target)


def _with_headroom(vote: Vote, t: Tunables) -> Vote:
    spec_target = t.target_kv_cache_usage * t.headroom
    text = (
        f"{vote.value:.3g}/replica vs target {vote.target:.3g} ({spec_target:g} with "
        f"{100 * (t.headroom - 1):.0f}% headroom for a {t.cold_start:.0f}s cold start)"
    )
    return Vote(vote.replicas, vote.reason, vote.value, vote.target, text)
