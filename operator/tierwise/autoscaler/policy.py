"""The autoscaling policy: signals + spec + history -> desired replicas and the reason.

Why it exists: CPU-based HPA sees neither idle GPUs nor requests queued behind a saturated
replica. This function scales on what LLM serving feels, and is pure (no I/O, no clock: the
caller passes ``now``) so every rule below is tested without a cluster.

Algorithm (HPA's, on LLM signals):

1. Per signal, a proportional proposal ``ceil(current * value / target)``, where ``value`` is
   the per-replica mean: waiting requests (plus what the router holds for the model) against
   ``targetQueueDepth``; KV-cache usage against ``targetKVCacheUsage``; the GPU signal
   (``gpuMetric``) against ``targetGPUUtilization`` only with ``scaleUpOnGPUUtilization``
   and only upwards.
   Inside ``tolerance`` (|value/target - 1| <= tolerance) a signal proposes ``current``.
   Replicas that did not report (starting, unreachable) are filled in conservatively, as the
   HPA does: as idle when the others call for scale-up, at target when they call for
   scale-down; if the fill flips the direction, the signal proposes ``current``.
   Cold start (:mod:`tierwise.autoscaler.coldstart`): ``coldStart``, else measured on the
   pods (creation to Ready), else 2m. ``targetKVCacheUsage`` is divided by the headroom
   ``(1 + headroomPerMinute/100) ** minutes`` of it, so capacity stands for a burst that
   starts while new replicas are on their way.
   Load trend: the load in replicas at target (KV usage / its target + waiting / its target)
   that grew over the last ``scaleUpLookahead`` (default: the cold start) proposes
   ``ceil(projection)`` as far ahead, upwards only (:mod:`tierwise.autoscaler.trend`).
2. The largest proposal wins; it names the reason. With every load signal unknown the policy
   holds (``SignalsMissing``); with some unknown it may scale up but never down.
3. GPU guard (``gpuGuard``, off by default): no scale-down while the mean GPU signal >=
   ``targetGPUUtilization``. The signal is a DCGM profiling ratio (SM or tensor-pipe
   activity) unless ``gpuMetric: gpuUtil`` asks for DCGM_FI_DEV_GPU_UTIL, which reads ~100%
   with one request in flight and so blocks nearly every scale-down (2.3-2.5x the GPU-hours
   in the benchmark). Without DCGM data the guard does nothing, and says so.
4. Stabilisation: the applied count is the lowest proposal of the last ``scaleUpWindow``
   when above ``current``, the highest of the last ``scaleDownWindow`` when below. A fresh
   history (operator restart) holds scale-down for one full window.
5. Rates: at most ``max(maxScaleUpStep, ceil(current * maxScaleUpPercent / 100))`` added
   (the HPA's ``max(N pods, P percent)`` per period, the period being one interval) and
   ``maxScaleDownStep`` removed per decision.
6. Bounds: ``[max(min, 1), max]`` while serving. With ``min`` 0, zero after
   ``scaleToZeroAfter`` with no running, waiting or router-held requests and no new prompt
   tokens (router demand must be known: nothing could wake the model otherwise); from zero,
   ``ceil(demand / targetQueueDepth)`` (usually 1) replicas as soon as the router holds a
   request, within ``maxScaleUpStep``.
   The votes and the knobs: :mod:`tierwise.autoscaler.votes`.

Tunables (``spec.autoscaling`` unless noted; defaults in :mod:`tierwise.api.model_deployment`):

``targetQueueDepth`` 5      waiting requests per replica (llm-d, Gateway API Inference Ext.)
``targetKVCacheUsage`` 0.8  KV-cache usage per replica (same sources)
``targetGPUUtilization`` 70 percent; the guard's threshold, scale-up only when asked
``gpuGuard`` false          opt-in: DCGM signals have read busy on idle-ish GPUs
``gpuMetric`` auto          SM activity, else tensor-pipe activity; never GPU_UTIL unasked
``tolerance`` 0.1           dead band around each target
``coldStart`` measured      pod creation to Ready, median of the newest five; 2m unseen
``headroomPerMinute`` 5     percent of spare capacity per minute of cold start, compounded
``scaleUpLookahead`` cold start  project the growth seen over this span as far ahead
``scaleUpWindow`` 0s        react to bursts at once
``scaleDownWindow`` 5m      HPA's default: forget a burst only after five quiet minutes
``maxScaleUpStep`` 4        HPA's default pod step ...
``maxScaleUpPercent`` 100   ... or HPA's default percent, whichever adds more: a burst on
                            40 replicas may double them in one interval
``maxScaleDownStep`` 1      remove one replica (and its prefix cache) at a time
``scaleToZeroAfter`` 15m    with ``replicas.min`` 0
``replicas.min/max``        hard bounds; ``replicas.target`` when disabled

Modes: ``advisory`` computes the same decision with ``apply=False``; ``external`` never
proposes a change (``ExternalOwner``); ``enabled: false`` pins ``replicas.target`` or ``min``.
"""

