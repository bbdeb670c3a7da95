"""Fixtures every test folder needs."""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import Iterator

import pytest
from hypothesis import settings

# Hypothesis's per-example deadline (200 ms) measures the machine, not the code: on a
# 2-core CI runner shared with router and engine processes a single slow example failed a
# property test that passes alone. Properties stay; the wall-clock check goes (speed is
# measured by bench/, not by unit tests).
settings.register_profile("tierwise", deadline=None)
settings.load_profile("tierwise")


@pytest.fixture(autouse=True)
def _closed_loop_for_sync_tests(request: pytest.FixtureRequest) -> Iterator[None]:
    """Give sync tests an event loop that is closed afterwards.

    looptime's ``pytest_pyfunc_call`` hook calls ``policy.get_event_loop()`` for every test,
    which silently creates (and leaks) a loop in a sync test run after an async one; the
    leak then fails a later test with ``ResourceWarning: unclosed event loop``.
    """
    if inspect.iscoroutinefunction(request.function):
        yield
        return
    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    try:
        yield
    finally:
        asyncio.set_event_loop(None)
        loop.close()


@pytest.fixture(scope="session")
def operator_recording() -> object:
    """The operator's representative run on the embedded cluster, cluster-wide, with every
    API request recorded (tests/operator_scenario.py; about 15 s, once per session)."""
    import operator_scenario

    return operator_scenario.run()


@pytest.fixture(scope="session")
def namespaced_operator_recording() -> object:
    """The same run with the chart's namespaced mode (charts/tierwise/ci/namespaced-values)."""
    import operator_scenario
    from chart_support import CHART, ci_values

    return operator_scenario.run(ci_values(CHART / "ci" / "namespaced-values.yaml"))
