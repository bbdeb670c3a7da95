"""Fixtures every test folder needs."""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import Iterator

import pytest


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
