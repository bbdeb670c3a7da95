"""A workload backend that runs each pod as a local process.

The demo and the end-to-end tests want engine pods that really answer HTTP —
on this machine, without containers. :class:`ProcessBackend` starts one process
per pod from a command (a template with ``{port}``, ``{host}``, ``{name}``,
``{namespace}`` and ``{deployment}`` placeholders, or a callable), on a free
port of 127.0.0.1, and reports the pod Ready once ``GET {health_path}`` answers
with a 2xx/3xx status. A process that exits makes its pod CrashLoopBackOff (it
is not restarted). It is written against an arbitrary command — tests use
``python -m http.server`` — so that wiring it to ``tierwise sim engine`` is
a matter of the command alone.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import subprocess
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import aiohttp

from tierwise.local.workloads import PodEndpoint, PodHealth, PodInfo, PodState

CommandFactory = Callable[[PodInfo, int], Sequence[str]]


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        port: int = sock.getsockname()[1]
        return port


async def kill(process: asyncio.subprocess.Process) -> None:
    """SIGKILL and reap."""
    with contextlib.suppress(ProcessLookupError):
        process.kill()
    await process.wait()


@dataclass
class _Running:
    process: asyncio.subprocess.Process
    port: int


class ProcessBackend:
    """One local process per pod; Ready when its health endpoint answers."""

    def __init__(
        self,
        command: Sequence[str] | CommandFactory,
        *,
        health_path: str = "/health",
        env: Mapping[str, str] | None = None,
        host: str = "127.0.0.1",
        stop_timeout: float = 5.0,
    ) -> None:
        self.command = command
        self.health_path = health_path
        self.env = dict(env or {})
        self.host = host
        self.stop_timeout = stop_timeout
        self._running: dict[tuple[str, str], _Running] = {}
        self._session: aiohttp.ClientSession | None = None

    def argv(self, pod: PodInfo, port: int) -> list[str]:
        if callable(self.command):
            return list(self.command(pod, port))
        values = {
            "port": port,
            "host": self.host,
            "name": pod.name,
            "namespace": pod.namespace,
            "deployment": pod.deployment,
        }
        return [part.format(**values) for part in self.command]

    async def start(self, pod: PodInfo) -> PodEndpoint:
        port = free_port(self.host)
        process = await asyncio.create_subprocess_exec(
            *self.argv(pod, port),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            env={**os.environ, **self.env},
        )
        self._running[(pod.namespace, pod.name)] = _Running(process, port)
        return PodEndpoint(ip=self.host, port=port)

    async def state(self, pod: PodInfo) -> PodState:
        running = self._running.get((pod.namespace, pod.name))
        if running is None:
            return PodState(PodHealth.FAILING, "ContainerCannotRun", "no process for this pod")
        code = running.process.returncode
        if code is not None:
            return PodState(
                PodHealth.FAILING,
                "CrashLoopBackOff",
                f"the process exited with code {code}",
                restarts=1,
            )
        if self._session is None:
            self._session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=1))
        url = f"http://{self.host}:{running.port}{self.health_path}"
        try:
            async with self._session.get(url) as response:
                healthy = response.status < 400
        except (aiohttp.ClientError, TimeoutError):
            healthy = False
        return PodState(PodHealth.READY if healthy else PodHealth.STARTING)

    async def stop(self, pod: PodInfo, grace: float | None = None) -> None:
        """SIGTERM, then SIGKILL after ``grace`` seconds (None: ``stop_timeout``)."""
        running = self._running.pop((pod.namespace, pod.name), None)
        if running is None or running.process.returncode is not None:
            if running is not None:
                await running.process.wait()
            return
        running.process.terminate()
        try:
            await asyncio.wait_for(
                running.process.wait(), self.stop_timeout if grace is None else grace
            )
        except TimeoutError:
            await kill(running.process)
        except asyncio.CancelledError:  # the cluster is stopping: never leave the process behind
            await kill(running.process)
            raise

    async def aclose(self) -> None:
        for namespace, name in list(self._running):
            await self.stop(PodInfo(namespace=namespace, name=name, deployment=""))
        if self._session is not None:
            await self._session.close()
            self._session = None