from __future__ import annotations

from dataclasses import replace

from tierwise.api.model_deployment import AutoscalingMode, AutoscalingSpec, ReplicasSpec
from tierwise.autoscaler.history import History, Proposal
from tierwise.autoscaler.model import (
    Decision,
    Direction,
    Limit,
    Reason,
    Signal,
    Signals,
    Summary,
)
from tierwise.autoscaler.votes import Tunables, Vote, ceil, votes


def decide(
    spec: AutoscalingSpec,
    replicas: ReplicasSpec,
    *,
    current: int,
    signals: Signals,
    history: History,
    now: float,
) -> Decision:
    """The replica count ``spec`` wants given ``signals``, and the history for next time."""
    history = observe_traffic(history, signals, now)
    summary = Summary.of(signals)
    if not spec.enabled:
        desired = replicas.target if replicas.target is not None else replicas.min
        text = f"autoscaling disabled: replicas.target or min is {desired}"
        return _decision(
            desired, current, Reason.DISABLED, message=text, summary=summary, history=history
        )
    if spec.mode is AutoscalingMode.EXTERNAL:
        text = "an HPA or KEDA owns replicas through the scale subresource; Tierwise only reports"
        out = _decision(
            current, current, Reason.EXTERNAL_OWNER, message=text, summary=summary, history=history
        )
        return replace(out, apply=False)
    tunables = Tunables.of(spec, replicas, measured=signals.cold_start)
    if current == 0:
        out = _from_zero(tunables, signals, summary, history.with_load(0.0, None), now=now)
    else:
        out = _serving(tunables, current=current, signals=signals, history=history, now=now)
        out = replace(out, signals=summary)
    if spec.mode is AutoscalingMode.ADVISORY:
        return replace(out, apply=False, message=f"advisory: {out.message}")
    if out.changed:
        out = replace(out, history=replace(out.history, last_scale_at=now))
    return out


def observe_traffic(history: History, signals: Signals, now: float) -> History:
    """``history`` with ``last_traffic_at`` moved to ``now`` if this reading shows traffic.

    The idle clock starts at the first reading, so a restarted operator waits a full
    ``scaleToZeroAfter`` before parking a model.
    """
    seen = history.counters()
    counters = tuple(
        (r.pod, r.prompt_tokens_total)
        for r in signals.replicas
        if r.prompt_tokens_total is not None
    )
    busy = any((r.queue_depth or 0) > 0 or (r.running_requests or 0) > 0 for r in signals.replicas)
    busy = busy or (signals.demand or 0) > 0
    busy = busy or any(pod in seen and value > seen[pod] for pod, value in counters)
    last = history.last_traffic_at
    if busy or last is None:
        last = now
    if signals.last_request_at is not None:
        last = max(last, min(signals.last_request_at, now))
    started = history.started_at if history.started_at is not None else now
    return replace(history, last_traffic_at=last, prompt_tokens=counters, started_at=started)


