"""Sends the demo's script through the router, phase by phase, on the demo's clock.

Why it exists: the script (:mod:`tierwise.demo.script`) says what goes out when; this
plays it against a live system. Arrivals are open-loop (a request goes out at its time
whether or not earlier ones were answered, up to ``max_in_flight``), because a burst that
waits for answers cannot build the queue the autoscaler reacts to. A session's later turns
go out after the previous one is answered, as an agent's would.

Two decisions need the live system, so the caller passes them in:

* ``before_phase(phase)`` runs before a phase starts: the demo uses it to stretch the
  quiet phase until the tier meant to reach zero has (bounded);
* ``wake_kind(outcomes)`` picks which kind of request wakes that tier: the kind the tier
  served most so far (with ``examples/00-demo``, code or agentic for ``mid-llm``).
"""

from __future__ import annotations

import asyncio
import time
from collections import defaultdict
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field, replace

import aiohttp

from tierwise.demo.script import Phase, PhasePlan, Planned, Script
from tierwise.demo.traffic import Kind, Outcome, send_one

THINK_S = 0.3
"""Between an agent's answer and its next turn."""


@dataclass(frozen=True, slots=True)
class PhaseRun:
    """When a phase actually ran, on the demo's clock (seconds since the traffic began)."""

    phase: Phase
    title: str
    start_s: float
    end_s: float
    requests: int


@dataclass
class PlayerHooks:
    """What the player asks of, and tells, the rest of the demo."""

    before_phase: Callable[[Phase], Awaitable[None]]
    wake_kind: Callable[[Sequence[Outcome]], Kind | None]
    on_phase: Callable[[PhasePlan, float], None] = lambda _plan, _at: None
    on_wake: Callable[[str], None] = lambda _request_id: None


@dataclass
class Player:
    """Plays one script (``clock``: seconds since the traffic began)."""

    url: str
    """The router's base URL (no ``/v1``)."""
    script: Script
    hooks: PlayerHooks
    clock: Callable[[], float]
    max_in_flight: int = 64
    timeout_s: float = 60.0
    outcomes: list[Outcome] = field(default_factory=list)
    phases: list[PhaseRun] = field(default_factory=list)
    wake_request: str | None = None

    async def play(self) -> list[Outcome]:
        limit = asyncio.Semaphore(max(self.max_in_flight, 1))
        timeout = aiohttp.ClientTimeout(total=self.timeout_s)
        connector = aiohttp.TCPConnector(limit=max(self.max_in_flight, 1))
        async with (
            aiohttp.ClientSession(timeout=timeout, connector=connector) as http,
            asyncio.TaskGroup() as group,
        ):
            for plan in self.script.phases:
                await self.hooks.before_phase(plan.phase)
                start = self.clock()
                if self.phases:  # a phase lasts until the next begins (the quiet may stretch)
                    self.phases[-1] = replace(self.phases[-1], end_s=start)
                self.hooks.on_phase(plan, start)
                items = self._items(plan)
                for session in _sessions(items):
                    group.create_task(self._session(http, limit, session, start))
                await asyncio.sleep(max(start + plan.length_s - self.clock(), 0.0))
                run = PhaseRun(plan.phase, plan.title, start, self.clock(), len(items))
                self.phases.append(run)
        return self.outcomes

    def _items(self, plan: PhasePlan) -> list[Planned]:
        items = self.script.of(plan.phase)
        candidates = [p for p in items if p.wake]
        if not candidates:
            return items
        kind = self.hooks.wake_kind(self.outcomes)
        chosen = next((p for p in candidates if p.item.kind is kind), None)
        if chosen is None:
            chosen = next(p for p in candidates if p.item.kind is not Kind.CHAT)
        self.wake_request = chosen.item.request.id
        self.hooks.on_wake(self.wake_request)
        return [p for p in items if not p.wake or p is chosen]

    async def _session(
        self,
        http: aiohttp.ClientSession,
        limit: asyncio.Semaphore,
        turns: Sequence[Planned],
        start: float,
    ) -> None:
        url = self.url.rstrip("/") + "/v1/chat/completions"
        await asyncio.sleep(max(start + turns[0].at_s - self.clock(), 0.0))
        for i, planned in enumerate(turns):
            if i:
                await asyncio.sleep(THINK_S)
            async with limit:
                sent = self.clock()
                began = time.monotonic()
                outcome = await send_one(http, url, planned.item)
                outcome = replace(
                    outcome,
                    sent_s=sent,
                    latency_s=time.monotonic() - began,
                    phase=planned.phase.value,
                )
            self.outcomes.append(outcome)
            if not outcome.ok:
                return  # an agent stops when its turn fails; the failure is counted


def _sessions(items: Sequence[Planned]) -> list[list[Planned]]:
    by_session: dict[str, list[Planned]] = defaultdict(list)
    for planned in items:
        by_session[planned.item.request.session_id].append(planned)
    return [sorted(s, key=lambda p: p.item.request.turn) for s in by_session.values()]
