"""``tierwise router --workers N``: N router processes sharing one port.

Why it exists: one router process is one Python interpreter, one core. A gateway in
front of many engines needs every core its container may use, without a second proxy
in front. The parent process here routes nothing: it reserves the port, forks N workers
that each run the ordinary router (:func:`tierwise.router.cli.serve`) listening on that
port with ``SO_REUSEPORT`` (the kernel spreads new connections over them), forwards
signals and waits.

Choices, and why
    * **Each worker watches the sources itself** (policy and endpoint files, the
      ConfigMap and EndpointSlice watches, Secret files) rather than the parent building
      the table and distributing it: the table build is deterministic (its version is a
      content hash), so workers that read the same sources install the same table, and
      no pipe protocol or parent single point of failure is needed. The cost: N watch
      connections to the API server instead of one, and workers that may run different
      table versions for up to one poll interval (``--watch-interval``, 0.5 s) or one
      watch-event delivery. SIGHUP to the parent is forwarded to every worker, so a
      forced reload reaches all of them at once.
    * **The port is reserved by the parent** (bound with ``SO_REUSEPORT``, never
      listening, so it receives no connections) before the workers start: ``--port 0``
      resolves to one port for all of them.
    * **Metrics and readiness** are answered for the whole group by whichever worker a
      scrape or probe reaches (:mod:`tierwise.router.worker_peers`).
    * **Draining**: SIGTERM or SIGINT to the parent is forwarded to every worker; each
      stops accepting, finishes its in-flight requests (``--shutdown-grace``) and exits;
      the parent exits when all have (a worker still alive ``grace + 10`` s later is
      killed). A worker that exits on its own stops the group (with that worker's exit
      status, 1 if it had none), so the pod restarts whole rather than serving on fewer
      cores unnoticed.
    * Workers are forked before any event loop or thread exists in the parent.
    * With prefix-aware balancing each worker keeps its own prefix index, so a
      conversation whose turns reach different workers loses affinity; ``prefix-hash``
      makes the same choice in every worker (docs/routing.md).

Default worker count (``--workers auto``): :func:`available_cores` — the CPUs this
process may run on (``os.sched_getaffinity``), capped by the cgroup CPU quota (v2
``cpu.max``, v1 ``cpu.cfs_quota_us`` / ``cpu.cfs_period_us``), rounded up, at least 1.
"""

from __future__ import annotations

import math
import multiprocessing
import os
import signal
import socket
import tempfile
import time
from collections.abc import Callable, Sequence
from multiprocessing.connection import wait
from multiprocessing.process import BaseProcess
from pathlib import Path
from types import FrameType

CGROUP = Path("/sys/fs/cgroup")


def cores_from(
    affinity: int,
    cpu_max: str | None = None,
    quota_v1: str | None = None,
    period_v1: str | None = None,
) -> int:
    """Usable cores: ``affinity`` capped by a cgroup quota when one is set (pure)."""
    cores = max(affinity, 1)
    quota = period = None
    if cpu_max is not None:
        parts = cpu_max.split()
        if len(parts) == 2 and parts[0] != "max":
            quota, period = parts
    elif quota_v1 is not None and period_v1 is not None and quota_v1.strip() != "-1":
        quota, period = quota_v1, period_v1
    if quota is not None and period is not None:
        try:
            limit = math.ceil(float(quota) / float(period))
        except (ValueError, ZeroDivisionError):
            return cores
        cores = max(min(cores, limit), 1)
    return cores


def available_cores(root: Path = CGROUP) -> int:
    """Cores this container may use (see the module docstring)."""
    affinity = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else 0
    return cores_from(
        affinity or os.cpu_count() or 1,
        _read(root / "cpu.max"),
        _read(root / "cpu" / "cpu.cfs_quota_us"),
        _read(root / "cpu" / "cpu.cfs_period_us"),
    )


def _read(path: Path) -> str | None:
    try:
        return path.read_text().strip()
    except OSError:
        return None


def reserve_port(host: str, port: int) -> tuple[socket.socket, int]:
    """Bind (not listen) ``host:port`` with SO_REUSEPORT; the bound port and its socket."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    sock.bind((host, port))
    bound: int = sock.getsockname()[1]
    return sock, bound


WorkerMain = Callable[[int, int, Path, int], int]
"""``(index, count, group folder, port) -> exit status``: runs one worker."""


def supervise(count: int, host: str, port: int, worker: WorkerMain, *, grace_s: float) -> int:
    """Run ``count`` workers on one port until they exit (see the module docstring)."""
    reserved, bound = reserve_port(host, port)
    folder = Path(tempfile.mkdtemp(prefix="tierwise-router-workers-"))
    context = multiprocessing.get_context("fork")
    procs = [
        context.Process(target=_child, args=(worker, i, count, folder, bound, reserved))
        for i in range(count)
    ]
    stopping = {"at": 0.0}

    def forward(signum: int, frame: FrameType | None) -> None:
        if signum != signal.SIGHUP:
            stopping["at"] = stopping["at"] or time.monotonic()
            signum = signal.SIGTERM
        for p in procs:
            if p.pid is not None and p.exitcode is None:
                os.kill(p.pid, signum)

    for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(sig, forward)
    try:
        for p in procs:
            p.start()
        return _wait(procs, stopping, grace_s)
    finally:
        for p in procs:
            if p.exitcode is None:
                p.kill()
                p.join(5)
        reserved.close()
        for path in folder.iterdir():
            path.unlink(missing_ok=True)
        folder.rmdir()


def _wait(procs: Sequence[BaseProcess], stopping: dict[str, float], grace_s: float) -> int:
    failed = 0
    while any(p.exitcode is None for p in procs):
        wait([p.sentinel for p in procs if p.exitcode is None], timeout=0.5)
        exited = [p for p in procs if p.exitcode is not None]
        if exited and not stopping["at"]:  # a worker exited on its own: stop the group
            failed = exited[0].exitcode or 1  # its status (2: bad arguments or document)
            stopping["at"] = time.monotonic()
            for p in procs:
                if p.exitcode is None and p.pid is not None:
                    os.kill(p.pid, signal.SIGTERM)
        if stopping["at"] and time.monotonic() - stopping["at"] > grace_s + 10:
            break
    codes = [p.exitcode or 0 for p in procs]
    return failed or max(codes, default=0)


def _child(
    worker: WorkerMain, index: int, count: int, folder: Path, port: int, reserved: socket.socket
) -> None:
    reserved.close()
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    signal.signal(signal.SIGINT, signal.SIG_DFL)
    signal.signal(signal.SIGHUP, signal.SIG_IGN)  # until the worker's table watcher handles it
    raise SystemExit(worker(index, count, folder, port))