def _from_zero(
    t: Tunables, signals: Signals, summary: Summary, history: History, *, now: float
) -> Decision:
    demand = signals.demand
    if t.min > 0:
        text = f"0 replicas is below replicas.min {t.min}"
        return _decision(
            t.min, 0, Reason.REPLICA_BOUNDS, limit=Limit.MIN_REPLICAS, message=text, history=history
        )
    if demand is None:
        text = "router demand unknown (router metrics unreadable); staying at zero"
        return _decision(0, 0, Reason.SIGNALS_MISSING, message=text, history=history)
    if demand <= 0:
        text = "no requests held by the router; staying at zero"
        return _decision(0, 0, Reason.IDLE, message=text, history=history)
    wanted = max(1, ceil(demand / t.target_queue_depth))
    desired = min(wanted, t.up_step, t.max)
    limit = Limit.NONE if desired == wanted else _upper_limit(t, wanted)
    text = f"router holds {demand:g} requests at zero replicas: waking {desired}"
    # The wake counts as a proposal: the scale-down window then holds it, so the next
    # decision (the woken replica not ready yet, its queue still empty) cannot undo it.
    keep_for = max(t.up_window, t.down_window)
    history = history.record(Proposal(now, desired), keep_for=keep_for)
    return _decision(desired, 0, Reason.ACTIVATION, limit=limit, message=text, history=history)


def _serving(
    t: Tunables, *, current: int, signals: Signals, history: History, now: float
) -> Decision:
    proposals, history = votes(t, current, signals, history=history, now=now)
    if not proposals:
        desired = min(max(current, t.floor), t.max)
        limit = _bound_limit(t, current, desired)
        text = "no load signal could be read (" + _problems(signals) + "); holding"
        return _decision(
            desired, current, Reason.SIGNALS_MISSING, limit=limit, message=text, history=history
        )
    vote = max(proposals, key=lambda v: v.replicas)
    idle = _idle_for(history, signals, now)
    if t.min == 0 and idle is not None and idle >= t.zero_after:
        text = f"no traffic for {idle:.0f}s >= scaleToZeroAfter {t.zero_after:g}s"
        return _decision(0, current, Reason.IDLE, message=text, history=history)
    raw = min(max(vote.replicas, t.floor), t.max)
    raw, limit = _guards(t, current=current, raw=raw, signals=signals)
    if limit is Limit.NONE and vote.replicas > t.max:
        limit = Limit.MAX_REPLICAS
    elif limit is Limit.NONE and vote.replicas < t.min:
        limit = Limit.MIN_REPLICAS
    keep_for = max(t.up_window, t.down_window)
    history = history.record(Proposal(now, raw), keep_for=keep_for)
    desired, limit = _stabilise(t, current=current, raw=raw, limit=limit, history=history, now=now)
    desired, limit = _rate_and_bounds(t, current=current, desired=desired, limit=limit)
    if t.min == 0 and desired == 1 and idle and limit is Limit.NONE:
        limit = Limit.SCALE_TO_ZERO_WAIT
    reason = (
        vote.reason if raw != current or desired != current else _hold_reason(proposals, current)
    )
    if not t.floor <= current <= t.max:
        reason = Reason.REPLICA_BOUNDS
    text = _message(vote, current=current, raw=raw, desired=desired, limit=limit)
    if limit is Limit.GPU_GUARD:
        text += f" ({_gpu_busy(t, signals)})"
    if limit is Limit.SCALE_TO_ZERO_WAIT:
        text += f" (idle {idle or 0:.0f}s of scaleToZeroAfter {t.zero_after:g}s)"
    if desired < current and t.gpu_guard and signals.mean(Signal.GPU_UTILIZATION) is None:
        text += "; GPU guard inactive: no DCGM data"
    return _decision(desired, current, reason, limit=limit, message=text, history=history)


def _guards(t: Tunables, *, current: int, raw: int, signals: Signals) -> tuple[int, Limit]:
    """Hold a scale-down while a load signal is unknown or the GPUs are busy."""
    if raw >= current:
        return raw, Limit.NONE
    if Signal.QUEUE_DEPTH in signals.missing or Signal.KV_CACHE_USAGE in signals.missing:
        return current, Limit.SIGNALS_MISSING
    gpu = signals.mean(Signal.GPU_UTILIZATION)
    if t.gpu_guard and gpu is not None and gpu >= t.target_gpu_utilization:
        return current, Limit.GPU_GUARD
    return raw, Limit.NONE


