"""A background task that lives exactly as long as a ``with`` block.

Why it exists: the router's lifespan owns every background task (engine scraping, API
watches); each must be cancelled and awaited when its owner stops, never left running.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Coroutine
from typing import Any


@contextlib.asynccontextmanager
async def background(work: Coroutine[Any, Any, None]) -> AsyncIterator[None]:
    """Run ``work`` as a task for the duration of the block; cancel and await it after."""
    task = asyncio.get_running_loop().create_task(work)
    try:
        yield
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
