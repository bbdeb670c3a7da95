"""The simulator's HTTP server: the OpenAI API, engine info endpoints, metrics, faults.

Why it exists: routers, peers (sglang-router, vllm-router) and the official ``openai``
client talk to the simulator exactly as to a real vLLM or SGLang server. ``create_app``
builds everything for one replica (registry, engine, routes; no globals) and
``serve_engine`` runs it in-process for tests. Request bodies and response shapes live in
``openai_api``; the latency model in ``engine``.

Admin endpoints (not in real engines): ``POST /sim/faults`` with a JSON object of
:class:`~tierwise.sim.config.FaultConfig` fields replaces the injected faults,
``DELETE /sim/faults`` clears them, ``GET /sim/faults`` and ``GET /sim/state`` report.
"""

from __future__ import annotations

import itertools
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import aclosing, asynccontextmanager
from dataclasses import asdict, fields
from typing import Any

import orjson
from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from tierwise.sim import info
from tierwise.sim.config import FaultConfig, SimConfig
from tierwise.sim.engine import Engine, Generation, InjectedFaultError, QueueFullError
from tierwise.sim.metrics import create_metrics
from tierwise.sim.openai_api import (
    ApiError,
    Endpoint,
    GenerationRequest,
    ResponseIds,
    chunk,
    error_body,
    full_response,
    parse_generation,
    usage,
    usage_chunk,
)

ENGINE = web.AppKey("engine", Engine)
_IDS: web.AppKey[itertools.count[int]] = web.AppKey("ids")
_FAULT_TYPES = {429: "RateLimitError", 503: "ServiceUnavailableError", 504: "TimeoutError"}

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def json_response(body: object, status: int = 200) -> web.Response:
    return web.Response(body=orjson.dumps(body), status=status, content_type="application/json")


def _error(engine: Engine, error: ApiError) -> web.Response:
    return json_response(error_body(engine.config.engine, error), status=error.status)


def create_app(config: SimConfig) -> web.Application:
    """One simulated replica as an aiohttp application."""
    app = web.Application()
    app[ENGINE] = Engine(config, create_metrics(config))
    app[_IDS] = itertools.count(1)
    app.on_startup.append(_on_startup)
    app.router.add_post("/v1/chat/completions", _generation_handler(Endpoint.CHAT))
    app.router.add_post("/v1/completions", _generation_handler(Endpoint.COMPLETION))
    app.router.add_get("/v1/models", _models)
    app.router.add_get("/health", _health)
    app.router.add_get("/health_generate", _health)
    app.router.add_get("/metrics", _metrics)
    for path in ("/server_info", "/get_server_info"):
        app.router.add_get(path, _server_info)
    for path in ("/model_info", "/get_model_info"):
        app.router.add_get(path, _model_info)
    app.router.add_get("/sim/faults", _get_faults)
    app.router.add_post("/sim/faults", _set_faults)
    app.router.add_delete("/sim/faults", _clear_faults)
    app.router.add_get("/sim/state", _state)
    return app


async def _on_startup(app: web.Application) -> None:
    info.ensure_model_dir(app[ENGINE].config)


@asynccontextmanager
async def serve_engine(
    config: SimConfig, *, host: str = "127.0.0.1", port: int = 0
) -> AsyncIterator[str]:
    """Serve one simulated replica in this event loop; yield its base URL (no ``/v1``)."""
    runner = web.AppRunner(create_app(config), access_log=None)
    await runner.setup()
    try:
        site = web.TCPSite(runner, host, port)
        await site.start()
        bound_port = runner.addresses[0][1]
        yield f"http://{host}:{bound_port}"
    finally:
        await runner.cleanup()


def _generation_handler(endpoint: Endpoint) -> Handler:
    async def handler(request: web.Request) -> web.StreamResponse:
        engine = request.app[ENGINE]
        arrival = time.monotonic()
        try:
            body = orjson.loads(await request.read())
        except orjson.JSONDecodeError as exc:
            return _error(engine, ApiError(400, f"Malformed JSON in request body: {exc}"))
        try:
            req = parse_generation(endpoint, body, engine.config)
            await engine.apply_faults()
            gen = engine.plan(
                req.prompt_tokens, max_tokens=req.max_tokens, ignore_eos=req.ignore_eos
            )
            gen.arrival = arrival
            ids = _response_ids(request.app, req)
            async with engine.admitted():
                if req.stream:
                    return await _stream(request, engine, req, gen, ids)
                return await _complete(engine, gen, ids)
        except ApiError as exc:
            return _error(engine, exc)
        except QueueFullError:
            message = "The waiting queue is full; retry later."
            return _error(engine, ApiError(503, message, type_="ServiceUnavailableError"))
        except InjectedFaultError as exc:
            type_ = _FAULT_TYPES.get(exc.status, "InternalServerError")
            return _error(engine, ApiError(exc.status, str(exc), type_=type_))

    return handler


