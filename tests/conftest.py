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
