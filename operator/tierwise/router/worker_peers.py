"""How one router worker sees its siblings: one ``/metrics`` and one ``/readyz`` for all.

Why it exists: with ``tierwise router --workers N`` the kernel hands each connection to
one of N processes listening on the same port (``SO_REUSEPORT``), so a Prometheus scrape
or a kubelet probe reaches one worker at random. Each answer must describe the whole
group, without a shared store:

    * every worker also listens on ``127.0.0.1:<ephemeral>`` (loopback only) and serves
      its *own* metrics (``/worker/metrics``) and readiness (``/worker/readyz``) there;
      it writes that port into ``<group dir>/worker-<i>.port`` (atomic rename);
    * the worker that receives ``/metrics`` fetches its siblings' text concurrently
      (``fetch_timeout_s`` each, 1 s) and merges it with its own
      (:mod:`tierwise.router.metrics_merge`); a sibling that does not answer is left out
      and ``tierwise_router_workers{state="answered"}`` below ``{state="expected"}``
      says so;
    * the worker that receives ``/readyz`` is ready only when it is and every sibling
      answers ``/worker/readyz`` with 200: a pod is not ready while one of its workers
      has no table yet or is draining.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path

from tierwise.router.http.errors import send_status_error
from tierwise.router.http.server import HttpServer, Request, ResponseWriter, ServerLimits
from tierwise.router.metrics_merge import merge

TEXT = [("content-type", "text/plain; version=0.0.4; charset=utf-8")]


@dataclass(frozen=True, slots=True)
class WorkerGroup:
    """This worker's place in the group: its index, the group size, the shared folder."""

    index: int
    count: int
    folder: Path
    fetch_timeout_s: float = 1.0


class Peers:
    """Serves this worker's own state on loopback and gathers the siblings' (docstring)."""

    def __init__(
        self,
        group: WorkerGroup,
        local_metrics: Callable[[], bytes],
        local_ready: Callable[[], bool],
    ) -> None:
        self.group = group
        self._local_metrics = local_metrics
        self._local_ready = local_ready
        self._server: HttpServer | None = None

    async def start(self) -> None:
        """Listen on loopback and publish the port for the siblings."""
        self._server = HttpServer(self._handle, send_status_error, ServerLimits())
        port = await self._server.start("127.0.0.1", 0)
        path = self.group.folder / f"worker-{self.group.index}.port"
        tmp = path.with_suffix(".tmp")
        tmp.write_text(str(port))
        os.replace(tmp, path)

    async def stop(self) -> None:
        if self._server is not None:
            await self._server.shutdown(0.5)

    async def _handle(self, request: Request, writer: ResponseWriter) -> None:
        if request.path == "/worker/metrics":
            writer.send(200, TEXT, self._local_metrics())
        elif request.path == "/worker/readyz":
            ready = self._local_ready()
            writer.send(200 if ready else 503, TEXT, b"ready\n" if ready else b"not ready\n")
        else:
            writer.send(404, TEXT, b"not found\n")

    def _sibling_ports(self) -> dict[int, int]:
        ports: dict[int, int] = {}
        for i in range(self.group.count):
            if i == self.group.index:
                continue
            with contextlib.suppress(OSError, ValueError):
                ports[i] = int((self.group.folder / f"worker-{i}.port").read_text())
        return ports

    async def _gather(self, path: str) -> list[tuple[int, bytes] | None]:
        ports = self._sibling_ports()
        missing: list[tuple[int, bytes] | None] = [None] * (self.group.count - 1 - len(ports))
        fetches: list[Awaitable[tuple[int, bytes] | None]] = [
            _get(port, path, self.group.fetch_timeout_s) for port in ports.values()
        ]
        return [*await asyncio.gather(*fetches), *missing]

    async def metrics(self) -> bytes:
        """The group's metrics: this worker's and every sibling that answered, merged."""
        own = self._local_metrics()
        answers = await self._gather("/worker/metrics")
        texts = [own, *(a[1] for a in answers if a is not None and a[0] == 200)]
        expected, answered = self.group.count, len(texts)
        group = (
            "# HELP tierwise_router_workers Router worker processes: in the group, and whose "
            "metrics this answer holds.\n# TYPE tierwise_router_workers gauge\n"
            f'tierwise_router_workers{{state="expected"}} {expected}\n'
            f'tierwise_router_workers{{state="answered"}} {answered}\n'
        ).encode()
        return merge([*texts, group])

    async def all_ready(self) -> bool:
        """True when every sibling answers ``/worker/readyz`` with 200 (this one is asked
        by the caller)."""
        answers = await self._gather("/worker/readyz")
        return all(a is not None and a[0] == 200 for a in answers)


async def _get(port: int, path: str, timeout_s: float) -> tuple[int, bytes] | None:
    """One HTTP/1.1 GET on loopback with ``connection: close``: (status, body) or None."""
    writer = None
    try:
        async with asyncio.timeout(timeout_s):
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            writer.write(
                f"GET {path} HTTP/1.1\r\nhost: 127.0.0.1\r\nconnection: close\r\n\r\n".encode()
            )
            raw = await reader.read()
    except (OSError, TimeoutError):
        return None
    finally:
        if writer is not None:
            writer.close()
    head, _, body = raw.partition(b"\r\n\r\n")
    try:
        status = int(head.split(b" ", 2)[1])
    except (IndexError, ValueError):
        return None
    return status, body