def _response_ids(app: web.Application, req: GenerationRequest) -> ResponseIds:
    counter = app[_IDS]
    prefix = "chatcmpl" if req.endpoint is Endpoint.CHAT else "cmpl"
    return ResponseIds(
        id=f"{prefix}-sim{next(counter):08d}",
        created=int(time.time()),
        model=req.model,
        endpoint=req.endpoint,
    )


def _usage(gen: Generation) -> dict[str, Any]:
    return usage(len(gen.prompt_tokens), gen.completion_tokens, gen.cached_tokens)


async def _complete(engine: Engine, gen: Generation, ids: ResponseIds) -> web.Response:
    async with aclosing(engine.run(gen)) as pieces:
        text = "".join([piece async for piece in pieces])
    return json_response(full_response(ids, text, gen.finish_reason, _usage(gen)))


async def _stream(
    request: web.Request,
    engine: Engine,
    req: GenerationRequest,
    gen: Generation,
    ids: ResponseIds,
) -> web.StreamResponse:
    response = web.StreamResponse(
        headers={"Content-Type": "text/event-stream", "Cache-Control": "no-cache"}
    )
    await response.prepare(request)
    try:
        async with aclosing(engine.run(gen)) as pieces:
            first = True
            async for piece in pieces:
                await _send(response, chunk(ids, piece, first=first))
                first = False
        await _send(response, chunk(ids, None, finish_reason=gen.finish_reason))
        if req.include_usage:
            await _send(response, usage_chunk(ids, _usage(gen)))
        await response.write(b"data: [DONE]\n\n")
        await response.write_eof()
    except ConnectionResetError:
        pass  # the client went away; the slot is released by the context managers
    return response


async def _send(response: web.StreamResponse, payload: dict[str, Any]) -> None:
    await response.write(b"data: " + orjson.dumps(payload) + b"\n\n")


async def _models(request: web.Request) -> web.Response:
    return json_response(info.models(request.app[ENGINE].config))


async def _health(request: web.Request) -> web.Response:
    return web.Response(status=503 if request.app[ENGINE].faults.fail_health else 200)


async def _metrics(request: web.Request) -> web.Response:
    payload = generate_latest(request.app[ENGINE].metrics.registry)
    return web.Response(body=payload, headers={"Content-Type": CONTENT_TYPE_LATEST})


async def _server_info(request: web.Request) -> web.Response:
    engine = request.app[ENGINE]
    return json_response(
        info.server_info(engine.config, running=engine.running, waiting=engine.waiting)
    )


async def _model_info(request: web.Request) -> web.Response:
    return json_response(info.model_info(request.app[ENGINE].config))


async def _get_faults(request: web.Request) -> web.Response:
    return json_response(asdict(request.app[ENGINE].faults))


async def _set_faults(request: web.Request) -> web.Response:
    engine = request.app[ENGINE]
    try:
        body = orjson.loads(await request.read())
        faults = parse_faults(body)
    except (orjson.JSONDecodeError, ValueError, TypeError) as exc:
        return _error(engine, ApiError(400, f"Invalid fault configuration: {exc}"))
    engine.set_faults(faults)
    return json_response(asdict(faults))


async def _clear_faults(request: web.Request) -> web.Response:
    engine = request.app[ENGINE]
    engine.set_faults(FaultConfig())
    return json_response(asdict(engine.faults))


async def _state(request: web.Request) -> web.Response:
    engine = request.app[ENGINE]
    return json_response(
        {
            "engine": engine.config.engine.value,
            "model": engine.config.model,
            "waiting": engine.waiting,
            "running": engine.running,
            "kv_used_tokens": engine.kv_used_tokens,
            "cache": asdict(engine.cache.stats()),
            "faults": asdict(engine.faults),
        }
    )


def parse_faults(body: object) -> FaultConfig:
    """A :class:`FaultConfig` from a JSON object; unknown keys and wrong types are errors."""
    if not isinstance(body, dict):
        raise TypeError("expected a JSON object")
    known = {f.name: f.type for f in fields(FaultConfig)}
    unknown = set(body) - set(known)
    if unknown:
        raise ValueError(f"unknown fields {sorted(unknown)}; known: {sorted(known)}")
    checks: dict[str, tuple[type, ...]] = {
        "error_status": (int,),
        "error_rate": (int, float),
        "extra_latency_s": (int, float),
        "hang": (bool,),
        "fail_health": (bool,),
    }
    for key, value in body.items():
        if isinstance(value, bool) != (checks[key] == (bool,)) or not isinstance(
            value, checks[key]
        ):
            raise TypeError(f"{key} must be {' or '.join(t.__name__ for t in checks[key])}")
    return FaultConfig(**body)
