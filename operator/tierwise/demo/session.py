"""One run of the traffic script against the live system, watched while it runs.

Why it exists: sending the script (:class:`~tierwise.demo.player.Player`) and watching the
system (:class:`~tierwise.demo.observe.Observer`) happen at once on one event loop, and
two of the player's decisions depend on what the observer sees: the quiet phase lasts
until the tier meant to reach zero has (its Deployment wants no replica and the router's
table holds none), and the wake-up request is of the kind that tier served. This module
ties them together, feeds the live view, ends the run when the operator dies, and says
what became of the wake-up request (:class:`~tierwise.demo.summary.WakeView`).
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

from tierwise.demo.live import View
from tierwise.demo.manifests import DemoError
from tierwise.demo.observe import Observer, ScaleEvent, Snapshot
from tierwise.demo.player import Player, PlayerHooks
from tierwise.demo.script import Phase, Script
from tierwise.demo.stages import Running
from tierwise.demo.summary import WakeView
from tierwise.demo.traffic import Kind, Outcome


@dataclass(frozen=True)
class SessionOptions:
    zero_wait_s: float = 30.0
    """How much longer than planned the quiet phase may wait for a tier to reach zero."""
    sample_s: float = 0.5
    max_in_flight: int = 64


@dataclass
class Played:
    player: Player
    observer: Observer
    wall_s: float
    wake: WakeView | None = None


class Session:
    """Plays ``script`` through the router of ``run`` (call :meth:`play` once)."""

    def __init__(self, run: Running, script: Script, options: SessionOptions, view: View) -> None:
        self.run, self.options, self.view = run, options, view
        self.targets = run.manifests.to_zero()
        """ModelDeployments that may reach zero; the first is the one the demo wakes."""
        self._t0 = time.monotonic()
        self._zero_at_wake = False
        self._held_before_wake = 0.0
        self.observer = Observer(
            api_url=run.cluster.url,
            namespace=run.namespace,
            deployments=run.manifests.engines(),
            policy=run.manifests.policy_name,
            clock=self.clock,
        )
        hooks = PlayerHooks(
            before_phase=self._before_phase,
            wake_kind=self._wake_kind,
            on_phase=view.phase,
            on_wake=self._on_wake,
        )
        self.player = Player(
            run.router_url, script, hooks, self.clock, max_in_flight=options.max_in_flight
        )

    def clock(self) -> float:
        """Seconds since the traffic began (the summary's and the report's time axis)."""
        return time.monotonic() - self._t0

    async def play(self) -> Played:
        async with self.observer:
            self._t0 = time.monotonic()
            await self.observer.poll()
            await self.observer.new_events()  # what happened before the traffic is not news
            stop = asyncio.Event()

            async def play() -> None:
                try:
                    await self.player.play()
                finally:
                    stop.set()

            try:
                async with asyncio.TaskGroup() as group:
                    group.create_task(
                        self.observer.run(stop, self._on_snapshot, self.options.sample_s)
                    )
                    group.create_task(play())
            except ExceptionGroup as failed:
                raise first_error(failed) from None
            self._on_snapshot(await self.observer.poll(), await self.observer.new_events())
            wall = self.clock()
            self.observer.close_timelines(wall)
        return Played(self.player, self.observer, wall, self._wake_view())

    def _on_snapshot(self, snapshot: Snapshot, events: list[ScaleEvent]) -> None:
        self.view.update(snapshot, events, self.player.outcomes)
        if self.run.operator is not None:
            self.run.operator.check()  # a crashed operator ends the demo with its log

    async def _before_phase(self, phase: Phase) -> None:
        if phase is not Phase.WAKE or not self.targets:
            return
        name, limit = self.targets[0], self.options.zero_wait_s
        if self._at_zero(name):
            return
        self.view.stage(
            f"      (the quiet phase goes on until {name} is at zero, at most {limit:.0f}s)"
        )
        deadline = time.monotonic() + limit
        while not self._at_zero(name) and time.monotonic() < deadline:  # noqa: ASYNC110
            await asyncio.sleep(0.25)  # the observer's readings decide, not an event

    def _at_zero(self, name: str) -> bool:
        latest = self.observer.latest
        if latest is None or name not in latest.deployments:
            return False
        return latest.deployments[name].desired == 0 and not latest.router.endpoints.get(name)

    def _wake_kind(self, outcomes: Sequence[Outcome]) -> Kind | None:
        """The kind of request the tier at zero served most."""
        if not self.targets:
            return None
        kinds = Counter(o.kind for o in outcomes if o.backend == self.targets[0] and o.ok)
        return kinds.most_common(1)[0][0] if kinds else None

    def _on_wake(self, _request_id: str) -> None:
        latest = self.observer.latest
        state = latest.deployments.get(self.targets[0]) if latest and self.targets else None
        self._zero_at_wake = state is not None and state.desired == 0
        self._held_before_wake = self._held_total(latest)

    def _held_total(self, snapshot: Snapshot | None) -> float:
        if snapshot is None or not self.targets:
            return 0.0
        return snapshot.router.held_total.get(self.targets[0], 0.0)

    def _wake_view(self) -> WakeView | None:
        rid = self.player.wake_request
        outcome = next((o for o in self.player.outcomes if o.request_id == rid), None)
        if outcome is None or not self.targets:
            return None
        # The router's held-requests counter moved past its reading from before the wake
        # request was sent: that request, the first for the tier at zero, was held (a poll
        # of the pending gauge misses a hold shorter than the poll interval).
        counted = self._held_total(self.observer.latest) - self._held_before_wake >= 1
        held = counted or any(
            name == self.targets[0] and value >= 1 and outcome.sent_s <= t <= outcome.done_s + 0.5
            for t, name, value in self.observer.holds
        )
        return WakeView(
            model_deployment=self.targets[0],
            request_id=outcome.request_id,
            kind=outcome.kind.value,
            tier=outcome.tier,
            status=outcome.status,
            sent_s=round(outcome.sent_s, 2),
            latency_s=round(outcome.latency_s, 2),
            held=held,
            from_zero=self._zero_at_wake,
        )


def first_error(group: BaseExceptionGroup[BaseException]) -> BaseException:
    """The error to report from a failed task group (a DemoError if there is one)."""
    leaves: list[BaseException] = []
    pending: list[BaseException] = [group]
    while pending:
        current = pending.pop(0)
        if isinstance(current, BaseExceptionGroup):
            pending.extend(current.exceptions)
        else:
            leaves.append(current)
    return next((e for e in leaves if isinstance(e, DemoError)), leaves[0])
