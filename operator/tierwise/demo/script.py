"""The demo's traffic script: four phases a viewer can follow, as data.

Why it exists: the demo shows every lever of the product moving, and each lever needs
traffic of a certain shape at a certain time. The script is planned up front, pure and
seeded (the same ``--duration``, ``--requests`` and ``--seed`` give the same requests at
the same offsets); :mod:`tierwise.demo.player` sends it.

Phases (share of ``--duration`` / share of ``--requests``):

``steady`` (25% / 25%)  mixed traffic: 45% short chat, 15% code, 30% agentic sessions,
                        10% hard reasoning. Each tier serves its kind; a tier whose
                        ModelDeployment starts at zero is woken by its first request.
``burst``  (25% / 60%)  the rate more than doubles, three quarters of it short chat: one
                        small replica's queue builds and the autoscaler adds replicas.
                        The other kinds keep about their steady rate.
``quiet``  (30% / 3%)   a trickle of chat only: after the scale-down window the small tier
                        comes back down, and an idle tier with ``replicas.min: 0`` goes to
                        zero after ``scaleToZeroAfter``. The player stretches this phase
                        (bounded) until that tier is at zero, so the next one wakes it.
``wake``   (20% / 12%)  first one request for the tier at zero (held by the router until
                        the operator's replica is ready, then answered), then the steady
                        mix again.

Agentic sessions are planned by their first turn; each later turn goes out after the
previous one is answered, as an agent's would. Sessions start in the first 60% of a
phase so that they end near it: a session running into the quiet phase would keep its
tier busy.
"""

from __future__ import annotations

import random
from collections import defaultdict
from collections.abc import Hashable, Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import TypeVar

from tierwise.demo.traffic import DemoRequest, Kind, requests_of

K = TypeVar("K", bound=Hashable)
MIN_DURATION_S = 20.0
MIN_REQUESTS = 40
SESSION_START_SHARE = 0.6
WAKE_FOLLOW_S = 1.5
"""After the wake request, the rest of the wake phase starts this much later, so that the
one held request is visibly first."""


class Phase(StrEnum):
    STEADY = "steady"
    BURST = "burst"
    QUIET = "quiet"
    WAKE = "wake"


STEADY_MIX: Mapping[Kind, float] = {
    Kind.CHAT: 0.45,
    Kind.CODE: 0.15,
    Kind.AGENTIC: 0.30,
    Kind.REASONING: 0.10,
}
BURST_MIX: Mapping[Kind, float] = {
    Kind.CHAT: 0.75,
    Kind.CODE: 0.07,
    Kind.AGENTIC: 0.13,
    Kind.REASONING: 0.05,
}


@dataclass(frozen=True, slots=True)
class PhasePlan:
    """One phase: how long, how many requests of which kinds, and what it shows."""

    phase: Phase
    length_s: float
    requests: int
    mix: Mapping[Kind, float]
    title: str


_PHASES: tuple[tuple[Phase, float, float, Mapping[Kind, float], str], ...] = (
    (Phase.STEADY, 0.25, 0.25, STEADY_MIX, "steady mixed traffic: chat, code, agents, reasoning"),
    (Phase.BURST, 0.25, 0.60, BURST_MIX, "a burst of short chat: queues build, replicas follow"),
    (Phase.QUIET, 0.30, 0.03, {Kind.CHAT: 1.0}, "a quiet spell: replicas come down, one to zero"),
    (Phase.WAKE, 0.20, 0.12, STEADY_MIX, "a request for the tier at zero: held, then answered"),
)


@dataclass(frozen=True, slots=True)
class Planned:
    """A request and when it goes out: ``at_s`` after its phase starts (for a session's
    later turns: after the previous turn is answered)."""

    at_s: float
    item: DemoRequest
    phase: Phase
    wake: bool = False
    """A candidate for the wake request: the player sends the one whose kind the tier at
    zero serves, and drops the others."""


@dataclass(frozen=True)
class Script:
    phases: tuple[PhasePlan, ...]
    items: tuple[Planned, ...]

    @property
    def length_s(self) -> float:
        return sum(p.length_s for p in self.phases)

    def of(self, phase: Phase) -> list[Planned]:
        return [p for p in self.items if p.phase is phase]


def split(total: int, shares: Mapping[K, float]) -> dict[K, int]:
    """``total`` split by ``shares`` (largest remainder: the counts add up to ``total``;
    ties go to the key listed first)."""
    weight = sum(shares.values()) or 1.0
    order = list(shares)
    exact = {k: total * s / weight for k, s in shares.items()}
    counts = {k: int(v) for k, v in exact.items()}
    rest = total - sum(counts.values())
    for key in sorted(order, key=lambda k: (counts[k] - exact[k], order.index(k)))[:rest]:
        counts[key] += 1
    return counts


def _phase_counts(requests: int) -> list[int]:
    counts = split(requests, {phase: share for phase, _, share, _, _ in _PHASES})
    return [counts[phase] for phase, *_ in _PHASES]


def build_script(duration_s: float, requests: int, seed: int) -> Script:
    """The script for ``--duration``, ``--requests`` and ``--seed`` (see module docs)."""
    if duration_s < MIN_DURATION_S:
        raise ValueError(f"duration must be at least {MIN_DURATION_S:g}s (got {duration_s:g})")
    if requests < MIN_REQUESTS:
        raise ValueError(f"requests must be at least {MIN_REQUESTS} (got {requests})")
    plans, items = [], []
    for (phase, time_share, _, mix, title), count in zip(
        _PHASES, _phase_counts(requests), strict=True
    ):
        plan = PhasePlan(phase, duration_s * time_share, count, mix, title)
        plans.append(plan)
        items += _plan_phase(plan, seed)
    return Script(tuple(plans), tuple(items))


def _plan_phase(plan: PhasePlan, seed: int) -> list[Planned]:
    rng = random.Random(f"{seed}/{plan.phase}")
    start, items, count = 0.0, [], plan.requests
    if plan.phase is Phase.WAKE:  # one of the candidates is sent: it counts in the phase
        count -= 1
        for kind in Kind:
            (first,) = requests_of(kind, 1, seed=seed, prefix="wake-up")
            items.append(Planned(0.0, first, plan.phase, wake=True))
        start = WAKE_FOLLOW_S
    span = max(plan.length_s - start, 0.1)
    for kind, n in split(count, plan.mix).items():
        made = requests_of(kind, n, seed=seed, prefix=str(plan.phase))
        for session in _sessions(made):
            share = SESSION_START_SHARE if len(session) > 1 else 1.0
            at = start + rng.random() * span * share
            items += [Planned(at, d, plan.phase) for d in session]
    return sorted(items, key=lambda p: (p.at_s, p.item.request.id))


def _sessions(made: Sequence[DemoRequest]) -> list[list[DemoRequest]]:
    by_session: dict[str, list[DemoRequest]] = defaultdict(list)
    for d in made:
        by_session[d.request.session_id].append(d)
    return [sorted(s, key=lambda d: d.request.turn) for s in by_session.values()]
