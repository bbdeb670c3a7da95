"""Start and stop simulator processes, for tests, benchmarks and the local cluster.

Why it exists: a router under test must talk to engines in *other* processes (real
sockets, real scheduling), and a test must never leak them. :func:`start_engine` runs
``python -m tierwise.sim engine ...`` (the same as ``tierwise sim engine``) in its own
process group, waits until ``/health`` answers 200, and :meth:`EngineProcess.stop`
terminates the whole group. :func:`running_engines` is the context manager to use in
pytest fixtures::

    with running_engines([SimConfig(model="a"), SimConfig(model="b")]) as engines:
        urls = [e.url for e in engines]
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from tierwise.sim.cli import engine_args
from tierwise.sim.config import SimConfig


def free_port(host: str = "127.0.0.1") -> int:
    """A port that was free a moment ago on ``host``."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        port: int = sock.getsockname()[1]
        return port


def stop_process_group(process: subprocess.Popen[bytes], timeout_s: float = 10.0) -> None:
    """SIGTERM a process group, then SIGKILL whatever of it lingers; always reap the leader.

    Servers started for tests and benchmarks get their own session (``start_new_session``)
    so that one call stops the server and everything it forked: a real vLLM leaves its
    engine process behind when only the API server is killed.
    """
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGTERM)
    with contextlib.suppress(subprocess.TimeoutExpired):
        process.wait(timeout=timeout_s)
    if process.poll() is None or _group_alive(process.pid):
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=timeout_s)


def _group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


@dataclass
class EngineProcess:
    """One running simulator: its base URL (no ``/v1``), port and process."""

    url: str
    port: int
    config: SimConfig
    process: subprocess.Popen[bytes]
    log_path: Path | None = None

    def stop(self, timeout_s: float = 5.0) -> None:
        stop_process_group(self.process, timeout_s)

    def log_tail(self, chars: int = 2000) -> str:
        if self.log_path is None or not self.log_path.exists():
            return ""
        return self.log_path.read_text(errors="replace")[-chars:]


def engine_command(config: SimConfig, *, host: str, port: int) -> list[str]:
    """The command line that serves ``config`` on ``host:port``."""
    return [
        sys.executable,
        "-m",
        "tierwise.sim",
        "engine",
        *engine_args(config),
        "--host",
        host,
        "--port",
        str(port),
    ]


def start_engine(
    config: SimConfig,
    *,
    host: str = "127.0.0.1",
    port: int | None = None,
    log_path: Path | None = None,
    startup_timeout_s: float = 20.0,
) -> EngineProcess:
    """Start a simulator process and return once ``/health`` answers 200."""
    port = port or free_port(host)
    log = open(log_path, "wb") if log_path is not None else None  # noqa: SIM115
    try:
        process = subprocess.Popen(
            engine_command(config, host=host, port=port),
            stdout=log or subprocess.DEVNULL,
            stderr=subprocess.STDOUT if log else subprocess.DEVNULL,
            start_new_session=True,
        )
    finally:
        if log is not None:
            log.close()
    engine = EngineProcess(f"http://{host}:{port}", port, config, process, log_path)
    try:
        wait_healthy(engine, timeout_s=startup_timeout_s)
    except BaseException:
        engine.stop()
        raise
    return engine


def wait_healthy(engine: EngineProcess, *, timeout_s: float) -> None:
    """Poll ``/health`` until 200; fail early if the process exits."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if engine.process.poll() is not None:
            raise RuntimeError(
                f"simulator exited with {engine.process.returncode}: {engine.log_tail()}"
            )
        try:
            with urllib.request.urlopen(engine.url + "/health", timeout=1.0) as response:
                if response.status == 200:
                    return
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            pass
        time.sleep(0.05)
    raise TimeoutError(f"simulator at {engine.url} not healthy after {timeout_s}s")


@contextlib.contextmanager
def running_engines(
    configs: Sequence[SimConfig], *, host: str = "127.0.0.1"
) -> Iterator[list[EngineProcess]]:
    """Start one process per config (in order) and stop them all on exit."""
    engines: list[EngineProcess] = []
    try:
        for config in configs:
            engines.append(start_engine(config, host=host))
        yield engines
    finally:
        for engine in engines:
            engine.stop()
