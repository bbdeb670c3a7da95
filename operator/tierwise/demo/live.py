"""The demo's live view: what is moving, while it moves.

Why it exists: a summary at the end tells what happened; watching it happen is what makes
the control loop believable. Twice a second the view shows, per tier, requests/s, p50/p95
latency and prefix-cache hit rate over the last few seconds (from the answers the client
got) and the cost so far against sending everything to the frontier tier (the router's
counters); per ModelDeployment, desired and ready replicas, the waiting queue on its
engines and the requests the router holds for it; and the scale events as they happen,
with the autoscaler's reasons.

Two renderings, one interface (:class:`View`): :class:`RichView` redraws a panel in
place with ``rich`` when the output is a terminal; :class:`PlainView` prints lines (each
phase, each scale event, a status line every few seconds) for logs, pipes and CI.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import IO, Any, Protocol

from rich.console import Console, Group
from rich.live import Live
from rich.table import Table
from rich.text import Text

from tierwise.demo.observe import ScaleEvent, Snapshot
from tierwise.demo.script import PhasePlan
from tierwise.demo.summary import PolicyView
from tierwise.demo.text import money, ms
from tierwise.demo.traffic import Outcome
from tierwise.sim.driver import percentile

WINDOW_S = 5.0
"""Requests/s and latency percentiles are over the answers of the last this many seconds."""
STATUS_EVERY_S = 5.0


@dataclass(frozen=True, slots=True)
class TierNow:
    tier: str
    rate: float
    p50_s: float | None
    p95_s: float | None
    hit_rate: float | None
    cost: float


def tiers_now(
    outcomes: Sequence[Outcome], snapshot: Snapshot, tiers: Sequence[str], *, now_s: float
) -> list[TierNow]:
    """Per tier: the recent rate and latency, the cache hit rate and cost so far (pure)."""
    recent: dict[str, list[float]] = defaultdict(list)
    prompt: dict[str, int] = defaultdict(int)
    cached: dict[str, int] = defaultdict(int)
    for o in outcomes:
        if not o.ok:
            continue
        prompt[o.tier] += o.prompt_tokens
        cached[o.tier] += o.cached_tokens
        if now_s - WINDOW_S <= o.done_s <= now_s:
            recent[o.tier].append(o.latency_s)
    return [
        TierNow(
            tier=t,
            rate=len(recent[t]) / WINDOW_S,
            p50_s=percentile(recent[t], 50) if recent[t] else None,
            p95_s=percentile(recent[t], 95) if recent[t] else None,
            hit_rate=cached[t] / prompt[t] if prompt[t] else None,
            cost=snapshot.router.cost_by_tier.get(t, 0.0),
        )
        for t in tiers
    ]


def policy_line(status: Mapping[str, Any]) -> str:
    """The RoutingPolicy's status in a line (``kubectl get rp`` and the Ready reason)."""
    view = PolicyView.from_status("", status)
    return (
        f"policy Ready={view.ready} ({view.reason or '-'}), tiers {view.ready_tiers or '-'}, "
        f"routers {view.ready_routers or '-'}, table {view.table_version or '-'}"
    )


def event_line(event: ScaleEvent) -> str:
    return (
        f"[{event.time_s:5.1f}s] {event.model_deployment} {event.from_replicas} -> "
        f"{event.to_replicas} {event.event} ({event.reason}): {event.message}"
    )


class View(Protocol):
    def stage(self, line: str) -> None: ...

    def phase(self, plan: PhasePlan, at_s: float) -> None: ...

    def update(
        self, snapshot: Snapshot, events: Sequence[ScaleEvent], outcomes: Sequence[Outcome]
    ) -> None: ...

    def stop(self) -> None: ...


