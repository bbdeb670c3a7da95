"""Run a kopf operator against the embedded cluster from tests and the demo.

Running kopf inside a test has traps: ``await kopf.operator()`` in
pytest-asyncio's loop cancels, on exit, every task created after it started
(the test's own teardown included); peering needs its own CRDs; and the
``kubernetes`` client reads ``KUBECONFIG`` once. So:

* :class:`KopfThread` runs ``kopf.operator`` in its own thread and event loop,
  ``standalone``, logged in straight to the cluster URL (a login handler is
  added to the registry), and stops it through kopf's ``stop_flag``;
* :class:`KopfProcess` runs ``python -m kopf run --standalone`` in a child
  process with ``KUBECONFIG`` pointing at the cluster, waits for kopf's
  liveness endpoint, and stops it with SIGINT (then SIGKILL).

Both are context managers; both wait until the operator is ready.
"""

from __future__ import annotations

import asyncio
import importlib
import importlib.util
import os
import pathlib
import signal
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Iterable, Sequence
from types import TracebackType
from typing import Any, Self

import kopf

from tierwise.local.processes import free_port


def load_registry(module: str) -> Any:
    """Import an operator module (dotted name or .py path) into a fresh kopf registry."""
    registry = kopf.OperatorRegistry()
    previous = kopf.get_default_registry()
    kopf.set_default_registry(registry)
    try:
        if module.endswith(".py"):
            path = pathlib.Path(module)
            spec = importlib.util.spec_from_file_location(f"kopf_operator_{path.stem}", path)
            if spec is None or spec.loader is None:
                raise ImportError(f"cannot load {module}")
            spec.loader.exec_module(importlib.util.module_from_spec(spec))
        else:
            importlib.import_module(module)
    finally:
        kopf.set_default_registry(previous)
    return registry


class KopfThread:
    """A kopf operator in a background thread with its own event loop."""

    def __init__(
        self,
        registry: Any = None,
        *,
        server: str,
        module: str | None = None,
        namespaces: Iterable[str] = ("default",),
        clusterwide: bool = False,
        settings: Any = None,
        ready_timeout: float = 15.0,
        stop_timeout: float = 15.0,
    ) -> None:
        self.registry = (
            registry
            if registry is not None
            else (load_registry(module) if module else kopf.OperatorRegistry())
        )
        self.server = server
        self.namespaces = tuple(namespaces)
        self.clusterwide = clusterwide
        self.settings = settings if settings is not None else kopf.OperatorSettings()
        self.ready_timeout = ready_timeout
        self.stop_timeout = stop_timeout
        self.error: BaseException | None = None
        self._ready = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._add_login()

    def _add_login(self) -> None:
        server = self.server

        @kopf.on.login(registry=self.registry, id="tierwise-local-login")
        def _login(**_: Any) -> Any:
            return kopf.ConnectionInfo(server=server, insecure=True, default_namespace="default")

    def __enter__(self) -> Self:
        self._thread = threading.Thread(target=self._main, name="tierwise-kopf", daemon=True)
        self._thread.start()
        deadline = time.monotonic() + self.ready_timeout
        while not self._ready.wait(0.05):
            if not self._thread.is_alive() or time.monotonic() > deadline:
                self.__exit__(None, None, None)
                raise RuntimeError(f"the kopf operator did not start: {self.error!r}")
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(self.stop_timeout)
            if self._thread.is_alive():
                raise RuntimeError("the kopf operator did not stop in time")
            self._thread = None

    def _main(self) -> None:
        loop = asyncio.new_event_loop()
        try:
            loop.run_until_complete(
                kopf.operator(
                    registry=self.registry,
                    settings=self.settings,
                    standalone=True,
                    clusterwide=self.clusterwide,
                    namespaces=() if self.clusterwide else self.namespaces,
                    stop_flag=self._stop,
                    ready_flag=self._ready,
                )
            )
        except BaseException as e:  # reported by __enter__ or inspected by the test
            self.error = e
        finally:
            try:
                loop.run_until_complete(loop.shutdown_asyncgens())
                loop.run_until_complete(loop.shutdown_default_executor())
            finally:
                loop.close()


class KopfProcess:
    """A kopf operator as ``python -m kopf run --standalone`` in a child process."""

    def __init__(
        self,
        target: str,
        *,
        kubeconfig: str | os.PathLike[str],
        namespaces: Iterable[str] = ("default",),
        clusterwide: bool = False,
        extra_args: Sequence[str] = (),
        env: dict[str, str] | None = None,
        ready_timeout: float = 30.0,
        stop_timeout: float = 15.0,
    ) -> None:
        self.port = free_port()
        scope = ["--all-namespaces"] if clusterwide else [f"--namespace={ns}" for ns in namespaces]
        is_file = target.endswith(".py")
        self.argv = [
            sys.executable,
            "-m",
            "kopf",
            "run",
            "--standalone",
            *scope,
            f"--liveness=http://127.0.0.1:{self.port}/healthz",
            *extra_args,
            *([target] if is_file else ["-m", target]),
        ]
        self.env = {**os.environ, **(env or {}), "KUBECONFIG": os.fspath(kubeconfig)}
        self.ready_timeout = ready_timeout
        self.stop_timeout = stop_timeout
        self.process: subprocess.Popen[bytes] | None = None

    def __enter__(self) -> Self:
        self.process = subprocess.Popen(self.argv, env=self.env, stdin=subprocess.DEVNULL)
        deadline = time.monotonic() + self.ready_timeout
        while time.monotonic() < deadline and self.process.poll() is None:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/healthz", timeout=1):
                    return self
            except OSError:
                time.sleep(0.1)
        self.__exit__(None, None, None)
        raise RuntimeError("the kopf operator process did not become live")

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self.process is None:
            return
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)
            try:
                self.process.wait(self.stop_timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.process = None
