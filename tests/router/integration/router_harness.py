"""Helpers of the router integration tests: policies, simulator configs and a router
process (``launch_router`` runs ``python -m tierwise.cli router --policy ... --endpoints
...`` on a free port and waits for ``/healthz``; ``spawn_router`` runs it with any
arguments and environment)."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import os
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from aiohttp import web
from prometheus_client.parser import text_string_to_metric_families

from tierwise.sim.config import SimConfig
from tierwise.sim.latency import PROFILES, Profile
from tierwise.sim.process import EngineProcess, free_port, stop_process_group

ZERO = PROFILES[Profile.ZERO]
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def sim(model: str, **latency: Any) -> SimConfig:
    """A simulator config serving ``model`` with zero latency unless overridden."""
    return SimConfig(
        model=model,
        latency=dataclasses.replace(ZERO, **latency),
        output_tokens_min=4,
        output_tokens_max=24,
    )


def policy(
    tiers: Sequence[dict[str, Any]],
    *,
    rules: Sequence[dict[str, Any]] = (),
    models: Sequence[str] = ("auto",),
    **spec: Any,
) -> dict[str, Any]:
    """A RoutingPolicy document."""
    body: dict[str, Any] = {"models": list(models), "tiers": list(tiers), "rules": list(rules)}
    body.update(spec)
    return {
        "apiVersion": "tierwise.dev/v1alpha1",
        "kind": "RoutingPolicy",
        "metadata": {"name": "test"},
        "spec": body,
    }


def tier(
    name: str, deployment: str, price_in: float, price_out: float, **extra: Any
) -> dict[str, Any]:
    return {
        "name": name,
        "backends": [{"modelDeployment": deployment}],
        "price": {"inputPerMillionTokens": price_in, "outputPerMillionTokens": price_out},
        **extra,
    }


@dataclass
class RouterProcess:
    url: str
    process: subprocess.Popen[bytes]
    log_path: Path
    policy_path: Path
    endpoints_path: Path

    @property
    def base_url(self) -> str:
        return self.url + "/v1"

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def stop(self, timeout_s: float = 10.0) -> None:
        stop_process_group(self.process, timeout_s)

    def metrics_text(self) -> str:
        with urllib.request.urlopen(self.url + "/metrics", timeout=5) as response:
            text: str = response.read().decode()
            return text

    def metric(self, name: str, **labels: str) -> float:
        """Sum of the samples named ``name`` whose labels include ``labels``."""
        total = 0.0
        for family in text_string_to_metric_families(self.metrics_text()):
            for sample in family.samples:
                if sample.name == name and all(
                    sample.labels.get(k) == v for k, v in labels.items()
                ):
                    total += sample.value
        return total

    def metric_reaches(
        self, name: str, value: float, timeout_s: float = 5.0, **labels: str
    ) -> float:
        """``metric`` once it equals ``value`` (or its last reading after ``timeout_s``).

        A streamed answer is counted after its last byte leaves the router, so a client
        that has read ``[DONE]`` can ask for the metrics a moment before the count moves.
        """
        deadline = time.monotonic() + timeout_s
        while True:
            seen = self.metric(name, **labels)
            if seen == value or time.monotonic() > deadline:
                return seen
            time.sleep(0.02)

    def write_endpoints(self, endpoints: dict[str, list[str]]) -> None:
        _write_atomic(self.endpoints_path, yaml.safe_dump(endpoints))

    def write_policy(self, document: dict[str, Any] | str) -> None:
        text = document if isinstance(document, str) else yaml.safe_dump(document)
        _write_atomic(self.policy_path, text)


def _write_atomic(path: Path, text: str) -> None:
    tmp = path.with_suffix(".tmp")
    tmp.write_text(text)
    os.replace(tmp, path)
    # make the change visible to an mtime poll even within the same clock tick
    st = path.stat()
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns + 1_000_000))


def launch_router(
    directory: Path, document: dict[str, Any], endpoints: dict[str, list[str]], *args: str
) -> RouterProcess:
    """Start a router process for ``document`` and ``endpoints``; the caller stops it."""
    n = len(list(directory.glob("router*.log")))
    policy_path = directory / f"policy{n}.yaml"
    endpoints_path = directory / f"endpoints{n}.yaml"
    policy_path.write_text(yaml.safe_dump(document, allow_unicode=True))
    endpoints_path.write_text(yaml.safe_dump(endpoints))
    source = ["--policy", str(policy_path), "--endpoints", str(endpoints_path)]
    return spawn_router(directory, [*source, *args], policy_path, endpoints_path)


def spawn_router(
    directory: Path,
    args: Sequence[str],
    policy_path: Path | None = None,
    endpoints_path: Path | None = None,
    *,
    env: dict[str, str] | None = None,
) -> RouterProcess:
    """Start ``tierwise router ARGS`` on a free port and wait for /healthz; the caller stops
    it. ``policy_path``/``endpoints_path``: the files ``write_policy``/``write_endpoints``
    rewrite."""
    n = len(list(directory.glob("router*.log")))
    port = free_port()
    log_path = directory / f"router{n}.log"
    with open(log_path, "wb") as log:
        process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "tierwise.cli",
                "router",
                "--port",
                str(port),
                "--log-level",
                "info",
                "--scrape-interval",
                "0.2",
                *args,
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            env={**os.environ, **(env or {})},
        )
    router = RouterProcess(
        f"http://127.0.0.1:{port}",
        process,
        log_path,
        policy_path or directory / "no-policy",
        endpoints_path or directory / "no-endpoints",
    )
    try:
        wait_healthy(router)
    except BaseException:
        router.stop()
        raise
    return router


def wait_healthy(router: RouterProcess, timeout_s: float = 20.0) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if router.process.poll() is not None:
            raise RuntimeError(f"router exited: {router.log()}")
        try:
            with urllib.request.urlopen(router.url + "/healthz", timeout=1) as response:
                if response.status == 200:
                    return
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            pass
        time.sleep(0.05)
    raise TimeoutError(f"router not healthy: {router.log()}")


@dataclass
class Sims:
    small: list[EngineProcess]
    large: EngineProcess

    def endpoints(self) -> dict[str, list[str]]:
        return {"small-md": [e.url for e in self.small], "large-md": [self.large.url]}


async def until(check: Callable[[], object], what: str, timeout_s: float = 10.0) -> None:
    """Wait, on the running loop, until ``check()`` holds; fail naming ``what``."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout_s
    while loop.time() < deadline:
        if check():
            return
        await asyncio.sleep(0.01)
    raise AssertionError(f"timed out waiting for {what}")


def completion(model: str) -> dict[str, Any]:
    """A minimal chat completion answer, as a provider sends it."""
    message = {"role": "assistant", "content": "hi"}
    return {
        "id": "x",
        "object": "chat.completion",
        "model": model,
        "choices": [{"index": 0, "message": message, "finish_reason": "stop"}],
        "usage": {"prompt_tokens": 3, "completion_tokens": 1, "total_tokens": 4},
    }


@contextlib.asynccontextmanager
async def fake_provider(chat: Handler) -> AsyncIterator[str]:
    """An OpenAI-compatible provider whose ``/v1/chat/completions`` is ``chat``; yields
    its base URL (without ``/v1``)."""
    app = web.Application()
    app.router.add_post("/v1/chat/completions", chat)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    try:
        yield f"http://127.0.0.1:{runner.addresses[0][1]}"
    finally:
        await runner.cleanup()


StartRouter = Callable[..., RouterProcess]
"""``start_router(policy, endpoints, *flags)``: the fixture's signature."""
