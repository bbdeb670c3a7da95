"""``tierwise sim``: run a simulated engine, or send a workload to one.

Why it exists: the local cluster spawns simulators from Deployment specs, and people
benchmark by hand, so every parameter of :class:`~tierwise.sim.config.SimConfig` is a
flag here (``--profile`` picks a preset, single flags override it), and
:func:`engine_args` turns a config back into flags for :mod:`tierwise.sim.process`.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import sys
import time
from dataclasses import asdict
from pathlib import Path

import aiohttp
import orjson
from aiohttp import web

from tierwise.sim.app import create_app, serve_engine
from tierwise.sim.config import EngineKind, FaultConfig, SimConfig
from tierwise.sim.driver import DriveOptions, Summary, drive, summarize
from tierwise.sim.latency import PROFILES, LatencyParams, Profile
from tierwise.sim.traffic import Request, Workload, generate

# LatencyParams field -> flag; defaults come from the profile.
_LATENCY_FLAGS: dict[str, type] = {
    "prefill_base_ms": float,
    "prefill_ms_per_token": float,
    "decode_ms_per_token": float,
    "decode_ms_per_running": float,
    "max_running": int,
    "max_queue": int,
    "kv_capacity_tokens": int,
}


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add ``sim engine`` and ``sim traffic`` to the ``tierwise`` command."""
    sim = subparsers.add_parser("sim", help="engine simulator and traffic generator")
    sim.set_defaults(handler=lambda _args: _usage(sim))
    commands = sim.add_subparsers(dest="sim_command", metavar="SUBCOMMAND")
    engine = commands.add_parser("engine", help="serve a simulated vLLM or SGLang engine")
    add_engine_arguments(engine)
    engine.set_defaults(handler=run_engine)
    traffic = commands.add_parser("traffic", help="send a workload and print a summary")
    _add_traffic_arguments(traffic)
    traffic.set_defaults(handler=run_traffic)
    from tierwise.sim import tiny_model  # imports nothing heavy until a model is built

    tiny = commands.add_parser("tiny-model", help="build a tiny random-weight model folder")
    tiny_model.add_arguments(tiny)
    tiny.set_defaults(handler=tiny_model.run)


def _usage(parser: argparse.ArgumentParser) -> int:
    parser.print_help()
    return 2


def add_engine_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--engine", choices=[e.value for e in EngineKind], default="vllm")
    parser.add_argument("--model", default="sim-model", help="served model name")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--profile",
        choices=[p.value for p in Profile],
        default="mid",
        help="latency preset; the flags below override single values",
    )
    for name, kind in _LATENCY_FLAGS.items():
        parser.add_argument("--" + name.replace("_", "-"), type=kind, default=None)
    parser.add_argument("--context-length", type=int, default=32_768)
    parser.add_argument("--block-size", type=int, default=16, help="prefix-cache block tokens")
    parser.add_argument("--output-tokens-min", type=int, default=16)
    parser.add_argument("--output-tokens-max", type=int, default=128)
    parser.add_argument(
        "--model-path",
        type=Path,
        default=None,
        help="model folder the info endpoints report (default: a temp dir)",
    )
    parser.add_argument("--fault-error-status", type=int, default=500)
    parser.add_argument("--fault-error-rate", type=float, default=0.0)
    parser.add_argument("--fault-extra-latency-s", type=float, default=0.0)
    parser.add_argument("--fault-hang", action="store_true")
    parser.add_argument("--fault-fail-health", action="store_true")


