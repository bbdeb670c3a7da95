"""Fixtures of the router integration tests (helpers live in ``router_harness``).

``start_router(policy, endpoints, *flags)`` starts a router process (stopped after the
test); ``sims`` is a session-wide set of zero-latency simulators (two replicas of
``small-md``, one of ``large-md``); tests that kill or slow a replica start their own with
``start_sims``.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest
from router_harness import RouterProcess, Sims, StartRouter, launch_router, sim

from tierwise.sim.config import SimConfig
from tierwise.sim.process import EngineProcess, running_engines


@pytest.fixture
def start_router(tmp_path: Path) -> Iterator[StartRouter]:
    started: list[RouterProcess] = []

    def start(
        document: dict[str, Any], endpoints: dict[str, list[str]], *args: str
    ) -> RouterProcess:
        router = launch_router(tmp_path, document, endpoints, *args)
        started.append(router)
        return router

    try:
        yield start
    finally:
        for router in started:
            router.stop()


@pytest.fixture(scope="session")
def sims() -> Iterator[Sims]:
    with running_engines([sim("small-md"), sim("small-md"), sim("large-md")]) as engines:
        yield Sims(engines[:2], engines[2])


@pytest.fixture
def start_sims() -> Iterator[Callable[[Sequence[SimConfig]], list[EngineProcess]]]:
    stack = contextlib.ExitStack()

    def start(configs: Sequence[SimConfig]) -> list[EngineProcess]:
        return stack.enter_context(running_engines(configs))

    with stack:
        yield start