def _stabilise(
    t: Tunables, *, current: int, raw: int, limit: Limit, history: History, now: float
) -> tuple[int, Limit]:
    up = min(history.window(now, t.up_window) or [raw])
    down = max(history.window(now, t.down_window) or [raw])
    started = history.started_at if history.started_at is not None else now
    if now - started < t.down_window:
        down = max(down, current)
    if current < up:
        return up, Limit.SCALE_UP_WINDOW if up < raw else limit
    if current > down:
        return down, Limit.SCALE_DOWN_WINDOW if down > raw else limit
    if raw > current:
        return current, Limit.SCALE_UP_WINDOW
    if raw < current:
        return current, Limit.SCALE_DOWN_WINDOW
    return current, limit


def _rate_and_bounds(t: Tunables, *, current: int, desired: int, limit: Limit) -> tuple[int, Limit]:
    if desired > current + t.up_limit(current):
        desired, limit = current + t.up_limit(current), Limit.SCALE_UP_STEP
    if desired < current - t.down_step:
        desired, limit = current - t.down_step, Limit.SCALE_DOWN_STEP
    bounded = min(max(desired, t.floor), t.max)
    if bounded != desired:
        limit = Limit.MIN_REPLICAS if bounded > desired else Limit.MAX_REPLICAS
    return bounded, limit


def _idle_for(history: History, signals: Signals, now: float) -> float | None:
    """Seconds without traffic, or ``None`` when idleness cannot be proven."""
    unknown = {Signal.QUEUE_DEPTH, Signal.RUNNING_REQUESTS, Signal.ROUTER_DEMAND}
    last = history.last_traffic_at
    if unknown & set(signals.missing) or last is None or last >= now:
        return None  # unknown, or traffic right now
    return now - last


def _hold_reason(votes: list[Vote], current: int) -> Reason:
    if all(v.replicas == current for v in votes):
        return Reason.WITHIN_TOLERANCE
    return max(votes, key=lambda v: v.replicas).reason


def _message(vote: Vote, *, current: int, raw: int, desired: int, limit: Limit) -> str:
    what = vote.text or f"{vote.value:.3g}/replica vs target {vote.target:g}"
    text = f"{vote.reason} {what} proposes {vote.replicas} (current {current})"
    if raw != vote.replicas:
        text += f", bounded to {raw}"
    if limit is not Limit.NONE:
        text += f"; {limit} applied"
    return f"{text}: desired {desired}"


def _gpu_busy(t: Tunables, signals: Signals) -> str:
    """``DCGM_FI_PROF_SM_ACTIVE 82% >= 70%``: what held a scale-down."""
    names = sorted({r.gpu_metric for r in signals.replicas if r.gpu_metric})
    mean = signals.mean(Signal.GPU_UTILIZATION) or 0.0
    return f"GPUs busy: {'/'.join(names) or 'GPU'} {mean:.0f}% >= {t.target_gpu_utilization:g}%"


def _upper_limit(t: Tunables, wanted: int) -> Limit:
    return Limit.MAX_REPLICAS if t.max < min(wanted, t.up_step) else Limit.SCALE_UP_STEP


def _bound_limit(t: Tunables, current: int, desired: int) -> Limit:
    if desired == current:
        return Limit.NONE
    return Limit.MIN_REPLICAS if desired > current else Limit.MAX_REPLICAS


def _problems(signals: Signals) -> str:
    return "; ".join(signals.problems) or "no ready replica reported"


def _decision(
    desired: int,
    current: int,
    reason: Reason,
    *,
    limit: Limit = Limit.NONE,
    message: str,
    summary: Summary | None = None,
    history: History,
) -> Decision:
    direction = (
        Direction.UP
        if desired > current
        else Direction.DOWN
        if desired < current
        else Direction.NONE
    )
    return Decision(
        desired=desired,
        current=current,
        direction=direction,
        reason=reason,
        limit=limit,
        message=message,
        signals=summary or Summary(),
        history=history,
    )