def config_from_args(args: argparse.Namespace) -> SimConfig:
    """The :class:`SimConfig` the engine flags describe."""
    overrides = {
        name: getattr(args, name) for name in _LATENCY_FLAGS if getattr(args, name) is not None
    }
    latency = dataclasses.replace(PROFILES[Profile(args.profile)], **overrides)
    faults = FaultConfig(
        error_status=args.fault_error_status,
        error_rate=args.fault_error_rate,
        extra_latency_s=args.fault_extra_latency_s,
        hang=args.fault_hang,
        fail_health=args.fault_fail_health,
    )
    return SimConfig(
        engine=EngineKind(args.engine),
        model=args.model,
        seed=args.seed,
        latency=latency,
        context_length=args.context_length,
        block_size=args.block_size,
        output_tokens_min=args.output_tokens_min,
        output_tokens_max=args.output_tokens_max,
        model_path=args.model_path,
        faults=faults,
    )


def engine_args(config: SimConfig) -> list[str]:
    """Flags of ``tierwise sim engine`` that reproduce ``config`` (host/port excluded)."""
    args = ["--engine", config.engine.value, "--model", config.model, "--seed", str(config.seed)]
    latency: LatencyParams = config.latency
    for name in _LATENCY_FLAGS:
        args += ["--" + name.replace("_", "-"), repr(getattr(latency, name))]
    args += [
        "--context-length",
        str(config.context_length),
        "--block-size",
        str(config.block_size),
        "--output-tokens-min",
        str(config.output_tokens_min),
        "--output-tokens-max",
        str(config.output_tokens_max),
    ]
    if config.model_path is not None:
        args += ["--model-path", str(config.model_path)]
    faults = config.faults
    args += [
        "--fault-error-status",
        str(faults.error_status),
        "--fault-error-rate",
        repr(faults.error_rate),
        "--fault-extra-latency-s",
        repr(faults.extra_latency_s),
    ]
    args += ["--fault-hang"] if faults.hang else []
    args += ["--fault-fail-health"] if faults.fail_health else []
    return args


def run_engine(args: argparse.Namespace) -> int:
    try:
        config = config_from_args(args)
    except ValueError as exc:
        print(f"tierwise sim engine: {exc}", file=sys.stderr)
        return 2
    print(
        f"tierwise sim engine: {config.engine} model {config.model!r} "
        f"on http://{args.host}:{args.port} (profile {args.profile})",
        flush=True,
    )
    web.run_app(create_app(config), host=args.host, port=args.port, print=None, access_log=None)
    return 0


def _add_traffic_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--url", default=None, help="base URL (no /v1); default: start an in-process simulator"
    )
    parser.add_argument("--workload", choices=[w.value for w in Workload], default="chat")
    parser.add_argument("-n", "--requests", type=int, default=100)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--model", default=None, help="default: the server's first model")
    parser.add_argument(
        "--profile",
        choices=[p.value for p in Profile],
        default="small",
        help="latency preset of the in-process simulator (without --url)",
    )
    parser.add_argument("--no-stream", action="store_true")
    parser.add_argument("--json", action="store_true", help="print the summary as JSON")


def run_traffic(args: argparse.Namespace) -> int:
    summary = asyncio.run(_traffic(args))
    print(orjson.dumps(asdict(summary)).decode() if args.json else summary.format())
    return 0 if summary.errors == 0 else 1


async def _traffic(args: argparse.Namespace) -> Summary:
    requests = generate(Workload(args.workload), args.requests, args.seed)
    if args.url is not None:
        return await _drive(args, args.url, requests)
    config = SimConfig(
        model=args.model or "sim-model", seed=args.seed, latency=PROFILES[Profile(args.profile)]
    )
    async with serve_engine(config) as url:
        return await _drive(args, url, requests)


async def _drive(args: argparse.Namespace, url: str, requests: list[Request]) -> Summary:
    model = args.model or await _first_model(url)
    options = DriveOptions(model=model, concurrency=args.concurrency, stream=not args.no_stream)
    began = time.monotonic()
    results = await drive(url, requests, options)
    return summarize(results, time.monotonic() - began)


async def _first_model(url: str) -> str:
    async with aiohttp.ClientSession() as http, http.get(url.rstrip("/") + "/v1/models") as r:
        r.raise_for_status()
        body = await r.json()
    return str(body["data"][0]["id"])