class PlainView:
    """Lines only: stages, phases, scale events, and a status line every few seconds."""

    def __init__(self, out: IO[str], tiers: Sequence[str]) -> None:
        self.out, self.tiers = out, list(tiers)
        self._next_status = STATUS_EVERY_S
        self._policy = ""

    def _print(self, line: str) -> None:
        print(line, file=self.out, flush=True)

    def stage(self, line: str) -> None:
        self._print(line)

    def phase(self, plan: PhasePlan, at_s: float) -> None:
        self._print(
            f"[{at_s:5.1f}s] phase {plan.phase}: {plan.title} "
            f"({plan.requests} requests in {plan.length_s:.0f}s)"
        )

    def update(
        self, snapshot: Snapshot, events: Sequence[ScaleEvent], outcomes: Sequence[Outcome]
    ) -> None:
        for event in events:
            self._print(event_line(event))
        policy = policy_line(snapshot.policy)
        if policy != self._policy:
            self._policy = policy
            self._print(f"[{snapshot.time_s:5.1f}s] {policy}")
        if snapshot.time_s < self._next_status:
            return
        self._next_status = snapshot.time_s + STATUS_EVERY_S
        tiers = tiers_now(outcomes, snapshot, self.tiers, now_s=snapshot.time_s)
        parts = [
            f"{t.tier} {t.rate:.1f}/s p50 {'-' if t.p50_s is None else ms(t.p50_s)}" for t in tiers
        ]
        router = snapshot.router
        self._print(
            f"[{snapshot.time_s:5.1f}s] "
            + " | ".join(parts)
            + f" | cost {money(router.cost)} vs {money(router.baseline)} all-frontier"
        )
        replicas = ", ".join(
            f"{name} {s.ready}/{s.desired} ready, queue {_queue(s.queue)}"
            + (f", held {router.pending.get(name, 0):.0f}" if router.pending.get(name) else "")
            for name, s in snapshot.deployments.items()
        )
        self._print(f"         replicas: {replicas}")

    def stop(self) -> None:
        return


def _queue(value: float | None) -> str:
    return "-" if value is None else f"{value:.0f}"


class RichView:
    """A panel redrawn in place (``rich``), for terminals."""

    def __init__(self, out: IO[str], tiers: Sequence[str]) -> None:
        self.console = Console(file=out)
        self.tiers = list(tiers)
        self.events: list[ScaleEvent] = []
        self.plan: PhasePlan | None = None
        self._live: Live | None = None

    def stage(self, line: str) -> None:
        self.console.print(line, highlight=False, markup=False)

    def phase(self, plan: PhasePlan, at_s: float) -> None:
        self.plan = plan
        if self._live is None:
            self._live = Live(console=self.console, refresh_per_second=4, transient=False)
            self._live.start()

    def update(
        self, snapshot: Snapshot, events: Sequence[ScaleEvent], outcomes: Sequence[Outcome]
    ) -> None:
        self.events += events
        if self._live is not None:
            self._live.update(self._render(snapshot, outcomes))

    def stop(self) -> None:
        if self._live is not None:
            self._live.stop()
            self._live = None

    def _render(self, snapshot: Snapshot, outcomes: Sequence[Outcome]) -> Group:
        router = snapshot.router
        title = f"t={snapshot.time_s:5.1f}s"
        if self.plan is not None:
            title += f"  phase [bold]{self.plan.phase}[/]: {self.plan.title}"
        saved = 1 - router.cost / router.baseline if router.baseline else 0.0
        policy = snapshot.policy
        tiers = Table(title="tiers (simulated engines)", title_justify="left", expand=False)
        for header in ("tier", "req/s", "p50", "p95", "cache hit", "cost so far"):
            tiers.add_column(header, justify="left" if header == "tier" else "right")
        for t in tiers_now(outcomes, snapshot, self.tiers, now_s=snapshot.time_s):
            tiers.add_row(
                t.tier,
                f"{t.rate:.1f}",
                "-" if t.p50_s is None else ms(t.p50_s),
                "-" if t.p95_s is None else ms(t.p95_s),
                "-" if t.hit_rate is None else f"{t.hit_rate:.0%}",
                money(t.cost),
            )
        replicas = Table(title="ModelDeployments", title_justify="left")
        for header in ("name", "desired", "ready", "queue", "held by router", "phase"):
            replicas.add_column(header, justify="left" if header in ("name", "phase") else "right")
        for name, s in snapshot.deployments.items():
            held = router.pending.get(name, 0.0)
            replicas.add_row(
                name, str(s.desired), str(s.ready), _queue(s.queue), f"{held:.0f}", s.phase
            )
        return Group(
            Text.from_markup(title),
            Text(policy_line(policy)),
            tiers,
            Text(
                f"cost so far {money(router.cost)} vs {money(router.baseline)} if all went to "
                f"the frontier tier ({saved:.0%} saved)"
            ),
            replicas,
            Text("scale events:" if self.events else "scale events: none yet", style="bold"),
            *(Text(event_line(e)) for e in self.events[-6:]),
        )


def make_view(out: IO[str], tiers: Sequence[str]) -> View:
    """A :class:`RichView` on a terminal, else a :class:`PlainView`."""
    isatty = getattr(out, "isatty", None)
    if isatty is not None and isatty():
        return RichView(out, tiers)
    return PlainView(out, tiers)
