"""A tiny in-process HTTP server on 127.0.0.1 for the signal-collection tests."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass

from aiohttp import web


@dataclass
class Route:
    body: str = ""
    status: int = 200
    delay: float = 0.0


@asynccontextmanager
async def serve(
    routes: Mapping[str, Route | Callable[[web.Request], web.Response]],
) -> AsyncIterator[str]:
    """Serve ``routes`` (path -> fixed answer or handler); yields the base URL."""

    async def handle(request: web.Request) -> web.Response:
        route = routes.get(request.path)
        if route is None:
            return web.Response(status=404)
        if callable(route):
            return route(request)
        if route.delay:
            await asyncio.sleep(route.delay)
        return web.Response(text=route.body, status=route.status)

    app = web.Application()
    app.router.add_get("/{tail:.*}", handle)
    runner = web.AppRunner(app, shutdown_timeout=0.1)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    host, port = runner.addresses[0][:2]
    try:
        yield f"http://{host}:{port}"
    finally:
        await runner.cleanup()
